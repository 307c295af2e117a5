import assert from "node:assert/strict";
import { MemoryStorage, openDatabase } from "../mod.ts";
import { EVERYTHING, tempDir, TODO } from "./_helpers.ts";

Deno.test("create, read, update, delete and list items", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  await db.open("/todo/home");
  const milk = db.create("/todo/home/milk", "todo", { text: "Buy milk" });
  assert.equal(milk.get("text"), "Buy milk");
  assert.equal(milk.get("done"), false, "default applies");
  milk.set("done", true);
  assert.equal(milk.get("done"), true);
  milk.update({ text: "Buy oat milk", n: 2 });
  assert.deepEqual(milk.toObject(), { text: "Buy oat milk", done: true, n: 2 });
  const auto = db.create("/todo/home", "todo", { text: "auto key" });
  assert.match(auto.key, /^[a-z0-9]{12}$/);
  assert.equal(db.item(auto.path), auto, "same live object");
  assert.deepEqual(db.keys("/todo/home").sort(), [auto.key, "milk"].sort());
  assert.equal(db.count("/todo/home"), 2);
  milk.delete();
  assert.equal(milk.isDeleted, true);
  assert.equal(db.count("/todo/home"), 1);
  assert.deepEqual(db.keys("/todo/home"), [auto.key]);
  assert.deepEqual(
    db.keys("/todo/home", { includeDeleted: true }).sort(),
    [auto.key, "milk"].sort(),
  );
  assert.equal(db.item("/todo/home/nothing"), undefined);
  await db.close();
});

Deno.test("every field type round-trips through storage", async () => {
  const storage = new MemoryStorage();
  const when = new Date("2026-01-02T03:04:05.678Z");
  {
    const db = await openDatabase({ storage, schemas: [EVERYTHING] });
    await db.open("/all/x");
    db.create("/all/x/a", "all", {
      s: "str",
      n: 1.5,
      b: true,
      d: when,
      tags: new Set(["b", "a", 3]),
      attrs: new Map<string, string | number | boolean | null>([["k", "v"], [
        "z",
        null,
      ], ["n", 1]]),
      body: "hello text",
    });
    await db.close();
  }
  const db = await openDatabase({ storage, schemas: [EVERYTHING] });
  const item = (await db.load("/all/x/a"))!;
  assert.equal(item.get("s"), "str");
  assert.equal(item.get("n"), 1.5);
  assert.equal(item.get("b"), true);
  assert.equal((item.get("d") as Date).getTime(), when.getTime());
  assert.deepEqual(item.get("tags"), new Set([3, "a", "b"]));
  assert.deepEqual(
    item.get("attrs"),
    new Map<string, unknown>([["k", "v"], ["n", 1], ["z", null]]),
  );
  assert.equal(item.get("body"), "hello text");
  // Returned sets are copies: mutating them changes nothing stored.
  (item.get("tags") as Set<string>).add("zzz");
  assert.equal((item.get("tags") as Set<string>).has("zzz"), false);
  await db.close();
});

Deno.test("writes in one tick become one commit per item", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  await db.open("/todo/t");
  const a = db.create("/todo/t/a", "todo", { text: "a" });
  for (let i = 0; i < 100; i++) a.set("n", i);
  const b = db.create("/todo/t/b", "todo", { text: "b" });
  b.set("done", true);
  await db.flush();
  assert.equal(a.history().length, 1);
  assert.equal(b.history().length, 1);
  a.set("n", 1000);
  await db.flush();
  const h = a.history();
  assert.equal(h.length, 2);
  assert.deepEqual(
    h[1].parents,
    [h[0].id],
    "parents are the heads the write saw",
  );
  assert.ok(h[1].ts > h[0].ts);
  await db.close();
});

Deno.test("change events fire for local writes and unsubscribe works", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  const repo = await db.open("/todo/ev");
  const item = db.create("/todo/ev/x", "todo", { text: "x" });
  const seen: string[] = [];
  const off = item.onChange((it) => seen.push(String(it.get("text"))));
  const repoSeen: string[] = [];
  const offRepo = repo.onChange((c) => repoSeen.push(c.path));
  item.set("text", "y");
  off();
  item.set("text", "z");
  offRepo();
  item.set("text", "w");
  assert.deepEqual(seen, ["y"]);
  assert.deepEqual(repoSeen, ["/todo/ev/x", "/todo/ev/x"]);
  await db.close();
});

Deno.test("a listener that throws does not break the write", async () => {
  const errors: unknown[] = [];
  const db = await openDatabase({
    memory: true,
    schemas: [TODO],
    onError: (e) => errors.push(e),
  });
  await db.open("/todo/ev");
  const item = db.create("/todo/ev/x", "todo", { text: "x" });
  item.onChange(() => {
    throw new Error("listener bug");
  });
  item.set("text", "y");
  assert.equal(item.get("text"), "y");
  assert.equal(errors.length, 1);
  await db.close();
});

Deno.test("file database persists items, keys and history across reopen", async () => {
  await using dir = await tempDir();
  {
    const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
    await db.open("/todo/p");
    for (let i = 0; i < 50; i++) {
      db.create(`/todo/p/k${i}`, "todo", { text: `t${i}`, n: i });
    }
    await db.flush();
    db.item("/todo/p/k3")!.set("done", true);
    db.item("/todo/p/k4")!.delete();
    await db.close();
  }
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  assert.deepEqual(await db.listRepositories(), ["/todo/p"]);
  await db.open("/todo/p");
  assert.equal(db.count("/todo/p"), 49);
  assert.equal(db.item("/todo/p/k3")!.get("done"), true);
  assert.equal(db.item("/todo/p/k3")!.history().length, 2);
  assert.equal(db.item("/todo/p/k4")!.isDeleted, true);
  assert.equal(db.item("/todo/p/k10")!.get("n"), 10);
  await db.close();
});

Deno.test("explicit open and close of repositories", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  assert.throws(() => db.item("/todo/c/x"), /Repository \/todo\/c is not open/);
  await db.open("/todo/c");
  const x = db.create("/todo/c/x", "todo", { text: "x" });
  assert.ok(db.isOpen("/todo/c"));
  await db.close("/todo/c");
  assert.equal(db.isOpen("/todo/c"), false);
  assert.throws(() => x.get("text"), /Repository \/todo\/c is closed/);
  const again = await db.load("/todo/c/x");
  assert.equal(again!.get("text"), "x");
  await db.close();
});

Deno.test("the session key file is 0600 and the private key never appears in logs", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  await db.open("/todo/k");
  db.create("/todo/k/a", "todo", { text: "a" });
  await db.close();
  const stat = await Deno.stat(`${dir.path}/session-key.meta`);
  assert.equal(stat.mode! & 0o777, 0o600);
  const keyFile = await Deno.readFile(`${dir.path}/session-key.meta`);
  const { decode } = await import("../lib/encoding/msgpack.ts");
  const { sk } = decode(keyFile) as { sk: Uint8Array };
  const secret = sk.subarray(sk.length - 32); // the raw Ed25519 seed ends the PKCS#8
  const log = await Deno.readFile(`${dir.path}/todo.k.capra`);
  const hex = (b: Uint8Array) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  assert.equal(hex(log).includes(hex(secret)), false);
  // Same identity after reopen.
  const db2 = await openDatabase({ dir: dir.path, schemas: [TODO] });
  assert.equal(db2.sessionId, db.sessionId);
  await db2.close();
});

Deno.test("a second process-local open of the same directory is refused", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path });
  await assert.rejects(
    openDatabase({ dir: dir.path }),
    /Cannot open database ".*": it is locked by process \d+/,
  );
  await db.close();
  const again = await openDatabase({ dir: dir.path });
  await again.close();
});
