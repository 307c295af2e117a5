/**
 * Schema evolution across replicas: an older replica keeps listing, querying and syncing a
 * repository that holds items of a newer schema version, and exposes them raw; replicas
 * that register different field sets under one schema id never lose each other's fields
 * (unknown fields are carried through writes and merges) and report the mismatch.
 */
import assert from "node:assert/strict";
import {
  type Database,
  MemoryStorage,
  openDatabase,
  type Schema,
  SCHEMA_FINGERPRINT_FIELD,
  schemaFingerprint,
  SchemaMismatchError,
} from "../mod.ts";
import {
  buildCommit,
  commitIdBytes,
  decodeCommit,
} from "../lib/commit/commit.ts";
import { EVERYTHING } from "./_helpers.ts";

const ALL_V2: Schema = {
  ns: "all",
  version: 2,
  fields: { ...EVERYTHING.fields, extra: { type: "string" } },
  upgrade: (d) => ({ ...d, extra: "upgraded" }),
};

const LONG = "The quick brown fox jumps over the lazy dog. ".repeat(8);

/** Moves every commit `from` holds in `repo` to `to` (both trust each other). */
async function move(from: Database, to: Database, repo: string) {
  const r = from.repository(repo);
  await r.flush();
  const result = await to.repository(repo).ingest(
    r.commitIds().map((id) => r.commitRecord(id)!),
  );
  assert.deepEqual(result.rejected, []);
  return result;
}

async function replicas(schemas: Schema[][], repo: string) {
  const errors: unknown[][] = schemas.map(() => []);
  const dbs = await Promise.all(
    schemas.map((s, i) =>
      openDatabase({
        memory: true,
        schemas: s,
        onError: (e) => errors[i].push(e),
      })
    ),
  );
  for (const a of dbs) {
    for (const b of dbs) if (a !== b) a.trustSession(b.session);
    await a.open(repo);
  }
  return { dbs, errors };
}

Deno.test("an older replica lists, counts, queries and syncs items of a newer schema version, and shows them raw", async () => {
  const repo = "/all/x";
  const { dbs: [newer, older, fresh], errors } = await replicas(
    [[EVERYTHING, ALL_V2], [EVERYTHING], [EVERYTHING, ALL_V2]],
    repo,
  );
  older.create(`${repo}/old`, "all/1", { s: "v1 item" });
  const data = {
    s: "str",
    n: 1.5,
    b: true,
    d: new Date(1_700_000_000_000),
    tags: new Set(["a", 2]),
    attrs: new Map<string, string | number>([["k", "v"], ["n", 1]]),
    body: LONG,
    extra: "only in v2",
  };
  newer.create(`${repo}/new`, "all/2", data);
  await move(older, newer, repo);
  await move(newer, older, repo);
  // Listing, counting, queries (with and without a schema filter) never throw.
  assert.deepEqual(older.keys(repo).sort(), ["new", "old"]);
  assert.equal(older.count(repo), 2);
  for (const schema of [undefined, "all"]) {
    const q = older.query({
      source: repo,
      ...(schema ? { schema } : {}),
      predicate: (i) => i.get("s") !== "",
      sortBy: "s",
    });
    await q.ready;
    assert.equal(q.error, undefined);
    assert.deepEqual(q.results.map((i) => i.key), ["old"]);
    q.close();
  }
  // The newer item: raw data and its schema id; typed reads and writes refused clearly.
  const item = older.item(`${repo}/new`)!;
  assert.equal(item.isReadable, false);
  assert.equal(item.schemaId, "all/2");
  assert.equal(item.isDeleted, false);
  const raw = older.rawItem(`${repo}/new`)!;
  assert.deepEqual(raw, item.raw());
  assert.equal(raw.schema, "all/2");
  assert.match(
    raw.unreadable!,
    /schema "all\/2", which is not registered here/,
  );
  assert.deepEqual(raw.data, {
    s: "str",
    n: 1.5,
    b: true,
    d: 1_700_000_000_000,
    tags: [2, "a"],
    attrs: { k: "v", n: 1 },
    body: LONG,
    extra: "only in v2",
  });
  assert.throws(
    () => item.get("s"),
    /Cannot read \/all\/x\/new: it is written under schema "all\/2", which is not registered here \(a newer version; registered: all\/1\); item.raw\(\) gives its stored data/,
  );
  assert.throws(() => item.toObject(), TypeError);
  assert.throws(() => item.schema, TypeError);
  assert.throws(() => item.set("s", "x"), /Cannot write \/all\/x\/new/);
  assert.throws(() => item.delete(), /Cannot delete \/all\/x\/new/);
  assert.throws(
    () => older.create(`${repo}/new`, "all", { s: "x" }),
    /Cannot create \/all\/x\/new: it exists and cannot be written here/,
  );
  assert.equal(older.item(`${repo}/old`)!.get("s"), "v1 item");
  // Synced intact: a third replica that knows all/2 gets the item from the older one.
  await move(older, fresh, repo);
  const relayed = fresh.item(`${repo}/new`)!;
  assert.equal(relayed.get("extra"), "only in v2");
  assert.deepEqual(relayed.get("tags"), new Set(["a", 2]));
  assert.equal(fresh.item(`${repo}/old`)!.get("extra"), "upgraded");
  // The newer replica edits it again: the older one still lists it, raw and current.
  relayed.update({ s: "edited", body: LONG.replace("lazy", "sleepy") });
  await move(fresh, older, repo);
  const last = fresh.repository(repo).commitOf(relayed.heads[0])!;
  assert.equal(last.body.kind, "delta", "a text splice in a delta");
  assert.deepEqual(older.rawItem(`${repo}/new`)!.data.s, "edited");
  assert.equal(
    older.rawItem(`${repo}/new`)!.data.body,
    LONG.replace("lazy", "sleepy"),
    "the splice of a field the schema does not know is applied by shape",
  );
  assert.equal(older.count(repo), 2);
  for (const e of errors) assert.deepEqual(e, []);
  for (const db of [newer, older, fresh]) await db.close();
});

Deno.test("an older replica reopens a repository holding newer items from disk, and sees concurrent heads raw", async () => {
  const repo = "/all/y";
  const storage = new MemoryStorage();
  const newer = await openDatabase({
    memory: true,
    schemas: [EVERYTHING, ALL_V2],
  });
  let older = await openDatabase({ storage, schemas: [EVERYTHING] });
  newer.trustSession(older.session);
  older.trustSession(newer.session);
  await newer.open(repo);
  await older.open(repo);
  older.create(`${repo}/k`, "all", { s: "base", n: 1 });
  await move(older, newer, repo);
  // Concurrent: the older replica edits under all/1, the newer under all/2.
  older.item(`${repo}/k`)!.set("n", 2);
  newer.item(`${repo}/k`)!.update({ s: "newer", extra: "e" });
  newer.create(`${repo}/single`, "all/2", { s: "one commit" });
  await move(newer, older, repo);
  await older.close();
  older = await openDatabase({ storage, schemas: [EVERYTHING] });
  older.trustSession(newer.session);
  await older.open(repo);
  assert.deepEqual(older.keys(repo).sort(), ["k", "single"]);
  assert.equal(older.count(repo), 2);
  const k = older.item(`${repo}/k`)!;
  assert.equal(k.heads.length, 2);
  assert.equal(k.isReadable, false, "one head is of a schema unknown here");
  // Raw view: last writer wins per field over the merge base.
  assert.deepEqual(
    { s: k.raw().data.s, n: k.raw().data.n, extra: k.raw().data.extra },
    { s: "newer", n: 2, extra: "e" },
  );
  assert.equal(older.item(`${repo}/single`)!.raw().data.s, "one commit");
  // The newer replica merges for real.
  await move(older, newer, repo);
  const merged = newer.item(`${repo}/k`)!;
  assert.equal(merged.get("n"), 2);
  assert.equal(merged.get("s"), "newer");
  await older.close();
  await newer.close();
});

const README_TODO: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
  },
};
const APP_TODO: Schema = {
  ns: "todo",
  version: 1,
  fields: { ...README_TODO.fields, order: { type: "string" } },
};

Deno.test("two field sets under one schema id: a write from one never wipes the other's field, and the mismatch is reported on both", async () => {
  const repo = "/todo/home";
  const { dbs: [readme, app], errors } = await replicas(
    [[README_TODO], [APP_TODO]],
    repo,
  );
  const mismatches: string[][] = [[], []];
  readme.onSchemaMismatch((m) => mismatches[0].push(m.schema));
  app.onSchemaMismatch((m) => mismatches[1].push(m.schema));
  app.create(`${repo}/milk`, "todo", { text: "Buy milk", order: "a5" });
  await move(app, readme, repo);
  const mine = readme.item(`${repo}/milk`)!;
  assert.equal(mine.isReadable, true);
  assert.equal(mine.get("text"), "Buy milk");
  assert.equal(mine.raw().data.order, "a5", "kept raw");
  mine.set("done", true);
  await move(readme, app, repo);
  const theirs = app.item(`${repo}/milk`)!;
  assert.equal(theirs.get("done"), true);
  assert.equal(
    theirs.get("order"),
    "a5",
    "the field readme does not know survives",
  );
  // Reported on both sides: readme sees a field it does not declare, app sees readme's
  // fingerprint on readme's commit.
  assert.deepEqual(mismatches, [["todo/1"], ["todo/1"]]);
  const [m0] = readme.schemaMismatches;
  assert.deepEqual(m0.unknownFields, ["order"]);
  assert.match(
    m0.message,
    /Schema mismatch for "todo\/1" at \/todo\/home\/milk: .*fields "order" are not declared here/,
  );
  const [m1] = app.schemaMismatches;
  assert.deepEqual(m1.fingerprint, {
    writer: schemaFingerprint(README_TODO),
    local: schemaFingerprint(APP_TODO),
  });
  assert.ok(errors[0].some((e) => e instanceof SchemaMismatchError));
  assert.ok(errors[1].some((e) => e instanceof SchemaMismatchError));
  // Reported once, not per read or commit.
  mine.set("text", "Buy oat milk");
  await move(readme, app, repo);
  assert.equal(app.item(`${repo}/milk`)!.get("order"), "a5");
  assert.equal(readme.schemaMismatches.length, 1);
  assert.equal(app.schemaMismatches.length, 1);
  for (const db of [readme, app]) await db.close();
});

Deno.test("merges keep unknown fields: last writer wins on the raw value, the same on every replica", async () => {
  const repo = "/todo/m";
  const { dbs: [readme, app1, app2] } = await replicas(
    [[README_TODO], [APP_TODO], [APP_TODO]],
    repo,
  );
  app1.create(`${repo}/k`, "todo", { text: "t", order: "a0" });
  await move(app1, app2, repo);
  await move(app1, readme, repo);
  // Three concurrent edits: two of the field readme does not know, one of its own.
  app1.item(`${repo}/k`)!.set("order", "b1");
  app2.item(`${repo}/k`)!.set("order", "b2");
  readme.item(`${repo}/k`)!.set("text", "edited by readme");
  for (const [a, b] of [[app1, readme], [app2, readme]] as const) {
    await move(a, b, repo);
  }
  // readme holds three heads and writes the merge commit.
  const k = readme.item(`${repo}/k`)!;
  assert.equal(k.heads.length, 3);
  const headsByTs = k.history().filter((h) => h.head).sort((x, y) =>
    x.ts - y.ts || (x.id < y.id ? -1 : 1)
  );
  const appHeads = headsByTs.filter((h) => h.session !== readme.sessionId);
  const winner = appHeads[appHeads.length - 1].session === app1.sessionId
    ? "b1"
    : "b2";
  assert.equal(k.raw().data.order, winner);
  k.set("done", true);
  await move(readme, app1, repo);
  await move(readme, app2, repo);
  for (const db of [app1, app2]) {
    const v = db.item(`${repo}/k`)!;
    assert.equal(v.heads.length, 1);
    assert.deepEqual(v.toObject(), {
      text: "edited by readme",
      done: true,
      order: winner,
    });
  }
  for (const db of [readme, app1, app2]) await db.close();
});

Deno.test("a field of another type under one schema id is kept raw, carried through, and reported", async () => {
  const repo = "/t/x";
  const A: Schema = {
    ns: "t",
    version: 1,
    fields: { a: { type: "string" }, n: { type: "number" } },
  };
  const B: Schema = {
    ns: "t",
    version: 1,
    fields: { a: { type: "string" }, n: { type: "string" } },
  };
  const { dbs: [a, b], errors } = await replicas([[A], [B]], repo);
  b.create(`${repo}/k`, "t", { a: "x", n: "not a number" });
  await move(b, a, repo);
  const k = a.item(`${repo}/k`)!;
  assert.equal(k.get("n"), undefined);
  assert.equal(k.raw().data.n, "not a number");
  assert.ok(
    a.schemaMismatches.some((m) => m.invalidFields.join() === "n"),
    JSON.stringify(a.schemaMismatches),
  );
  k.set("a", "y");
  await move(a, b, repo);
  assert.deepEqual(b.item(`${repo}/k`)!.toObject(), {
    a: "y",
    n: "not a number",
  });
  // Writing the field replaces the raw value.
  k.set("n", 3);
  assert.equal(k.raw().data.n, 3);
  assert.ok(errors[0].length >= 1);
  for (const db of [a, b]) await db.close();
});

Deno.test("commits without a fingerprint (older writers) keep their ids and read as before", async () => {
  const repo = "/all/old";
  const db = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  const peer = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  db.trustSession(peer.session);
  await db.open(repo);
  // The commit an older writer made: data without the fingerprint key.
  const c = buildCommit({
    key: `${repo}/k` as never,
    parents: [],
    session: peer.sessionId,
    ts: Date.now() * 1024,
    schema: "all/1",
    body: { kind: "full", data: { s: "old" }, deleted: false },
  });
  const record = new Uint8Array(65 + c.bytes.length);
  record[0] = 1;
  record.set(await peer.sign(commitIdBytes(c.id)), 1);
  record.set(c.bytes, 65);
  const result = await db.repository(repo).ingest([record]);
  assert.deepEqual(result.accepted, [c.id]);
  assert.equal(decodeCommit(c.bytes).id, c.id);
  const k = db.item(`${repo}/k`)!;
  assert.equal(k.get("s"), "old");
  assert.deepEqual(db.schemaMismatches, []);
  // A new write records the fingerprint; the old commit keeps its id as its parent.
  k.set("n", 1);
  await db.flush();
  const head = db.repository(repo).commitOf(k.heads[0])!;
  assert.deepEqual(head.parents, [c.id]);
  const full = head.body.kind === "full" ? head.body.data : head.body.changed;
  assert.equal(full[SCHEMA_FINGERPRINT_FIELD], schemaFingerprint(EVERYTHING));
  await db.close();
  await peer.close();
});
