/**
 * Garbage collection and sync: a fresh peer pulls a compacted repository, a peer that
 * synced before follows the server's horizon, and a peer whose unsent edits are older
 * than the horizon re-applies them on the server's current state (tests/gc_offline_test.ts
 * has the harder cases).
 */
import assert from "node:assert/strict";
import { type Database, MemoryStorage, openDatabase } from "../mod.ts";
import { answerSyncBytes, type SyncTransport } from "../lib/sync/sync_round.ts";
import { EVERYTHING, snapshot } from "./_helpers.ts";

const DAY = 24 * 3_600_000;
const REPO = "/all/gcsync";

async function clockedDb(t: { now: number }): Promise<Database> {
  const db = await openDatabase({
    storage: new MemoryStorage(),
    schemas: [EVERYTHING],
    clock: () => t.now,
  });
  await db.open(REPO);
  return db;
}

function transportTo(server: Database): SyncTransport {
  return { request: (bytes) => answerSyncBytes((r) => server.open(r), bytes) };
}

/** A server repository with long histories, compacted with a 1-day retention. */
async function compactedServer(t: { now: number }, peers: Database[]) {
  const server = await clockedDb(t);
  for (const p of peers) {
    server.trustSession(p.session);
    p.trustSession(server.session);
  }
  for (let k = 0; k < 5; k++) {
    const item = server.create(`${REPO}/k${k}`, "all", { s: `v${k}`, n: 0 });
    for (let i = 1; i <= 40; i++) {
      t.now += 1000;
      item.update({ n: i, body: `text ${k} ${i}` });
      await server.flush();
    }
  }
  return server;
}

function values(db: Database): string[] {
  return db.keys(REPO).sort().map((k) => snapshot(db.item(`${REPO}/${k}`)!));
}

Deno.test("a fresh peer pulls a compacted repository: same values, edits merge both ways", async () => {
  const t = { now: Date.now() - 10 * DAY };
  const fresh = await clockedDb(t);
  const server = await compactedServer(t, [fresh]);
  t.now += 3 * DAY;
  server.item(`${REPO}/k0`)!.set("s", "recent");
  const gc = await server.compact(REPO, { retainMs: DAY });
  assert.ok(gc.droppedCommits > 150, `dropped ${gc.droppedCommits}`);
  const stats = await fresh.syncWith(REPO, transportTo(server));
  assert.deepEqual(stats.rejected, []);
  assert.equal(fresh.count(REPO), 5);
  assert.deepEqual(values(fresh), values(server));
  // Kept commits name collected parents: the fresh peer knows them as pruned, persists
  // that, and both sides keep merging.
  fresh.item(`${REPO}/k3`)!.set("b", true);
  server.item(`${REPO}/k3`)!.update({ tags: new Set(["srv"]) });
  await fresh.syncWith(REPO, transportTo(server));
  assert.deepEqual(values(fresh), values(server));
  assert.equal(fresh.item(`${REPO}/k3`)!.get("b"), true);
  assert.deepEqual([...fresh.item(`${REPO}/k3`)!.get("tags") as Set<string>], [
    "srv",
  ]);
  const again = await fresh.syncWith(REPO, transportTo(server));
  assert.equal(again.rounds, 1, "in sync after the pull");
  for (const d of [fresh, server]) await d.close();
});

Deno.test("a peer that synced before GC follows the server's horizon and settles in one round", async () => {
  const t = { now: Date.now() - 10 * DAY };
  const peer = await clockedDb(t);
  const server = await compactedServer(t, [peer]);
  await peer.syncWith(REPO, transportTo(server));
  const before = peer.repository(REPO).commitIds().length;
  assert.ok(before >= 200, `${before} commits before`);
  t.now += 3 * DAY;
  await server.compact(REPO, { retainMs: DAY });
  await peer.syncWith(REPO, transportTo(server));
  const after = peer.repository(REPO).commitIds().sort();
  assert.deepEqual(
    after,
    server.repository(REPO).commitIds().sort(),
    "the peer dropped the same history as the server",
  );
  assert.ok(after.length < before / 10, `${before} → ${after.length}`);
  assert.deepEqual(values(peer), values(server));
  const next = await peer.syncWith(REPO, transportTo(server));
  assert.equal(next.rounds, 1);
  assert.equal(next.commitsSent, 0, "old history is not pushed back");
  for (const d of [peer, server]) await d.close();
});

Deno.test("edits older than the server's horizon are not sent but re-applied on its current state, once", async () => {
  const t = { now: Date.now() - 10 * DAY };
  const stale = await clockedDb(t);
  const server = await compactedServer(t, [stale]);
  await stale.syncWith(REPO, transportTo(server));
  // The stale peer edits offline, then stays away beyond the retention window.
  t.now += 1000;
  stale.item(`${REPO}/k1`)!.set("s", "edited long ago, never sent");
  await stale.flush();
  const [offline] = stale.item(`${REPO}/k1`)!.heads;
  t.now += 3 * DAY;
  await server.compact(REPO, { retainMs: DAY });
  const serverIds = new Set(server.repository(REPO).commitIds());
  const stats = await stale.syncWith(REPO, transportTo(server));
  assert.equal(stats.obsolete, 1, "the old edit is reported");
  assert.deepEqual(
    stats.errors,
    [],
    "nothing the server would ignore was sent",
  );
  assert.equal(stats.reapplied.length, 1);
  assert.deepEqual(stats.reapplied[0].refused, [offline]);
  assert.deepEqual(stats.reapplied[0].overwritten, ["s"]);
  // The server holds a new commit with the edit, not the old one.
  const added = server.repository(REPO).commitIds().filter((id) =>
    !serverIds.has(id)
  );
  assert.deepEqual(added, [stats.reapplied[0].commit]);
  assert.equal(
    server.item(`${REPO}/k1`)!.get("s"),
    "edited long ago, never sent",
  );
  assert.deepEqual(values(stale), values(server));
  // Later syncs are quiet: nothing is re-applied twice.
  const later = await stale.syncWith(REPO, transportTo(server));
  assert.equal(later.obsolete, 0);
  assert.deepEqual(later.reapplied, []);
  assert.equal(later.rounds, 1);
  for (const d of [stale, server]) await d.close();
});

Deno.test("a peer that synced within the window merges an edit whose base is older than the cut-off", async () => {
  const t = { now: Date.now() - 10 * DAY };
  const server = await clockedDb(t);
  const peer = await clockedDb(t);
  server.trustSession(peer.session);
  peer.trustSession(server.session);
  server.create(`${REPO}/doc`, "all", { body: "hello" }); // h0, day 0
  await server.flush();
  t.now += 2 * DAY;
  await peer.syncWith(REPO, transportTo(server)); // the peer holds h0 (day 2)
  t.now += DAY / 2;
  server.item(`${REPO}/doc`)!.set("body", "hello world"); // h1 on top of h0
  await server.flush();
  t.now += DAY / 2;
  await server.compact(REPO, { retainMs: DAY }); // cut-off: day 2, after h0
  // The peer, offline since day 2 (within the window), edits on top of h0.
  peer.item(`${REPO}/doc`)!.set("body", "oh hello");
  await peer.flush();
  const stats = await peer.syncWith(REPO, transportTo(server));
  assert.deepEqual(stats.rejected, []);
  assert.equal(stats.obsolete, 0);
  assert.equal(server.item(`${REPO}/doc`)!.get("body"), "oh hello world");
  assert.deepEqual(values(peer), values(server));
  for (const d of [peer, server]) await d.close();
});

Deno.test("a replica whose storage cannot rewrite its log collects in place and reconciles", async () => {
  const t = { now: Date.now() - 10 * DAY };
  const storage = new MemoryStorage();
  // Like IndexedDB: no replaceLog.
  (storage as { replaceLog?: unknown }).replaceLog = undefined;
  const peer = await openDatabase({
    storage,
    schemas: [EVERYTHING],
    clock: () => t.now,
  });
  await peer.open(REPO);
  const server = await compactedServer(t, [peer]);
  await peer.syncWith(REPO, transportTo(server));
  t.now += 3 * DAY;
  await server.compact(REPO, { retainMs: DAY });
  const first = await peer.syncWith(REPO, transportTo(server));
  assert.equal(first.obsolete, 0, "old commits are not offered back");
  assert.deepEqual(
    peer.repository(REPO).commitIds().sort(),
    server.repository(REPO).commitIds().sort(),
  );
  assert.deepEqual(values(peer), values(server));
  const next = await peer.syncWith(REPO, transportTo(server));
  assert.equal(next.rounds, 1);
  // After a reopen the collected commits are still left out.
  await peer.close(REPO);
  await peer.open(REPO);
  const again = await peer.syncWith(REPO, transportTo(server));
  assert.equal(again.rounds, 1);
  assert.deepEqual(values(peer), values(server));
  for (const d of [peer, server]) await d.close();
});
