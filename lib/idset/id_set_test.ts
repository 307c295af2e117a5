import assert from "node:assert/strict";
import { sha256 } from "../crypto/sha256.ts";
import { BLOCK_CAPACITY, IdSet } from "./id_set.ts";
import {
  canonicalBound,
  compareIds,
  ID_BYTES,
  type IdBound,
  idInRange,
  separatorBound,
  toHex,
} from "./id_bytes.ts";
import { FINGERPRINT_BYTES } from "./fingerprint.ts";
import { pickSeed, SeededRandom, sortedHex } from "./_test_utils.ts";

const SEED = pickSeed(Deno.env.get("CAPRA_SEED"));
console.log(`id_set_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`);

const idValues = new WeakMap<Uint8Array, bigint>();

/** An id read as a little-endian 256-bit integer (cached per array). */
function idValue(id: Uint8Array): bigint {
  let value = idValues.get(id);
  if (value === undefined) {
    value = 0n;
    for (let i = ID_BYTES - 1; i >= 0; i--) {
      value = (value << 8n) | BigInt(id[i]);
    }
    idValues.set(id, value);
  }
  return value;
}

/** The fingerprint computed the slow, obvious way. */
function referenceFingerprint(ids: Uint8Array[]): Uint8Array {
  let sum = 0n;
  for (const id of ids) sum += idValue(id);
  sum %= 1n << 256n;
  const input = new Uint8Array(ID_BYTES + 8);
  for (let i = 0; i < ID_BYTES; i++) {
    input[i] = Number((sum >> BigInt(8 * i)) & 0xffn);
  }
  let count = ids.length;
  for (let i = 0; i < 8; i++) {
    input[ID_BYTES + i] = count % 256;
    count = Math.floor(count / 256);
  }
  return sha256(input).slice(0, FINGERPRINT_BYTES);
}

function randomBound(rng: SeededRandom, sorted: Uint8Array[]): IdBound {
  const pick = rng.int(6);
  if (pick === 0) return null;
  if (pick === 1) return new Uint8Array(0);
  if (pick === 2 && sorted.length > 0) return sorted[rng.int(sorted.length)];
  if (pick === 3 && sorted.length > 0) {
    const id = sorted[rng.int(sorted.length)];
    return id.slice(0, rng.int(ID_BYTES + 1)); // a prefix, maybe with trailing zeros
  }
  return rng.bytes(rng.int(4));
}

function checkAgainstReference(
  set: IdSet,
  ref: Uint8Array[],
  rng: SeededRandom,
) {
  const sorted = ref.slice().sort(compareIds);
  assert.equal(set.size, sorted.length);
  assert.deepEqual(Array.from(set).map(toHex), sorted.map(toHex));
  for (let q = 0; q < 16; q++) {
    let lower = randomBound(rng, sorted);
    let upper = randomBound(rng, sorted);
    if (rng.chance(0.5) && lower !== null && upper !== null) {
      if (toHex(lower) > toHex(upper)) [lower, upper] = [upper, lower];
    }
    const inRange = sorted.filter((id) => idInRange(id, lower, upper));
    assert.equal(set.count(lower, upper), inRange.length);
    assert.deepEqual(
      set.fingerprint(lower, upper),
      referenceFingerprint(inRange),
    );
    const limit = rng.int(5);
    assert.deepEqual(
      set.idsInRange(lower, upper, limit).map(toHex),
      inRange.slice(0, limit).map(toHex),
    );
    assert.deepEqual(
      set.idsInRange(lower, upper).map(toHex),
      inRange.map(toHex),
    );
  }
  for (let q = 0; q < 10 && sorted.length > 0; q++) {
    const r = rng.int(sorted.length);
    assert.deepEqual(set.at(r), sorted[r]);
    assert.equal(set.rank(sorted[r]), r);
  }
}

Deno.test("IdSet matches a sorted-array reference under random inserts and queries", () => {
  const rng = new SeededRandom(SEED);
  for (let round = 0; round < 12; round++) {
    const set = new IdSet();
    const ref: Uint8Array[] = [];
    const target = rng.int(4 * BLOCK_CAPACITY * (round % 3 === 0 ? 8 : 1));
    while (ref.length < target) {
      const burst = 1 + rng.int(target / 4);
      for (let k = 0; k < burst && ref.length < target; k++) {
        const id = rng.id();
        assert.equal(set.add(id), true);
        ref.push(id);
        if (rng.chance(0.05)) {
          assert.equal(set.add(ref[rng.int(ref.length)]), false);
        }
      }
      checkAgainstReference(set, ref, rng); // queries between bursts of inserts
    }
    assert.deepEqual(sortedHex(new IdSet(ref)), sortedHex(set));
  }
});

Deno.test("IdSet built from a list equals one built id by id, duplicates dropped", () => {
  const rng = new SeededRandom(SEED ^ 0x5bd1e995);
  const ids = rng.ids(3000);
  const bulk = new IdSet([...ids, ...ids.slice(0, 100)]);
  const incremental = new IdSet();
  for (const id of ids) incremental.add(id);
  assert.equal(bulk.size, 3000);
  assert.deepEqual(
    bulk.fingerprint(new Uint8Array(0), null),
    incremental.fingerprint(new Uint8Array(0), null),
  );
  checkAgainstReference(bulk, ids, rng);
  for (const id of ids.slice(0, 50)) assert.equal(bulk.has(id), true);
  assert.equal(bulk.has(rng.id()), false);
  for (const id of rng.ids(2000)) bulk.add(id);
  assert.equal(bulk.size, 5000);
});

Deno.test("IdSet handles ids at the edges of the id space", () => {
  const zero = new Uint8Array(ID_BYTES);
  const max = new Uint8Array(ID_BYTES).fill(0xff);
  const set = new IdSet([max, zero]);
  assert.deepEqual(Array.from(set), [zero, max]);
  assert.equal(set.count(new Uint8Array(0), null), 2);
  assert.equal(set.count(new Uint8Array([0]), new Uint8Array([0xff])), 1);
  assert.equal(set.count(max, null), 1);
  assert.equal(set.count(null, null), 0);
  assert.equal(set.rank(new Uint8Array(0)), 0);
  assert.equal(set.count(max, zero), 0); // an inverted range is empty
  assert.deepEqual(set.fingerprint(zero, zero), referenceFingerprint([]));
});

Deno.test("IdSet rejects malformed ids and bounds", () => {
  const set = new IdSet();
  assert.throws(() => set.add(new Uint8Array(31)), TypeError);
  assert.throws(() => new IdSet([new Uint8Array(33)]), TypeError);
  assert.equal(set.has(new Uint8Array(5)), false);
  assert.throws(() => set.rank(new Uint8Array(33)), TypeError);
  assert.throws(() => set.at(0), RangeError);
  assert.throws(() => set.fingerprintOfRanks(0, 1), RangeError);
});

Deno.test("bounds: separators are the shortest canonical prefixes between two ids", () => {
  const rng = new SeededRandom(SEED + 1);
  for (let i = 0; i < 1000; i++) {
    const [a, b] = rng.ids(2).sort(compareIds);
    if (rng.chance(0.3)) b.set(a.subarray(0, rng.int(ID_BYTES))); // long common prefix
    if (compareIds(a, b) >= 0) continue;
    const s = separatorBound(a, b);
    assert.equal(idInRange(a, s, null), false);
    assert.equal(idInRange(b, s, null), true);
    assert.equal(canonicalBound(s), s);
    assert.notEqual(s[s.length - 1], 0);
  }
});

Deno.test("IdSet range queries over 100,000 ids are cheap once built", () => {
  const rng = new SeededRandom(SEED + 2);
  const set = new IdSet();
  const ids = rng.ids(100_000);
  const t0 = performance.now();
  for (const id of ids) set.add(id);
  const t1 = performance.now();
  let checksum = 0;
  for (let q = 0; q < 10_000; q++) {
    const a = rng.int(set.size);
    const b = a + rng.int(set.size - a);
    checksum ^= set.fingerprintOfRanks(a, b)[0];
  }
  const t2 = performance.now();
  console.log(
    `100k inserts: ${(t1 - t0).toFixed(0)} ms; 10k range fingerprints: ${
      (t2 - t1).toFixed(0)
    } ms (checksum ${checksum})`,
  );
  assert.equal(set.size, 100_000);
});
