/**
 * Ingest correctness (issue 10, defect 8): only complete, verified, authorized commits
 * are accepted, stored, offered in reconciliation or forwarded; a commit that waits for
 * its parent lives in memory only and leaves no trace when it is refused later; copies
 * of one commit are told apart after their signatures are checked; bytes that are not
 * the canonical encoding are refused.
 */
import assert from "node:assert/strict";
import { type Database, MemoryStorage, openDatabase } from "../mod.ts";
import {
  buildCommit,
  type CommitContent,
  type CommitId,
  commitIdBytes,
  commitIdFromBytes,
  encodeCommitContent,
} from "../lib/commit/commit.ts";
import { sha256 } from "../lib/crypto/sha256.ts";
import { MsgpackWriter } from "../lib/encoding/msgpack.ts";
import { answerSyncBytes } from "../lib/sync/sync_round.ts";
import { TODO } from "./_helpers.ts";

const REPO = "/todo/ing";
const PATH = `${REPO}/x`;

/** A record `[1][sig][bytes]` of commit bytes, signed by `db`'s session. */
async function signedRecord(
  db: Database,
  bytes: Uint8Array,
): Promise<{ id: CommitId; record: Uint8Array }> {
  const idBytes = sha256(bytes);
  const sig = await db.sign(idBytes);
  const record = new Uint8Array(65 + bytes.length);
  record[0] = 1;
  record.set(sig, 1);
  record.set(bytes, 65);
  return { id: commitIdFromBytes(idBytes), record };
}

/** A commit of `author` on `parents`, built by hand (any timestamp). */
async function handMade(
  author: Database,
  parents: CommitId[],
  ts: number,
  text: string,
) {
  const content: CommitContent = {
    key: PATH as never,
    parents,
    session: author.sessionId,
    ts,
    schema: "todo/1",
    body: { kind: "full", data: { text, done: false }, deleted: false },
  };
  return await signedRecord(author, buildCommit(content).bytes);
}

async function twoReplicas() {
  const storage = new MemoryStorage();
  const a = await openDatabase({ memory: true, schemas: [TODO] });
  const b = await openDatabase({ storage, schemas: [TODO] });
  a.trustSession(b.session);
  b.trustSession(a.session);
  await a.open(REPO);
  await b.open(REPO);
  return { a, b, storage };
}

Deno.test("a commit whose parent is missing waits in memory: not accepted, stored, offered or heard until it completes", async () => {
  const { a, b, storage } = await twoReplicas();
  try {
    const item = a.create(PATH, "todo", { text: "one" });
    await a.flush();
    item.set("text", "two");
    await a.flush();
    const ra = a.repository(REPO);
    const [first, second] = a.item(PATH)!.history().map((c) => c.id);
    const rb = b.repository(REPO);
    const heard: string[] = [];
    const offChange = rb.onChange((c) => heard.push(`change ${c.key}`));
    const offCommits = b.onCommits((_r, nodes) =>
      heard.push(...nodes.map((n) => `commit ${n.commit.id}`))
    );
    const idsBefore = rb.commitIds().length;
    await rb.flush();
    const bytesBefore = storage.bytesOf(REPO as never).length;
    const early = await rb.ingest([ra.commitRecord(second)!]);
    assert.deepEqual(early.accepted, [], "not accepted");
    assert.deepEqual(early.waiting, [second], "reported as waiting");
    assert.deepEqual(early.rejected, []);
    await rb.flush();
    assert.equal(rb.commitIds().length, idsBefore, "not offered to peers");
    assert.equal(
      storage.bytesOf(REPO as never).length,
      bytesBefore,
      "nothing stored",
    );
    assert.equal(b.item(PATH), undefined, "not visible");
    assert.deepEqual(heard, [], "no listener heard of it");
    // The same record again: still waiting (not verified twice, not a duplicate).
    const again = await rb.ingest([ra.commitRecord(second)!]);
    assert.deepEqual(again.waiting, [second]);
    assert.equal(again.duplicates, 0);
    // Its parent arrives: both are accepted, stored and offered now.
    const done = await rb.ingest([ra.commitRecord(first)!]);
    assert.deepEqual(done.accepted.sort(), [first, second].sort());
    assert.deepEqual(done.waiting, []);
    assert.deepEqual(rb.commitIds().sort(), [first, second].sort());
    assert.equal(b.item(PATH)!.get("text"), "two");
    assert.deepEqual(heard, [`change x`]);
    await rb.flush();
    assert.ok(storage.bytesOf(REPO as never).length > bytesBefore, "stored");
    offChange();
    offCommits();
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("a waiting commit is not persisted: after a reopen it is gone and the peer offers it again", async () => {
  const { a, b, storage } = await twoReplicas();
  try {
    a.create(PATH, "todo", { text: "one" });
    await a.flush();
    a.item(PATH)!.set("text", "two");
    await a.flush();
    const [, second] = a.item(PATH)!.history().map((c) => c.id);
    const ra = a.repository(REPO);
    const r = await b.repository(REPO).ingest([ra.commitRecord(second)!]);
    assert.deepEqual(r.waiting, [second]);
    await b.close(REPO);
    const reopened = await b.open(REPO);
    assert.deepEqual(reopened.commitIds(), []);
    assert.equal(storage.bytesOf(REPO as never).length, 0);
    // A sync brings both, the parent first.
    const stats = await b.syncWith(REPO, {
      request: (bytes) => answerSyncBytes((p) => a.open(p), bytes),
    });
    assert.deepEqual(stats.rejected, []);
    assert.equal(b.item(PATH)!.get("text"), "two");
    assert.deepEqual(
      b.repository(REPO).commitIds().sort(),
      ra.commitIds().sort(),
    );
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("a waiting commit refused when its parent arrives leaves every index; sync rounds settle", async () => {
  const { a, b } = await twoReplicas();
  const c = await openDatabase({ memory: true, schemas: [TODO] });
  c.trustSession(a.session);
  c.trustSession(b.session);
  b.trustSession(c.session);
  try {
    const ts = 1_000_000 * 1024;
    const parent = await handMade(a, [], ts, "parent");
    // Stamped at its parent's time: refused once the parent is known.
    const child = await handMade(a, [parent.id], ts, "child");
    const rb = b.repository(REPO);
    const first = await rb.ingest([child.record]);
    assert.deepEqual(first.waiting, [child.id]);
    const second = await rb.ingest([parent.record]);
    assert.deepEqual(second.accepted, [parent.id]);
    assert.equal(second.rejected.length, 1);
    assert.equal(second.rejected[0].id, child.id);
    assert.match(second.rejected[0].reason, /not after its parent/);
    assert.deepEqual(rb.commitIds(), [parent.id], "only the parent is offered");
    assert.equal(rb.commitRecord(child.id), undefined);
    assert.equal(b.item(PATH)!.get("text"), "parent");
    // A peer syncing with b gets the parent only, and then settles in one round.
    await c.open(REPO);
    const transport = {
      request: (bytes: Uint8Array) => answerSyncBytes((p) => b.open(p), bytes),
    };
    const pull = await c.syncWith(REPO, transport);
    assert.deepEqual(pull.rejected, []);
    assert.deepEqual(c.repository(REPO).commitIds(), [parent.id]);
    const next = await c.syncWith(REPO, transport);
    assert.equal(next.rounds, 1, "in sync: one round");
    assert.equal(next.commitsReceived, 0);
    // Sending the child again is refused again, at once (its parent is known now).
    const third = await rb.ingest([child.record]);
    assert.equal(third.rejected.length, 1);
    assert.deepEqual(rb.commitIds(), [parent.id]);
  } finally {
    await a.close();
    await b.close();
    await c.close();
  }
});

Deno.test("a copy with a forged signature before the genuine record does not get it dropped", async () => {
  const { a, b } = await twoReplicas();
  try {
    a.create(PATH, "todo", { text: "x" });
    const ra = a.repository(REPO);
    await ra.flush();
    const [id] = ra.commitIds();
    const genuine = ra.commitRecord(id)!;
    const forged = genuine.slice();
    forged[5] ^= 0xff; // inside the signature: same commit bytes, same id
    const rb = b.repository(REPO);
    const result = await rb.ingest([forged, genuine, genuine]);
    assert.deepEqual(result.accepted, [id]);
    assert.equal(result.rejected.length, 1);
    assert.equal(result.rejected[0].index, 0);
    assert.match(
      result.rejected[0].reason,
      /signature of commit .* does not verify/,
    );
    assert.equal(result.duplicates, 1, "the identical second copy");
    assert.deepEqual(rb.commitIds(), [id]);
    // The stored record carries the genuine signature.
    assert.deepEqual(rb.commitRecord(id), genuine);
    // Once the commit is held, any other copy is a duplicate (nothing to check).
    const later = await rb.ingest([forged]);
    assert.equal(later.duplicates, 1);
    assert.deepEqual(rb.commitRecord(id), genuine);
  } finally {
    await a.close();
    await b.close();
  }
});

/** `bytes` with the map at `mapAt` (a fixmap of string keys) written with its keys reversed. */
function reverseFixmap(bytes: Uint8Array, mapAt: number): Uint8Array {
  const n = bytes[mapAt] & 0x0f;
  const w = new MsgpackWriter();
  // Walk the entries: fixstr keys and simple values (the todo snapshot).
  const entries: Uint8Array[] = [];
  let p = mapAt + 1;
  for (let i = 0; i < n; i++) {
    const start = p;
    p += 1 + (bytes[p] & 0x1f); // fixstr key
    const lead = bytes[p];
    if (lead >= 0xa0 && lead <= 0xbf) p += 1 + (lead & 0x1f);
    else if (lead === 0xc2 || lead === 0xc3 || lead < 0x80) p += 1;
    else throw new Error(`unexpected value lead ${lead.toString(16)}`);
    entries.push(bytes.subarray(start, p));
  }
  w.writeRaw(bytes.subarray(0, mapAt + 1));
  for (const e of entries.reverse()) w.writeRaw(e);
  w.writeRaw(bytes.subarray(p));
  return w.toBytes();
}

Deno.test("commits not in the canonical encoding are refused with a clear reason", async () => {
  const { a, b } = await twoReplicas();
  try {
    const content: CommitContent = {
      key: PATH as never,
      parents: [],
      session: a.sessionId,
      ts: Date.now() * 1024,
      schema: "todo/1",
      body: { kind: "full", data: { done: false, text: "x" }, deleted: false },
    };
    const canonical = encodeCommitContent(content);
    // 1. The format version 1 as a uint8 (0xcc 0x01) instead of a positive fixint.
    const wideInt = new Uint8Array(canonical.length + 1);
    wideInt.set([canonical[0], 0xcc, 0x01]);
    wideInt.set(canonical.subarray(2), 3);
    // 2. The snapshot's map keys out of order ("text" before "done").
    const mapAt = canonical.lastIndexOf(0x82);
    const unsorted = reverseFixmap(canonical, mapAt);
    assert.notDeepEqual(unsorted, canonical);
    assert.equal(unsorted.length, canonical.length);
    const rb = b.repository(REPO);
    for (const bytes of [wideInt, unsorted]) {
      const { id, record } = await signedRecord(a, bytes);
      const result = await rb.ingest([record]);
      assert.deepEqual(result.accepted, [], "refused");
      assert.equal(result.rejected.length, 1);
      assert.equal(result.rejected[0].id, id);
      assert.match(
        result.rejected[0].reason,
        /is not in the canonical encoding .*byte \d+/,
      );
    }
    assert.deepEqual(rb.commitIds(), []);
    // The canonical bytes of the same commit are accepted: one commit, one id.
    const ok = await signedRecord(a, canonical);
    const result = await rb.ingest([ok.record]);
    assert.deepEqual(result.accepted, [ok.id]);
    assert.deepEqual(commitIdBytes(ok.id), sha256(canonical));
  } finally {
    await a.close();
    await b.close();
  }
});
