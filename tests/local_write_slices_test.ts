/**
 * Local writes of a large tick get their commits built in slices that yield to the event
 * loop (no long task on a page), and nothing about the commits changes: one commit per
 * item per tick, an item written again while its commit waits gets that commit first, a
 * received commit for such an item joins after it, history and flush see every write,
 * and a reopened directory holds every value.
 */

import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { generateSigningKey, type SigningKey } from "../lib/crypto/keys.ts";

const SCHEMA = {
  ns: "todo",
  version: 1,
  fields: { text: { type: "string" }, n: { type: "number" } },
} as const;
const REPO = "/todo/big";
/**
 * Items written in one tick: far more than one slice builds, fewer than one signing
 * chunk (2,048), so commits built in the tick would all be handed to the signer at once.
 */
const N = 2000;

/** One turn of the event loop, queued as the database queues its slices (a message). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      port2.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** A real key that counts the commits handed to it for signing. */
async function countingSigner(): Promise<SigningKey & { calls: number }> {
  const key = (await generateSigningKey()).key;
  const signer = {
    publicKey: key.publicKey,
    sessionId: key.sessionId,
    calls: 0,
    sign(message: Uint8Array) {
      signer.calls++;
      return key.sign(message);
    },
  };
  return signer;
}

function writeMany(db: Database, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    db.create(`${REPO}/k${i}`, "todo", { text: `t${i}`, n: i });
  }
}

Deno.test("a large tick's commits are built after the tick, in slices; each item still gets one commit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "capra-slices-" });
  const signer = await countingSigner();
  try {
    const db = await openDatabase({ dir, signer, schemas: [SCHEMA] });
    await db.open(REPO);
    writeMany(db, 0, N);
    // Reads see every write at once, before any commit exists.
    assert.equal(db.count(REPO), N);
    // The test's turn was queued before the first slice: the event loop got it while
    // the commits were still to be built (built in the tick, all N would be signing).
    await nextTurn();
    assert.ok(
      signer.calls < N,
      `${signer.calls} of ${N} commits were built in the writing tick`,
    );
    // While the backlog is built: write some items again and read one's history.
    db.item(`${REPO}/k${N - 1}`)!.set("text", "again");
    db.item(`${REPO}/k7`)!.set("n", -7);
    db.item(`${REPO}/k8`)!.delete();
    const h = db.item(`${REPO}/k${N - 2}`)!.history();
    assert.equal(h.length, 1, "history includes a commit still in the backlog");
    await db.flush();
    assert.equal(signer.calls, N + 3);
    const repo = db.repository(REPO);
    assert.equal(repo.commitIds().length, N + 3);
    const again = db.item(`${REPO}/k${N - 1}`)!;
    assert.equal(again.get("text"), "again");
    const [first, second] = again.history();
    assert.deepEqual(
      second.parents,
      [first.id],
      "one commit per tick, in order",
    );
    assert.equal(first.signed && second.signed, true);
    await db.close();

    const reopened = await openDatabase({ dir, schemas: [SCHEMA] });
    try {
      await reopened.open(REPO);
      assert.equal(reopened.count(REPO), N - 1);
      assert.equal(reopened.item(`${REPO}/k7`)!.get("n"), -7);
      assert.equal(reopened.item(`${REPO}/k8`)!.isDeleted, true);
      assert.equal(reopened.item(`${REPO}/k${N - 1}`)!.get("text"), "again");
      for (let i = 0; i < N; i += 97) {
        if (i === 7 || i === 8) continue;
        assert.equal(reopened.item(`${REPO}/k${i}`)!.get("n"), i);
      }
    } finally {
      await reopened.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a received commit for an item whose local commit waits in the backlog joins after it", async () => {
  const a = await openDatabase({ memory: true, schemas: [SCHEMA] });
  const b = await openDatabase({ memory: true, schemas: [SCHEMA] });
  try {
    a.trustSession(b.session);
    b.trustSession(a.session);
    const [ra, rb] = [await a.open(REPO), await b.open(REPO)];
    const move = async (from: typeof ra, to: typeof rb) => {
      await from.flush();
      const res = await to.ingest(
        from.commitIds().map((id) => from.commitRecord(id)!),
      );
      assert.deepEqual(res.rejected, []);
    };
    a.create(`${REPO}/shared`, "todo", { text: "base" });
    await move(ra, rb);
    const base = b.item(`${REPO}/shared`)!.history()[0].id;
    a.item(`${REPO}/shared`)!.set("text", "from a");
    await ra.flush();
    // b: a large tick that also edits the shared item, then a's edit arrives before
    // b's backlog is built.
    writeMany(b, 0, N);
    b.item(`${REPO}/shared`)!.set("n", 42);
    await move(ra, rb);
    await b.flush();
    const item = b.item(`${REPO}/shared`)!;
    const h = item.history();
    assert.equal(h.length, 3);
    assert.equal(item.heads.length, 2, "b's edit and a's are concurrent heads");
    for (const c of h.slice(1)) assert.deepEqual(c.parents, [base]);
    assert.equal(item.get("text"), "from a");
    assert.equal(item.get("n"), 42);
    assert.equal(rb.commitIds().length, N + 3);
    // Back to a: both replicas agree.
    await move(rb, ra);
    assert.deepEqual(
      a.item(`${REPO}/shared`)!.toObject(),
      item.toObject(),
    );
  } finally {
    await a.close();
    await b.close();
  }
});
