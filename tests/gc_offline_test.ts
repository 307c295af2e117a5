/**
 * Garbage collection and a replica that was offline longer than the server's retention
 * (issue 10, defect 10): it receives everything the server holds (old kept commits
 * included), its offline edits are re-applied on the server's current state (exactly
 * as the merge would have been with the collected history; reported, never lost, never
 * a permanent fork), its later edits reach everyone, and a short server retention is
 * announced and followed without an error loop.
 */
import assert from "node:assert/strict";
import { type Database, MemoryStorage, openDatabase } from "../mod.ts";
import { answerSyncBytes, type SyncTransport } from "../lib/sync/sync_round.ts";
import { ServerSession } from "../lib/sync/server_session.ts";
import { EVERYTHING, snapshot } from "./_helpers.ts";
import { secureServer } from "./_sync_server.ts";

const DAY = 24 * 3_600_000;
const REPO = "/all/offline";
const K1 = `${REPO}/k1`, K2 = `${REPO}/k2`;

async function clockedDb(
  t: { now: number },
  options: { minRetentionMs?: number; inPlace?: boolean } = {},
): Promise<Database> {
  const storage = new MemoryStorage();
  if (options.inPlace) {
    // Like IndexedDB: the log cannot be rewritten.
    (storage as { replaceLog?: unknown }).replaceLog = undefined;
  }
  const db = await openDatabase({
    storage,
    schemas: [EVERYTHING],
    clock: () => t.now,
    ...(options.minRetentionMs
      ? { minRetentionMs: options.minRetentionMs }
      : {}),
  });
  await db.open(REPO);
  return db;
}

function transportTo(server: Database): SyncTransport {
  return { request: (bytes) => answerSyncBytes((r) => server.open(r), bytes) };
}

function values(db: Database): string[] {
  return db.keys(REPO).sort().map((k) => snapshot(db.item(`${REPO}/${k}`)!));
}

/** A server and two replicas that trust each other, with k1 and k2 and some history. */
async function world(options: { inPlace?: boolean } = {}) {
  const t = { now: Date.now() - 10 * DAY };
  const server = await clockedDb(t);
  const stale = await clockedDb(t, options);
  const other = await clockedDb(t);
  for (const a of [server, stale, other]) {
    for (const b of [server, stale, other]) {
      if (a !== b) a.trustSession(b.session);
    }
  }
  server.create(K1, "all", { s: "k1", n: 0, body: "hello" });
  server.create(K2, "all", { s: "k2", n: 0 });
  for (let i = 1; i <= 10; i++) {
    t.now += 1000;
    server.item(K1)!.set("n", i);
    server.item(K2)!.set("n", i);
    await server.flush();
  }
  for (const r of [stale, other]) await r.syncWith(REPO, transportTo(server));
  return { t, server, stale, other };
}

async function closeAll(...dbs: Database[]) {
  for (const d of dbs) await d.close();
}

Deno.test("a replica back after the server collected its offline time gets the newer commits of items it did not touch", async () => {
  const { t, server, stale, other } = await world();
  try {
    t.now += 1000;
    stale.item(K1)!.set("s", "offline edit"); // the stale replica goes offline
    await stale.flush();
    t.now += 1000;
    other.item(K2)!.set("s", "newer k2"); // before the compaction, older than its cut-off
    await other.syncWith(REPO, transportTo(server));
    t.now += 3 * DAY;
    const gc = await server.compact(REPO, { retainMs: DAY });
    assert.ok(gc.droppedCommits > 10, `dropped ${gc.droppedCommits}`);
    const stats = await stale.syncWith(REPO, transportTo(server));
    assert.equal(stale.item(K2)!.get("s"), "newer k2", "the newer k2 arrived");
    assert.deepEqual(stats.rejected, []);
    assert.deepEqual(
      stats.errors.filter((e) => e.code === "obsolete_commits"),
      [],
      "nothing obsolete was sent",
    );
    assert.deepEqual(values(stale), values(server));
  } finally {
    await closeAll(server, stale, other);
  }
});

Deno.test("offline edits older than the server's horizon are re-applied on its current state and reported; later edits reach everyone", async () => {
  const { t, server, stale, other } = await world();
  try {
    t.now += 1000;
    stale.item(K1)!.update({ s: "offline edit", body: "hello world" });
    await stale.flush();
    const offlineIds = stale.item(K1)!.heads;
    t.now += 1000;
    // A concurrent, later edit on the server: s conflicts, body merges.
    other.item(K1)!.update({ s: "newer on the server", body: "oh hello" });
    await other.syncWith(REPO, transportTo(server));
    t.now += 3 * DAY;
    await server.compact(REPO, { retainMs: DAY });
    const stats = await stale.syncWith(REPO, transportTo(server));
    // The merge the server could not do (its base was collected), done by the replica
    // that still held the base: s by last writer (the server's edit was later), the
    // texts merged.
    const want = { s: "newer on the server", body: "oh hello world" };
    for (const db of [stale, server]) {
      const o = db.item(K1)!.toObject();
      assert.deepEqual({ s: o.s, body: o.body }, want);
    }
    assert.equal(stats.obsolete, 1);
    assert.equal(stats.reapplied.length, 1);
    const r = stats.reapplied[0];
    assert.equal(r.path, K1);
    assert.deepEqual(r.refused, offlineIds);
    assert.deepEqual(r.overwritten, ["body"], "the text the server had grew");
    assert.deepEqual(r.superseded, ["s"], "the offline s lost to a later edit");
    assert.deepEqual(server.item(K1)!.heads, [r.commit]);
    assert.deepEqual(stale.item(K1)!.heads, [r.commit]);
    // No fork: the stale replica's next edits reach the server and the other replica.
    for (let i = 0; i < 2; i++) {
      t.now += 1000;
      stale.item(K1)!.set("n", 100 + i);
      const next = await stale.syncWith(REPO, transportTo(server));
      assert.deepEqual(next.errors, [], "no error");
      assert.deepEqual(next.rejected, []);
      assert.equal(next.obsolete, 0);
      assert.equal(server.item(K1)!.get("n"), 100 + i);
    }
    await other.syncWith(REPO, transportTo(server));
    assert.equal(other.item(K1)!.get("n"), 101);
    assert.deepEqual(values(other), values(server));
    assert.deepEqual(values(stale), values(server));
    const settled = await stale.syncWith(REPO, transportTo(server));
    assert.equal(settled.rounds, 1, "in sync: one round");
  } finally {
    await closeAll(server, stale, other);
  }
});

Deno.test("an edit made after the horizon on a state the server collected is merged exactly, not over a missing base", async () => {
  const { t, server, stale, other } = await world();
  try {
    t.now += 1000;
    other.item(K1)!.set("s", "other's edit"); // the stale replica never sees it
    await other.syncWith(REPO, transportTo(server));
    t.now += 3 * DAY;
    await server.compact(REPO, { retainMs: DAY }); // k1's state the stale replica holds is collected
    // Back online after three days, the stale replica edits before it syncs: a recent
    // commit whose parent the server collected.
    stale.item(K1)!.update({ n: 77, tags: new Set(["late"]) });
    await stale.flush();
    const stats = await stale.syncWith(REPO, transportTo(server));
    for (const db of [stale, server]) {
      const o = db.item(K1)!.toObject();
      assert.deepEqual(
        { s: o.s, n: o.n, tags: [...(o.tags as Set<string>)] },
        { s: "other's edit", n: 77, tags: ["late"] },
      );
    }
    assert.equal(stats.reapplied.length, 1);
    assert.deepEqual([...stats.reapplied[0].overwritten].sort(), ["n", "tags"]);
    assert.deepEqual(stats.reapplied[0].superseded, []);
    await other.syncWith(REPO, transportTo(server));
    assert.deepEqual(values(other), values(server));
    assert.deepEqual(values(stale), values(server));
  } finally {
    await closeAll(server, stale, other);
  }
});

Deno.test("offline work on top of an old edit, on a replica that collects in place, is re-applied once", async () => {
  const { t, server, stale, other } = await world({ inPlace: true });
  try {
    t.now += 1000;
    stale.item(K1)!.set("s", "old offline edit");
    await stale.flush();
    t.now += 3 * DAY;
    await server.compact(REPO, { retainMs: DAY });
    t.now += 1000;
    // A new edit on top of the old one, and a new item, before the replica syncs.
    stale.item(K1)!.set("n", 5);
    stale.create(`${REPO}/k3`, "all", { s: "new item" });
    await stale.flush();
    const stats = await stale.syncWith(REPO, transportTo(server));
    assert.equal(stats.reapplied.length, 1, "one item re-applied");
    assert.equal(stats.reapplied[0].refused.length, 2, "both offline commits");
    const o = server.item(K1)!.toObject();
    assert.deepEqual({ s: o.s, n: o.n }, { s: "old offline edit", n: 5 });
    assert.equal(server.item(`${REPO}/k3`)!.get("s"), "new item");
    assert.deepEqual(values(stale), values(server));
    // The refused commits stay on this replica (it cannot rewrite its log), collected:
    // they are offered to no one, also after a reopen.
    await stale.close(REPO);
    await stale.open(REPO);
    const again = await stale.syncWith(REPO, transportTo(server));
    assert.equal(again.rounds, 1);
    assert.deepEqual(again.reapplied, []);
    assert.deepEqual(values(stale), values(server));
    await other.syncWith(REPO, transportTo(server));
    assert.deepEqual(values(other), values(server));
  } finally {
    await closeAll(server, stale, other);
  }
});

Deno.test("a short server retention is announced and followed: no obsolete_commits loop", async () => {
  let now = Date.now() - 10 * DAY;
  const clock = () => now;
  const srv = await secureServer({
    clock,
    now: clock,
    retentionMs: 30_000,
  });
  await srv.db.open(REPO);
  const client = await openDatabase({
    memory: true,
    schemas: [EVERYTHING],
    clock,
  }); // default minimum retention: one day
  try {
    const session = await ServerSession.create(client, "http://capra.test", {
      fetch: srv.fetch,
      now: clock,
    });
    const sync = () =>
      client.syncWith(REPO, session.httpTransport(REPO), session.hooks);
    await client.open(REPO);
    const item = client.create(`${REPO}/x`, "all", { n: 0 });
    let errors = 0;
    for (let round = 1; round <= 12; round++) {
      now += 10_000;
      item.set("n", round);
      const stats = await sync();
      errors += stats.errors.length + stats.rejected.length;
      // The server collects with its 30 s retention every few rounds.
      if (round % 3 === 0) {
        await srv.db.compact(REPO, { retainMs: 30_000 });
      }
    }
    assert.equal(errors, 0, "no error on any sync");
    assert.equal(session.retentionMs, 30_000, "the retention was announced");
    const repo = client.repository(REPO);
    assert.ok(repo.horizon > 0, "the client followed the server's horizon");
    assert.ok(
      repo.horizon > (now - DAY) * 1024,
      "down to the announced retention, not only its own day",
    );
    await sync(); // follows the last compaction
    const last = await sync();
    assert.equal(last.rounds, 1, "in sync: one round");
    assert.equal(last.commitsSent + last.commitsReceived, 0);
    assert.equal(srv.db.item(`${REPO}/x`)!.get("n"), 12);
  } finally {
    await client.close();
    await srv.db.close();
  }
});
