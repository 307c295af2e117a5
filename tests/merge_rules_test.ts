/** The per-type merge rules of DESIGN.md section 3, one concurrent edit at a time. */
import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { EVERYTHING } from "./_helpers.ts";

const REPO = "/all/m";
const PATH = `${REPO}/x`;

async function move(from: Database, to: Database) {
  const r = from.repository(REPO);
  await r.flush();
  const result = await to.repository(REPO).ingest(
    r.commitIds().map((id) => r.commitRecord(id)!),
  );
  assert.deepEqual(result.rejected, []);
}

/** Two replicas sharing one item, then concurrent edits `ea` and `eb`, then a full exchange. */
async function concurrent(
  initial: Record<string, unknown>,
  ea: (db: Database) => void,
  eb: (db: Database) => void,
  clocks: [number, number] = [0, 0],
  creator: "a" | "b" = "a",
) {
  const a = await openDatabase({
    memory: true,
    schemas: [EVERYTHING],
    clock: () => Date.now() + clocks[0],
  });
  const b = await openDatabase({
    memory: true,
    schemas: [EVERYTHING],
    clock: () => Date.now() + clocks[1],
  });
  a.trustSession(b.session);
  b.trustSession(a.session);
  await a.open(REPO);
  await b.open(REPO);
  // The creator's timestamp is observed by the other replica: create on the replica
  // whose clock is behind so the other one is not pulled back to a tie.
  if (creator === "a") {
    a.create(PATH, "all", initial);
    await move(a, b);
  } else {
    b.create(PATH, "all", initial);
    await move(b, a);
  }
  ea(a);
  eb(b);
  await move(a, b);
  await move(b, a);
  const xa = a.item(PATH)!, xb = b.item(PATH)!;
  assert.deepEqual(xa.toObject(), xb.toObject(), "both replicas agree");
  assert.equal(xa.isDeleted, xb.isDeleted);
  assert.equal(xa.heads.length, 2);
  const out = { value: xa.toObject(), deleted: xa.isDeleted };
  await a.close();
  await b.close();
  return out;
}

Deno.test("scalars: the later writer wins, by hybrid timestamp", async () => {
  // b's clock runs 10 s ahead, so b's write is later whatever the real order.
  const r = await concurrent(
    { s: "base", n: 1 },
    (a) => a.item(PATH)!.set("s", "from a"),
    (b) => b.item(PATH)!.set("s", "from b"),
    [0, 10_000],
  );
  assert.equal(r.value.s, "from b");
  const r2 = await concurrent(
    { s: "base" },
    (a) => a.item(PATH)!.set("s", "from a"),
    (b) => b.item(PATH)!.set("s", "from b"),
    [10_000, 0],
    "b",
  );
  assert.equal(r2.value.s, "from a");
});

Deno.test("different fields edited concurrently both survive", async () => {
  const r = await concurrent(
    { s: "base", n: 1, b: false },
    (a) => a.item(PATH)!.set("n", 2),
    (b) => b.item(PATH)!.set("b", true),
  );
  assert.deepEqual([r.value.s, r.value.n, r.value.b], ["base", 2, true]);
});

Deno.test("sets merge element-wise: concurrent adds and removes all apply", async () => {
  const r = await concurrent(
    { tags: new Set(["keep", "drop-a", "drop-b"]) },
    (a) => a.item(PATH)!.set("tags", new Set(["keep", "drop-b", "add-a"])),
    (b) => b.item(PATH)!.set("tags", new Set(["keep", "drop-a", "add-b"])),
  );
  assert.deepEqual(r.value.tags, new Set(["keep", "add-a", "add-b"]));
});

Deno.test("maps merge key-wise with last-writer-wins per key", async () => {
  const r = await concurrent(
    { attrs: new Map([["k1", 1], ["k2", 2], ["gone", 0]]) },
    (a) =>
      a.item(PATH)!.set(
        "attrs",
        new Map<string, number | boolean>([["k1", 10], ["k2", 2], ["gone", 0], [
          "new-a",
          true,
        ]]),
      ),
    (b) => b.item(PATH)!.set("attrs", new Map([["k1", 1], ["k2", 20]])),
  );
  assert.deepEqual(
    r.value.attrs,
    new Map<string, unknown>([["k1", 10], ["k2", 20], ["new-a", true]]),
  );
});

Deno.test("text merges character ranges: both inserts are kept", async () => {
  const r = await concurrent(
    { body: "The fox jumps" },
    (a) => a.item(PATH)!.set("body", "The quick fox jumps"),
    (b) => b.item(PATH)!.set("body", "The fox jumps high"),
  );
  assert.equal(r.value.body, "The quick fox jumps high");
});

Deno.test("an edit beats a concurrent delete", async () => {
  const r = await concurrent(
    { s: "base" },
    (a) => a.item(PATH)!.delete(),
    (b) => b.item(PATH)!.set("s", "edited"),
  );
  assert.equal(r.deleted, false);
  assert.equal(r.value.s, "edited");
  const both = await concurrent(
    { s: "base" },
    (a) => a.item(PATH)!.delete(),
    (b) => b.item(PATH)!.delete(),
  );
  assert.equal(both.deleted, true);
});
