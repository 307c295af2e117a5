/** Idle repositories leave memory; a memory budget closes the least recently used. */
import assert from "node:assert/strict";
import { MemoryStorage, openDatabase } from "../mod.ts";
import { tempDir, TODO } from "./_helpers.ts";

/** Timers whose interval runs only when the test says so. */
function manualTimers() {
  let tick: (() => void) | null = null;
  return {
    timers: {
      setInterval: (fn: () => void) => {
        tick = fn;
        return 1;
      },
      clearInterval: () => {
        tick = null;
      },
    },
    active: () => tick !== null,
  };
}

Deno.test("an idle repository closes itself; its items reopen it transparently", async () => {
  await using dir = await tempDir();
  const t = manualTimers();
  const db = await openDatabase({
    dir: dir.path,
    schemas: [TODO],
    idleCloseMs: 1000,
    timers: t.timers,
  });
  await db.open("/todo/idle");
  const item = db.create("/todo/idle/a", "todo", { text: "a" });
  item.set("n", 1); // written right before the close: must not be lost
  await db.sweep(); // touched (and pinned while the write is signed): stays
  await db.flush();
  assert.ok(db.isOpen("/todo/idle"));
  await db.sweep();
  await db.sweep();
  assert.equal(
    db.isOpen("/todo/idle"),
    false,
    "closed after two untouched sweeps",
  );
  assert.equal(item.get("n"), 1, "the item reopens its repository");
  assert.ok(db.isOpen("/todo/idle"));
  item.set("n", 2);
  assert.equal(db.item("/todo/idle/a")!.get("n"), 2);
  assert.deepEqual(db.keys("/todo/idle"), ["a"]);
  await db.close();
  assert.equal(t.active(), false, "the sweep stops with the database");
  const again = await openDatabase({ dir: dir.path, schemas: [TODO] });
  assert.equal(
    (await again.load("/todo/idle/a"))!.get("n"),
    2,
    "nothing lost across the close",
  );
  await again.close();
});

Deno.test("live queries and item listeners pin a repository; explicit close still wins", async () => {
  const t = manualTimers();
  const db = await openDatabase({
    memory: true,
    schemas: [TODO],
    idleCloseMs: 1000,
    timers: t.timers,
  });
  await db.open("/todo/q");
  await db.open("/todo/l");
  await db.open("/todo/x");
  db.create("/todo/q/a", "todo", { text: "a" });
  const l = db.create("/todo/l/a", "todo", { text: "a" });
  db.create("/todo/x/a", "todo", { text: "a" });
  const q = db.query({ source: "/todo/q" });
  await q.ready;
  const seen: number[] = [];
  const off = l.onChange((it) => seen.push(it.get("n") as number));
  await db.flush();
  for (let i = 0; i < 3; i++) await db.sweep();
  assert.ok(db.isOpen("/todo/q"), "a live query pins");
  assert.ok(db.isOpen("/todo/l"), "an item listener pins");
  assert.equal(db.isOpen("/todo/x"), false, "unpinned and idle: closed");
  db.create("/todo/q/b", "todo", { text: "b" });
  assert.equal(q.count, 2, "the query keeps working");
  l.set("n", 7);
  assert.deepEqual(seen, [7]);
  q.close();
  off();
  await db.flush();
  for (let i = 0; i < 3; i++) await db.sweep();
  assert.equal(db.isOpen("/todo/q"), false);
  assert.equal(db.isOpen("/todo/l"), false);
  // Explicit close: handles stop working with a clear error, as documented.
  await db.open("/todo/l");
  await db.close("/todo/l");
  assert.throws(() => l.get("text"), /Repository \/todo\/l is closed/);
  await db.close();
});

Deno.test("a memory budget closes the least recently used repositories", async () => {
  const storage = new MemoryStorage();
  const db = await openDatabase({ storage, schemas: [TODO], idleCloseMs: 0 });
  for (let r = 0; r < 6; r++) {
    await db.open(`/todo/r${r}`);
    for (let i = 0; i < 200; i++) {
      db.create(`/todo/r${r}/k${i}`, "todo", { text: "x".repeat(50) });
    }
  }
  await db.close();
  const small = await openDatabase({
    storage,
    schemas: [TODO],
    idleCloseMs: 0,
    memoryBudgetBytes: 150_000,
  });
  for (let r = 0; r < 6; r++) {
    await small.open(`/todo/r${r}`);
    small.count(`/todo/r${r}`);
  }
  const open = [0, 1, 2, 3, 4, 5].filter((r) => small.isOpen(`/todo/r${r}`));
  assert.ok(open.length < 6, `some repositories were closed (${open})`);
  assert.ok(open.includes(5), "the most recently used stays");
  assert.ok(!open.includes(0), "the least recently used goes first");
  assert.equal(small.count("/todo/r0"), 200, "a closed one reopens on use");
  await small.close();
});

Deno.test("invalid residency options are refused", async () => {
  await assert.rejects(
    openDatabase({ memory: true, idleCloseMs: -1 }),
    /Invalid idleCloseMs -1/,
  );
});
