/** Seeded random edits of every field type, shared by the convergence tests. */
import type { Item } from "../mod.ts";
import type { Rng } from "./_helpers.ts";

const ALPHA = ["a", "b", "c", "é", "😀"];

/** Applies one random edit (any field type, delete, multi-field update) to `item`. */
export function randomEdit(rng: Rng, item: Item): void {
  const field = rng.pick([
    "s",
    "n",
    "b",
    "d",
    "tags",
    "attrs",
    "body",
    "delete",
    "multi",
  ]);
  switch (field) {
    case "s":
      return item.set("s", rng.pick(["x", "y", "z", ""]) + rng.int(10));
    case "n":
      return item.set("n", rng.int(100) - 50);
    case "b":
      return item.set("b", rng.bool());
    case "d":
      return item.set("d", new Date(1_700_000_000_000 + rng.int(1000)));
    case "tags": {
      const tags = item.get("tags") as Set<string | number> | undefined ??
        new Set();
      if (rng.bool() || tags.size === 0) {
        tags.add(rng.pick(["p", "q", "r", 1, 2]));
      } else tags.delete(rng.pick([...tags]));
      return item.set("tags", tags);
    }
    case "attrs": {
      const m = item.get("attrs") as
        | Map<string, string | number | boolean | null>
        | undefined ??
        new Map();
      if (rng.bool(0.7)) {
        m.set(rng.pick(["k1", "k2", "k3"]), rng.pick([1, "v", true, null]));
      } else if (m.size) m.delete(rng.pick([...m.keys()]));
      return item.set("attrs", m);
    }
    case "body": {
      const text = (item.get("body") as string | undefined) ?? "";
      const chars = Array.from(text);
      const at = rng.int(chars.length + 1);
      if (rng.bool(0.6) || chars.length === 0) {
        chars.splice(
          at,
          0,
          ...Array.from({ length: 1 + rng.int(3) }, () => rng.pick(ALPHA)),
        );
      } else {
        chars.splice(at, 1 + rng.int(3));
      }
      return item.set("body", chars.join(""));
    }
    case "delete":
      if (rng.bool(0.3)) return item.delete();
      return item.set("n", rng.int(5));
    default:
      return item.update({ s: "m" + rng.int(5), n: rng.int(5), b: rng.bool() });
  }
}
