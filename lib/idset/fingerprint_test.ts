import assert from "node:assert/strict";
import {
  addColumnsToSum,
  addIdToSum,
  addWordsToSum,
  subtractIdFromSum,
  subtractWordsFromSum,
  SUM_LIMBS,
} from "./fingerprint.ts";
import { columnTotals, newBlock } from "./id_block.ts";
import { ID_BYTES } from "./id_bytes.ts";
import { pickSeed, SeededRandom } from "./_test_utils.ts";

const SEED = pickSeed(Deno.env.get("CAPRA_SEED"));
console.log(`fingerprint_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`);

const MOD = 1n << 256n;

function value(id: Uint8Array): bigint {
  let v = 0n;
  for (let i = ID_BYTES - 1; i >= 0; i--) v = (v << 8n) | BigInt(id[i]);
  return v;
}

function sumValue(sum: Uint32Array): bigint {
  let v = 0n;
  for (let i = SUM_LIMBS - 1; i >= 0; i--) v = (v << 32n) | BigInt(sum[i]);
  return v;
}

Deno.test("256-bit sums: every addition path agrees with BigInt arithmetic", () => {
  const rng = new SeededRandom(SEED);
  for (let round = 0; round < 50; round++) {
    const ids = rng.ids(1 + rng.int(128));
    if (round % 5 === 0) ids[0].fill(0xff); // force carries through every limb
    const block = newBlock(128);
    ids.forEach((id, i) => block.bytes.set(id, i * ID_BYTES));
    block.length = ids.length;
    let expected = 0n;
    const byBytes = new Uint32Array(SUM_LIMBS);
    const byWords = new Uint32Array(SUM_LIMBS);
    for (let i = 0; i < ids.length; i++) {
      expected = (expected + value(ids[i])) % MOD;
      addIdToSum(byBytes, 0, block.bytes, i * ID_BYTES);
      addWordsToSum(byWords, 0, block.words, i * SUM_LIMBS);
    }
    assert.equal(sumValue(byBytes), expected);
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] === 1) {
      assert.equal(sumValue(byWords), expected);
    }
    for (const useWords of [false, true]) {
      if (useWords && sumValue(byWords) !== expected) continue; // big-endian host
      const columns = new Float64Array(SUM_LIMBS);
      const from = rng.int(ids.length);
      columnTotals(columns, block, from, ids.length, useWords);
      const viaColumns = byBytes.slice();
      addColumnsToSum(viaColumns, 0, columns, -1);
      let part = 0n;
      for (let i = from; i < ids.length; i++) part += value(ids[i]);
      assert.equal(sumValue(viaColumns), ((expected - part) % MOD + MOD) % MOD);
    }
    const back = byBytes.slice();
    for (let i = 0; i < ids.length; i++) {
      if (i % 2 === 0) subtractIdFromSum(back, 0, block.bytes, i * ID_BYTES);
      else subtractWordsFromSum(back, 0, block.words, i * SUM_LIMBS);
    }
    if (sumValue(byWords) === expected) assert.equal(sumValue(back), 0n);
  }
});
