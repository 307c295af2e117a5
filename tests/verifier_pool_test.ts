/**
 * The Deno verifier pool (node:crypto in workers) must give exactly Web Crypto's verdicts,
 * and a forged commit inside a large batch (which goes to the pool) must be refused.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import {
  denoPoolVerifier,
  POOL_MIN_BATCH,
  SERVER_POOL_MIN_BATCH,
  verifierPoolStats,
} from "../lib/crypto/deno_verify_pool.ts";
import { type VerifyJob, webCryptoVerifier } from "../lib/crypto/verifier.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { EVERYTHING, Rng, testSeed } from "./_helpers.ts";

Deno.test("pool verdicts equal Web Crypto's on valid, forged, mismatched and malformed jobs (seeded)", async () => {
  const rng = new Rng(testSeed("verifier pool"));
  const a = (await generateSigningKey()).key;
  const b = (await generateSigningKey()).key;
  const jobs: VerifyJob[] = [];
  for (let i = 0; i < 4 * POOL_MIN_BATCH; i++) {
    const message = new Uint8Array(32).map(() => rng.int(256));
    const signer = rng.bool() ? a : b;
    const signature = await signer.sign(message);
    switch (rng.int(6)) {
      case 0: // forged signature
        signature[rng.int(64)] ^= 1 << rng.int(8);
        jobs.push({ publicKey: signer.publicKey, signature, message });
        break;
      case 1: // another key
        jobs.push({
          publicKey: (signer === a ? b : a).publicKey,
          signature,
          message,
        });
        break;
      case 2: // another message
        jobs.push({
          publicKey: signer.publicKey,
          signature,
          message: message.map((x) => x ^ 0xff),
        });
        break;
      case 3: // malformed lengths
        jobs.push({
          publicKey: signer.publicKey.subarray(0, 31),
          signature: signature.subarray(0, 63),
          message,
        });
        break;
      default:
        jobs.push({ publicKey: signer.publicKey, signature, message });
    }
  }
  const expected = await webCryptoVerifier.verifyBatch(jobs);
  assert.ok(expected.some((x) => x) && expected.some((x) => !x));
  const pool = denoPoolVerifier();
  try {
    assert.deepEqual(await pool.verifyBatch(jobs), expected);
  } finally {
    pool.release();
  }
  // A released verifier still answers (on Web Crypto).
  assert.deepEqual(await pool.verifyBatch(jobs), expected);
});

Deno.test("a forged commit in a large ingest batch is refused, the rest accepted", async () => {
  const writer = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  const reader = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  reader.trustSession(writer.session);
  const REPO = "/all/pool";
  const repo = await writer.open(REPO);
  for (let i = 0; i < 3 * POOL_MIN_BATCH; i++) {
    writer.create(`${REPO}/k${i}`, "all", { n: i });
  }
  await writer.flush();
  const records = repo.commitIds().map((id) => repo.commitRecord(id)!.slice());
  const victim = 17;
  records[victim][9] ^= 4; // inside the signature
  const res = await (await reader.open(REPO)).ingest(records);
  assert.equal(res.accepted.length, records.length - 1);
  assert.equal(res.rejected.length, 1);
  assert.equal(res.rejected[0].index, victim);
  assert.match(res.rejected[0].reason, /does not verify/);
  assert.equal(reader.count(REPO), records.length - 1);
  await writer.close();
  await reader.close();
});

Deno.test("a server's verifier checks even single signatures on the pool, joining the batches of one turn", async () => {
  const key = (await generateSigningKey()).key;
  const BATCHES = 20;
  const batches: VerifyJob[][] = [];
  for (let i = 0; i < BATCHES; i++) {
    const message = new Uint8Array([i, 1, 2, 3]);
    const signature = await key.sign(message);
    // Every third batch carries a forged signature next to a valid one.
    const forged = signature.slice();
    forged[5] ^= 1;
    batches.push(
      i % 3 === 0
        ? [{ publicKey: key.publicKey, signature, message }, {
          publicKey: key.publicKey,
          signature: forged,
          message,
        }]
        : [{ publicKey: key.publicKey, signature, message }],
    );
  }
  assert.throws(() => denoPoolVerifier({ minBatch: 0 }), RangeError);
  const verifier = denoPoolVerifier({ minBatch: SERVER_POOL_MIN_BATCH });
  try {
    // Warm the workers so the joined turn below is not split by their start.
    await verifier.verifyBatch(batches[1]);
    const before = verifierPoolStats();
    const results = await Promise.all(
      batches.map((b) => verifier.verifyBatch(b)),
    );
    const after = verifierPoolStats();
    results.forEach((r, i) =>
      assert.deepEqual(r, i % 3 === 0 ? [true, false] : [true], `batch ${i}`)
    );
    const jobs = batches.reduce((n, b) => n + b.length, 0);
    assert.equal(after.jobs - before.jobs, jobs, "every signature on the pool");
    assert.equal(
      after.messages - before.messages,
      1,
      "one message for the turn",
    );
    assert.deepEqual(await verifier.verifyBatch([]), []);
  } finally {
    verifier.release();
  }
});
