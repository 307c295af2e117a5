/** Every received commit is checked before anything is stored. */
import assert from "node:assert/strict";
import { MemoryStorage, openDatabase } from "../mod.ts";
import { Rng, testSeed, TODO } from "./_helpers.ts";

async function pair() {
  const storage = new MemoryStorage();
  const a = await openDatabase({ memory: true, schemas: [TODO] });
  const b = await openDatabase({ storage, schemas: [TODO] });
  await a.open("/todo/i");
  await b.open("/todo/i");
  a.create("/todo/i/x", "todo", { text: "x" });
  const ra = a.repository("/todo/i");
  await ra.flush();
  const record = ra.commitRecord(ra.commitIds()[0])!;
  return { a, b, storage, record };
}

Deno.test("commits of an untrusted session are refused and not stored", async () => {
  const { a, b, storage, record } = await pair();
  const result = await b.repository("/todo/i").ingest([record]);
  assert.equal(result.accepted.length, 0);
  assert.match(
    result.rejected[0].reason,
    /session .* is unknown, expired or revoked/,
  );
  await b.flush();
  assert.equal(storage.bytesOf("/todo/i" as never).length, 0);
  assert.equal(b.item("/todo/i/x"), undefined);
  await a.close();
  await b.close();
});

Deno.test("forged signatures, altered content and foreign repositories are refused", async () => {
  const { a, b, storage, record } = await pair();
  b.trustSession(a.session);
  const badSig = record.slice();
  badSig[10] ^= 1;
  const altered = record.slice();
  altered[altered.length - 2] ^= 1; // "x" becomes "y", so the id changes: the signature fails
  const result = await b.repository("/todo/i").ingest([
    badSig,
    altered,
    new Uint8Array([1, 2, 3]),
  ]);
  assert.equal(result.accepted.length, 0);
  assert.equal(result.rejected.length, 3);
  assert.match(
    result.rejected[0].reason,
    /signature of commit .* does not verify/,
  );
  assert.match(result.rejected[2].reason, /not a commit record/);
  await b.open("/todo/other");
  const foreign = await b.repository("/todo/other").ingest([record]);
  assert.match(
    foreign.rejected[0].reason,
    /item \/todo\/i\/x is not in \/todo\/other/,
  );
  await b.flush();
  assert.equal(storage.bytesOf("/todo/i" as never).length, 0, "nothing stored");
  // The honest record still goes through afterwards, once.
  const ok = await b.repository("/todo/i").ingest([record, record]);
  assert.equal(ok.accepted.length, 1);
  assert.equal(ok.duplicates, 1);
  assert.equal(b.item("/todo/i/x")!.get("text"), "x");
  await a.close();
  await b.close();
});

Deno.test("commits from too far in the future are refused", async () => {
  const a = await openDatabase({
    memory: true,
    schemas: [TODO],
    clock: () => Date.now() + 3_600_000,
  });
  const b = await openDatabase({ memory: true, schemas: [TODO] });
  b.trustSession(a.session);
  await a.open("/todo/f");
  await b.open("/todo/f");
  a.create("/todo/f/x", "todo", { text: "x" });
  const ra = a.repository("/todo/f");
  await ra.flush();
  const result = await b.repository("/todo/f").ingest([
    ra.commitRecord(ra.commitIds()[0])!,
  ]);
  assert.match(result.rejected[0].reason, /in the future/);
  await a.close();
  await b.close();
});

Deno.test("random bytes never crash ingest and are never stored (seeded fuzz)", async () => {
  const seed = testSeed("ingest fuzz");
  const rng = new Rng(seed);
  const { a, b, storage, record } = await pair();
  b.trustSession(a.session);
  const inputs: Uint8Array[] = [];
  for (let i = 0; i < 2000; i++) {
    if (rng.bool()) inputs.push(rng.bytes(rng.int(300)));
    else {
      const m = record.slice(0, 1 + rng.int(record.length));
      for (let f = rng.int(4); f >= 0; f--) m[rng.int(m.length)] = rng.int(256);
      inputs.push(m);
    }
  }
  const result = await b.repository("/todo/i").ingest(inputs);
  assert.equal(result.accepted.length, 0, `seed ${seed}`);
  await b.flush();
  assert.equal(storage.bytesOf("/todo/i" as never).length, 0);
  await a.close();
  await b.close();
});

Deno.test("an ingested commit's session record is stored with it, so the log verifies alone", async () => {
  const { a, b, storage, record } = await pair();
  b.trustSession(a.session);
  await b.repository("/todo/i").ingest([record]);
  await b.flush();
  const { scanFrames } = await import("../lib/storage/frames.ts");
  const { decodeSessionRecord } = await import("../testing.ts");
  const bytes = storage.bytesOf("/todo/i" as never);
  const scan = scanFrames(bytes);
  const sessions = [];
  for (let i = 0; i < scan.frames.length; i += 2) {
    if (bytes[scan.frames[i]] === 2) {
      sessions.push(
        decodeSessionRecord(
          bytes.subarray(scan.frames[i] + 1, scan.frames[i + 1]),
        ).id,
      );
    }
  }
  assert.deepEqual(sessions, [a.sessionId]);
  await a.close();
  await b.close();
});

Deno.test("a large batch, children before parents, is added in slices: every commit accepted, none left waiting", async () => {
  const a = await openDatabase({ memory: true, schemas: [TODO] });
  const b = await openDatabase({ memory: true, schemas: [TODO] });
  try {
    b.trustSession(a.session);
    const ra = await a.open("/todo/chain");
    const rb = await b.open("/todo/chain");
    // One item edited 700 times: a chain longer than one slice of adds (512).
    const it = a.create("/todo/chain/x", "todo", { text: "v0" });
    for (let i = 1; i < 700; i++) {
      await ra.flush();
      it.set("text", `v${i}`);
    }
    await ra.flush();
    const ids = it.history().map((c) => c.id);
    assert.equal(ids.length, 700);
    // Newest first: the first slices hold commits whose parents come later.
    const records = ids.toReversed().map((id) => ra.commitRecord(id)!);
    const result = await rb.ingest(records);
    assert.deepEqual(result.rejected, []);
    assert.deepEqual(result.waiting, []);
    assert.equal(new Set(result.accepted).size, 700);
    assert.equal(b.item("/todo/chain/x")!.get("text"), "v699");
    assert.deepEqual(b.item("/todo/chain/x")!.heads, [ids.at(-1)]);
  } finally {
    await a.close();
    await b.close();
  }
});
