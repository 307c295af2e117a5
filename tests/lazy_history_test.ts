/**
 * History is loaded lazily: after a checkpoint, reopening a repository of long item
 * histories decodes only heads and their snapshots, keeps the rest as offsets, and reads
 * old commits back from storage when history, merges, sync or compaction need them.
 */
import assert from "node:assert/strict";
import {
  type Database,
  MemoryStorage,
  openDatabase,
  type Storage,
} from "../mod.ts";
import { FileStorage } from "../lib/storage/file_storage.ts";
import { answerSyncBytes } from "../lib/sync/sync_round.ts";
import type { RepoPath } from "../lib/path.ts";
import { scanFrames } from "../lib/storage/frames.ts";
import { peekItemKey } from "../lib/commit/commit.ts";
import { CHECKPOINT_MIN_RECORDS } from "../testing.ts";
import { EVERYTHING, snapshot, tempDir } from "./_helpers.ts";

const DAY = 24 * 3_600_000;
const REPO = "/all/lazy";
const ITEMS = 8;
const EDITS = 160; // 8 × 161 commits: above the checkpoint threshold

type Clock = { now: number };

function open(storage: Storage, t: Clock): Promise<Database> {
  return openDatabase({ storage, schemas: [EVERYTHING], clock: () => t.now });
}

/** Long histories: item k ends on a delta for odd k, on a full snapshot for k = 0. */
async function build(storage: Storage, t: Clock): Promise<Database> {
  const db = await open(storage, t);
  await db.open(REPO);
  for (let k = 0; k < ITEMS; k++) {
    db.create(`${REPO}/k${k}`, "all", { s: `item ${k}`, n: 0, body: "x" });
  }
  for (let e = 1; e <= EDITS; e++) {
    for (let k = 0; k < ITEMS; k++) {
      // Item k stops k edits early, so heads differ in delta/full kind.
      if (e <= EDITS - k) db.item(`${REPO}/k${k}`)!.set("n", e);
    }
    t.now += 5;
    await db.flush();
  }
  return db;
}

function values(db: Database): string[] {
  return Array.from(
    { length: ITEMS },
    (_, k) => snapshot(db.item(`${REPO}/k${k}`)!),
  );
}

const storages: [string, () => Promise<{ make: () => Promise<Storage> }>][] = [
  ["memory", () => {
    const s = new MemoryStorage();
    return Promise.resolve({ make: () => Promise.resolve(s) });
  }],
];

async function withFiles<T>(
  fn: (make: () => Promise<Storage>) => Promise<T>,
): Promise<T> {
  await using dir = await tempDir();
  return await fn(() => FileStorage.open(dir.path));
}

async function each(
  fn: (make: () => Promise<Storage>) => Promise<void>,
): Promise<void> {
  for (const [, setup] of storages) await fn((await setup()).make);
  await withFiles(fn);
}

Deno.test("reopening decodes only heads and snapshots; history() reads the rest back", async () => {
  await each(async (make) => {
    const t = { now: Date.now() - 10 * DAY };
    const db = await build(await make(), t);
    assert.ok(ITEMS * (EDITS + 1) - 28 >= CHECKPOINT_MIN_RECORDS);
    const before = values(db);
    const histories = Array.from(
      { length: ITEMS },
      (_, k) => db.history(`${REPO}/k${k}`).map((c) => c.id),
    );
    const heads = Array.from(
      { length: ITEMS },
      (_, k) => db.item(`${REPO}/k${k}`)!.heads,
    );
    await db.close(); // writes the checkpoint

    const again = await open(await make(), t);
    const repo = await again.open(REPO);
    assert.equal(repo.stats().decodedCommits, 0);
    assert.deepEqual(values(again), before);
    const s = repo.stats();
    // Heads plus the snapshots delta heads depend on: at most two commits per item.
    assert.ok(s.decodedCommits <= 2 * ITEMS, `decoded ${s.decodedCommits}`);
    assert.ok(s.lazyCommits >= ITEMS * (EDITS + 1) - 2 * ITEMS - 28);
    assert.equal(s.storageReads, 0);
    assert.ok(
      s.logBytesInMemory < ITEMS * (EDITS + 1) * 150 / 10,
      `${s.logBytesInMemory} log bytes kept`,
    );
    for (let k = 0; k < ITEMS; k++) {
      assert.deepEqual(again.item(`${REPO}/k${k}`)!.heads, heads[k]);
    }
    // history() loads one item's commits, in the same order as before.
    const h = again.history(`${REPO}/k3`);
    assert.deepEqual(h.map((c) => c.id), histories[3]);
    assert.equal(h.filter((c) => c.head).length, 1);
    assert.ok(repo.stats().decodedCommits <= 2 * ITEMS + EDITS + 1);
    assert.ok(repo.stats().storageReads > 0);
    for (let k = 0; k < ITEMS; k++) {
      assert.deepEqual(
        again.history(`${REPO}/k${k}`).map((c) => c.id),
        histories[k],
      );
    }
    await again.close();
  });
});

Deno.test("local writes on lazy history keep the delta chain rule and survive reopen", async () => {
  await each(async (make) => {
    const t = { now: Date.now() - 10 * DAY };
    await (await build(await make(), t)).close();
    const db = await open(await make(), t);
    await db.open(REPO);
    for (let e = 1; e <= 45; e++) {
      for (let k = 0; k < ITEMS; k++) {
        db.item(`${REPO}/k${k}`)!.set("s", `edit ${e}`);
      }
      t.now += 5;
      await db.flush();
    }
    const mine = values(db);
    await db.close();
    const again = await open(await make(), t);
    await again.open(REPO);
    assert.deepEqual(values(again), mine);
    for (let k = 0; k < ITEMS; k++) {
      const perBase = new Map<string, number>();
      for (const c of again.history(`${REPO}/k${k}`)) {
        if (c.base) perBase.set(c.base, (perBase.get(c.base) ?? 0) + 1);
      }
      for (const n of perBase.values()) assert.ok(n <= 20, `${n} deltas`);
    }
    await again.close();
  });
});

Deno.test("a concurrent edit on an old commit merges after a lazy reopen", async () => {
  await each(async (make) => {
    const t = { now: Date.now() - 10 * DAY };
    const storage = await make();
    const a = await open(storage, t);
    await a.open(REPO);
    const other = await open(new MemoryStorage(), t);
    a.trustSession(other.session);
    other.trustSession(a.session);
    await other.open(REPO);
    a.create(`${REPO}/x`, "all", { s: "start", n: 0, tags: new Set(["a"]) });
    await a.flush();
    // The peer forks from the first commit; a then writes a long history.
    const ra = a.repository(REPO);
    await other.repository(REPO).ingest(
      ra.commitIds().map((id) => ra.commitRecord(id)!),
    );
    await build_on(a, t);
    await a.close(); // checkpoint: the fork point is now lazy history
    other.item(`${REPO}/x`)!.update({ s: "theirs", tags: new Set(["a", "b"]) });
    await other.flush();

    const reopened = await open(await make(), t);
    reopened.trustSession(other.session);
    const r = await reopened.open(REPO);
    assert.equal(reopened.item(`${REPO}/x`)!.get("n"), 1500);
    const lazyBefore = r.stats().lazyCommits;
    assert.ok(lazyBefore > 1000, `${lazyBefore} lazy`);
    const ro = other.repository(REPO);
    const res = await r.ingest(
      ro.commitIds().map((id) => ro.commitRecord(id)!),
    );
    assert.equal(res.accepted.length, 1);
    const x = reopened.item(`${REPO}/x`)!;
    assert.equal(x.heads.length, 2);
    assert.equal(x.get("s"), "theirs");
    assert.equal(x.get("n"), 1500);
    assert.deepEqual([...(x.get("tags") as Set<string>)].sort(), ["a", "b"]);
    const merged = snapshot(x);
    await reopened.close();

    // Reopened again: the foreign commit lies after the checkpoint and names an old
    // parent, so the item's history is loaded to merge; the value is unchanged.
    const third = await open(await make(), t);
    await third.open(REPO);
    assert.equal(snapshot(third.item(`${REPO}/x`)!), merged);

    // A replica holding all commits computes the same value.
    const fresh = await open(new MemoryStorage(), t);
    fresh.trustSession(a.session);
    fresh.trustSession(other.session);
    const rf = await fresh.open(REPO);
    const r3 = third.repository(REPO);
    const all = r3.commitIds();
    assert.equal(all.length, 1502);
    const got = await rf.ingest(all.map((id) => r3.commitRecord(id)!));
    assert.equal(got.accepted.length, 1502);
    assert.equal(snapshot(fresh.item(`${REPO}/x`)!), merged);
    await Promise.all([third.close(), fresh.close(), other.close()]);
  });
});

/** 1,500 edits of `x` (enough for a checkpoint). */
async function build_on(db: Database, t: Clock): Promise<void> {
  for (let e = 1; e <= 1500; e++) {
    db.item(`${REPO}/x`)!.set("n", e);
    t.now += 5;
    await Promise.resolve(); // one commit per edit (writes in one tick are one commit)
    if (e % 100 === 0) await db.flush();
  }
  await db.flush();
}

Deno.test("sync sends old commits of a lazy repository to a fresh peer; compaction keeps values", async () => {
  await each(async (make) => {
    const t = { now: Date.now() - 10 * DAY };
    const first = await build(await make(), t);
    const ids = first.repository(REPO).commitIds().sort();
    await first.close();
    const db = await open(await make(), t);
    const repo = await db.open(REPO);
    const want = values(db);
    const peer = await open(new MemoryStorage(), t);
    peer.trustSession(db.session);
    await peer.open(REPO);
    await db.syncWith(REPO, {
      request: (bytes) => answerSyncBytes((r) => peer.open(r), bytes),
    });
    assert.deepEqual(peer.repository(REPO).commitIds().sort(), ids);
    assert.deepEqual(values(peer), want);
    assert.equal(repo.stats().lazyCommits, 0); // the commit index loaded history

    t.now = Date.now();
    const result = await db.compact(REPO, { retainMs: DAY });
    assert.equal(result.keptCommits < 2 * ITEMS + 1, true);
    assert.deepEqual(values(db), want);
    await Promise.all([db.close(), peer.close()]);
  });
});

Deno.test("a checkpoint that does not match its log is not trusted", async () => {
  const storage = new MemoryStorage();
  const t = { now: Date.now() - 10 * DAY };
  const db = await build(storage, t);
  const want = values(db);
  await db.close();
  // Swap the head record of k1 with an older record of the same size: the checkpoint's
  // offset now points at an old commit, which its id prefix reveals.
  const bytes = storage.bytesOf(REPO as RepoPath);
  const scan = scanFrames(bytes);
  const mine: [number, number][] = []; // frame start, frame end
  let prev = 0;
  for (let i = 0; i < scan.frames.length; i += 2) {
    const start = scan.frames[i], end = scan.frames[i + 1];
    if (bytes[start] === 1 && peekItemKey(bytes, start + 65, end) === "k1") {
      mine.push([prev, end]);
    }
    prev = end;
  }
  const [hs, he] = mine[mine.length - 1];
  const older = mine.slice(0, -2).reverse().find(([s, e]) =>
    e - s === he - hs
  )!;
  assert.ok(older, "an older record of the same size");
  const copy = bytes.slice();
  copy.set(bytes.subarray(older[0], older[1]), hs);
  copy.set(bytes.subarray(hs, he), older[0]);
  storage.setBytes(REPO as RepoPath, copy);
  const again = await open(storage, t);
  await again.open(REPO);
  assert.deepEqual(values(again), want);
  await again.close();
});
