/**
 * Byte-level helpers for 32-byte ids and range bounds.
 *
 * A bound is a prefix of at most {@linkcode ID_BYTES} bytes standing for itself padded
 * with zeros to 32 bytes, or `null` for the end of the id space (past every id). The id
 * range `[lower, upper)` holds the ids `id` with `lower <= id < upper`. Canonical bounds
 * carry no trailing zero byte, so comparing two canonical bounds is plain lexicographic
 * comparison, and each bound has exactly one encoding.
 *
 * @module
 */

/** Bytes in an id (a SHA-256 digest). */
export const ID_BYTES = 32;

/**
 * A range bound: a byte prefix (zero-padded to {@linkcode ID_BYTES}) or `null` for the
 * end of the id space.
 */
export type IdBound = Uint8Array | null;

/** The lowest bound: the start of the id space (the empty prefix). */
export const START_BOUND: Uint8Array = new Uint8Array(0);

/** Byte-wise comparison of two ids: negative, zero or positive. */
export function compareIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return 0;
}

/** True when `id` lies strictly below `bound` (so `id` is outside `[bound, …)`). */
export function idBelowBound(id: Uint8Array, bound: IdBound): boolean {
  if (bound === null) return true;
  for (let i = 0; i < bound.length; i++) {
    const d = id[i] - bound[i];
    if (d !== 0) return d < 0;
  }
  // Equal over the prefix: the padded bound is <= id because its tail is all zeros.
  return false;
}

/** True when `id` lies in `[lower, upper)`. */
export function idInRange(
  id: Uint8Array,
  lower: IdBound,
  upper: IdBound,
): boolean {
  return !idBelowBound(id, lower) && idBelowBound(id, upper);
}

/** Compares two canonical bounds (`null` is the largest). */
export function compareBounds(a: IdBound, b: IdBound): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** True when `bound` is `null` or a prefix of at most 32 bytes with no trailing zero. */
export function isCanonicalBound(bound: IdBound): boolean {
  if (bound === null) return true;
  if (!(bound instanceof Uint8Array) || bound.length > ID_BYTES) return false;
  return bound.length === 0 || bound[bound.length - 1] !== 0;
}

/** Drops trailing zero bytes so a bound has its canonical form. */
export function canonicalBound(bound: IdBound): IdBound {
  if (bound === null) return null;
  let n = bound.length;
  while (n > 0 && bound[n - 1] === 0) n--;
  return n === bound.length ? bound : bound.slice(0, n);
}

/**
 * The shortest bound `s` with `below < s <= above`, for ids `below < above`: the common
 * prefix of the two plus the first byte of `above` that differs. Random ids share about
 * log256(n) leading bytes, so bounds between neighbours in a set of 100,000 cost ~3 bytes.
 */
export function separatorBound(
  below: Uint8Array,
  above: Uint8Array,
): Uint8Array {
  for (let i = 0; i < ID_BYTES; i++) {
    if (below[i] !== above[i]) return above.slice(0, i + 1);
  }
  throw new RangeError("Cannot separate two equal ids");
}

/** True when `x` is a Uint8Array of exactly {@linkcode ID_BYTES} bytes. */
export function isId(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array && x.length === ID_BYTES;
}

/** Lower-case hex of some bytes, for error messages and test output. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
