/**
 * Range fingerprints. The fingerprint of a set of ids is SHA-256 over the sum of the ids
 * (each read as a 256-bit little-endian integer, summed modulo 2^256, 32 bytes LE) followed
 * by the number of ids (8 bytes LE), truncated to {@linkcode FINGERPRINT_BYTES}. The sum
 * is commutative and subtractable, so the sum of any range is a difference of two cached
 * prefix sums; the hash stops crafted ids from cancelling each other out.
 *
 * Sums are kept as 8 little-endian 32-bit limbs, stored at an offset in a Uint32Array so
 * that many sums can share one flat array.
 *
 * @module
 */

import { sha256 } from "../crypto/sha256.ts";
import { ID_BYTES } from "./id_bytes.ts";

/** Bytes in a range fingerprint. */
export const FINGERPRINT_BYTES = 16;

/** 32-bit limbs in a 256-bit sum. */
export const SUM_LIMBS = 8;

const TWO_POW_32 = 0x1_0000_0000;
const COUNT_BYTES = 8;
/** Reused hash input: sha256 is synchronous, so no call can interleave with another. */
const hashInput = new Uint8Array(ID_BYTES + COUNT_BYTES);

function limbAt(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) |
    (bytes[offset + 3] << 24)) >>> 0;
}

/** Adds the id stored at `bytes[offset..offset+32)` to the sum at `sum[at..at+8)`. */
export function addIdToSum(
  sum: Uint32Array,
  at: number,
  bytes: Uint8Array,
  offset: number,
): void {
  let carry = 0;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const s = sum[at + i] + limbAt(bytes, offset + 4 * i) + carry;
    carry = s >= TWO_POW_32 ? 1 : 0;
    sum[at + i] = s; // Uint32Array stores s mod 2^32
  }
}

/** Subtracts the id stored at `bytes[offset..offset+32)` from the sum at `sum[at..]`. */
export function subtractIdFromSum(
  sum: Uint32Array,
  at: number,
  bytes: Uint8Array,
  offset: number,
): void {
  let borrow = 0;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const d = sum[at + i] - limbAt(bytes, offset + 4 * i) - borrow;
    borrow = d < 0 ? 1 : 0;
    sum[at + i] = d; // wraps modulo 2^32
  }
}

/**
 * True when this platform stores a Uint32Array little-endian, so an id's bytes can be read
 * directly as its limbs through a Uint32Array view.
 */
export const LITTLE_ENDIAN_PLATFORM =
  new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Adds the id whose limbs are `words[w..w+8)` (a little-endian view) to `sum[at..]`. */
export function addWordsToSum(
  sum: Uint32Array,
  at: number,
  words: Uint32Array,
  w: number,
): void {
  let carry = 0;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const s = sum[at + i] + words[w + i] + carry;
    carry = s >= TWO_POW_32 ? 1 : 0;
    sum[at + i] = s;
  }
}

/** Subtracts the id whose limbs are `words[w..w+8)` from `sum[at..]`. */
export function subtractWordsFromSum(
  sum: Uint32Array,
  at: number,
  words: Uint32Array,
  w: number,
): void {
  let borrow = 0;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const d = sum[at + i] - words[w + i] - borrow;
    borrow = d < 0 ? 1 : 0;
    sum[at + i] = d;
  }
}

/**
 * Adds `sign * columns` to the sum at `sum[at..]`, where `columns[i]` is an exact
 * (unnormalised) total of limb i over many ids, kept in a double: summing columns and
 * propagating carries once is much faster than a carried addition per id. Each column must
 * stay below 2^53 - 2^33 in magnitude (over 2 million ids).
 */
export function addColumnsToSum(
  sum: Uint32Array,
  at: number,
  columns: Float64Array,
  sign: 1 | -1,
): void {
  let carry = 0;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const v = sum[at + i] + sign * columns[i] + carry;
    carry = Math.floor(v / TWO_POW_32);
    sum[at + i] = v - carry * TWO_POW_32;
  }
}

/** `target[t..t+8) = a[i..i+8) + b[j..j+8)` modulo 2^256. */
export function addSums(
  target: Uint32Array,
  t: number,
  a: Uint32Array,
  i: number,
  b: Uint32Array,
  j: number,
): void {
  let carry = 0;
  for (let k = 0; k < SUM_LIMBS; k++) {
    const s = a[i + k] + b[j + k] + carry;
    carry = s >= TWO_POW_32 ? 1 : 0;
    target[t + k] = s;
  }
}

/** `target[t..t+8) = a[i..i+8) - b[j..j+8)` modulo 2^256. */
export function subtractSums(
  target: Uint32Array,
  t: number,
  a: Uint32Array,
  i: number,
  b: Uint32Array,
  j: number,
): void {
  let borrow = 0;
  for (let k = 0; k < SUM_LIMBS; k++) {
    const d = a[i + k] - b[j + k] - borrow;
    borrow = d < 0 ? 1 : 0;
    target[t + k] = d;
  }
}

/** The fingerprint of a range from its id sum (8 limbs at `sum[at..]`) and id count. */
export function fingerprintFromSum(
  sum: Uint32Array,
  at: number,
  count: number,
): Uint8Array {
  const input = hashInput;
  for (let i = 0; i < SUM_LIMBS; i++) {
    const limb = sum[at + i];
    input[4 * i] = limb & 0xff;
    input[4 * i + 1] = (limb >>> 8) & 0xff;
    input[4 * i + 2] = (limb >>> 16) & 0xff;
    input[4 * i + 3] = limb >>> 24;
  }
  let c = count;
  for (let i = 0; i < COUNT_BYTES; i++) {
    input[ID_BYTES + i] = c % 256;
    c = Math.floor(c / 256);
  }
  return sha256(input).slice(0, FINGERPRINT_BYTES);
}

/** True when two fingerprints are byte-wise equal. */
export function fingerprintsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
