/**
 * Seeded random edits of every field type, shared by the convergence and oracle tests.
 * An edit is first chosen as data (a {@link Change}, from the item's current value),
 * then applied: to the engine by {@link applyChange}, to the model by
 * {@link changedState}, so both see exactly the same write.
 */
import type { Database, Item } from "../mod.ts";
import type { Rng } from "./_helpers.ts";
import type { ModelData, ModelState } from "./_model.ts";

/** One write: create (or re-create a deleted item), update fields, or delete. */
export type Change =
  | {
    readonly kind: "create";
    readonly schema: string;
    readonly data: Readonly<Record<string, unknown>>;
  }
  | {
    readonly kind: "update";
    /** Field → new value (`undefined` removes the field). */
    readonly changes: Readonly<Record<string, unknown>>;
  }
  | { readonly kind: "delete" };

/** Where inserted text comes from. */
export interface TextSource {
  /** A code point to insert. */
  char(rng: Rng): string;
}

const ALPHA = ["a", "b", "c", "é", "😀"];

/** Few, repeated characters (astral ones included): hard cases for the text diff. */
export const REPEATED_CHARACTERS: TextSource = {
  char: (rng) => rng.pick(ALPHA),
};

/**
 * Never the same code point twice (BMP and astral), so the model can tell which
 * character is which without a diff. One per history: it counts.
 */
export function uniqueCharacters(): TextSource {
  let n = 0;
  return {
    char: () => {
      const i = n++;
      // Every fourth one astral (a surrogate pair in UTF-16).
      return String.fromCodePoint(
        i % 4 === 3 ? 0x1f300 + (i >> 2) : 0x4e00 + i - (i >> 2),
      );
    },
  };
}

/** The fields of the schema these edits write (tests/_helpers.ts EVERYTHING). */
const FIELDS = ["s", "n", "b", "d", "tags", "attrs", "body"] as const;

function copy(v: unknown): unknown {
  if (v instanceof Set) return new Set(v);
  if (v instanceof Map) return new Map(v);
  if (v instanceof Date) return new Date(v.getTime());
  return v;
}

function fieldChange(
  rng: Rng,
  field: (typeof FIELDS)[number],
  data: ModelData,
  text: TextSource,
): unknown {
  switch (field) {
    case "s":
      return rng.pick(["x", "y", "z", ""]) + rng.int(10);
    case "n":
      return rng.int(100) - 50;
    case "b":
      return rng.bool();
    case "d":
      return new Date(1_700_000_000_000 + rng.int(1000));
    case "tags": {
      const tags = new Set(data.tags as Set<string | number> | undefined);
      if (rng.bool() || tags.size === 0) {
        tags.add(rng.pick(["p", "q", "r", 1, 2]));
      } else tags.delete(rng.pick([...tags]));
      return tags;
    }
    case "attrs": {
      const m = new Map(data.attrs as Map<string, unknown> | undefined);
      if (rng.bool(0.7) || m.size === 0) {
        m.set(rng.pick(["k1", "k2", "k3"]), rng.pick([1, "v", true, null]));
      } else m.delete(rng.pick([...m.keys()]));
      return m;
    }
    case "body": {
      const chars = Array.from((data.body as string | undefined) ?? "");
      const at = rng.int(chars.length + 1);
      if (rng.bool(0.6) || chars.length === 0) {
        const n = 1 + rng.int(3);
        chars.splice(at, 0, ...Array.from({ length: n }, () => text.char(rng)));
      } else {
        chars.splice(at, 1 + rng.int(3));
      }
      return chars.join("");
    }
  }
}

/**
 * A random write to an item of the EVERYTHING schema whose current value is `current`
 * (undefined: the item does not exist here yet, so it is created).
 */
export function randomChange(
  rng: Rng,
  current: ModelState | undefined,
  text: TextSource = REPEATED_CHARACTERS,
): Change {
  if (!current) {
    const data: Record<string, unknown> = { s: "new", n: rng.int(3) };
    const extra = rng.int(4);
    if (extra < 2) data.body = text.char(rng) + text.char(rng);
    else if (extra === 2) data.tags = new Set([rng.pick(["p", "q"])]);
    return { kind: "create", schema: "all", data };
  }
  const roll = rng.next();
  if (current.deleted && roll < 0.2) {
    // Keeps a text: removing a text field is a case the model leaves out.
    const data = { s: "again", body: text.char(rng) };
    return { kind: "create", schema: "all", data };
  }
  if (roll < 0.08) return { kind: "delete" };
  if (roll < 0.2) {
    return {
      kind: "update",
      changes: { s: "m" + rng.int(5), n: rng.int(5), b: rng.bool() },
    };
  }
  const field = rng.pick(FIELDS);
  return {
    kind: "update",
    changes: { [field]: fieldChange(rng, field, current.data, text) },
  };
}

/** The value of an item as the model sees it. */
export function observe(item: Item | undefined): ModelState | undefined {
  return item ? { deleted: item.isDeleted, data: item.toObject() } : undefined;
}

/** Applies a change to the engine; returns the item. */
export function applyChange(db: Database, path: string, c: Change): Item {
  if (c.kind === "create") return db.create(path, c.schema, c.data);
  const item = db.item(path);
  if (!item) throw new Error(`applyChange: ${path} does not exist`);
  if (c.kind === "delete") item.delete();
  else item.update(c.changes);
  return item;
}

/**
 * The state a change produces on top of `before` (the value its writer saw), or
 * undefined when it writes nothing (deleting a deleted item).
 */
export function changedState(
  before: ModelState | undefined,
  c: Change,
): ModelState | undefined {
  if (c.kind === "create") {
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c.data)) data[k] = copy(v);
    return { deleted: false, data };
  }
  if (!before) throw new Error(`changedState: ${c.kind} of an absent item`);
  if (c.kind === "delete") {
    return before.deleted ? undefined : { deleted: true, data: before.data };
  }
  const data: Record<string, unknown> = { ...before.data };
  for (const [k, v] of Object.entries(c.changes)) {
    if (v === undefined) delete data[k];
    else data[k] = copy(v);
  }
  return { deleted: before.deleted, data };
}
