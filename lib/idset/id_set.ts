/**
 * An ordered set of 32-byte ids with fast range counts and fingerprints, the data
 * structure behind range-based set reconciliation.
 *
 * Ids live in sorted blocks of at most {@linkcode BLOCK_CAPACITY} ids, each caching the
 * 256-bit sum of its ids. Prefix counts and sums over whole blocks are rebuilt lazily, from
 * the first block changed since the last query, so a run of inserts costs O(B + log n) each
 * and the next query pays O(n / B) once. A range fingerprint is then two prefix lookups plus
 * at most B / 2 additions inside each end block.
 *
 * @module
 */

import { ID_BYTES, type IdBound, isId } from "./id_bytes.ts";
import {
  addColumnsToSum,
  addSums,
  fingerprintFromSum,
  subtractSums,
  SUM_LIMBS,
} from "./fingerprint.ts";
import {
  addStored,
  type Block,
  columnTotals,
  compareAt,
  newBlock,
  storedBelow,
  subtractStored,
} from "./id_block.ts";

/**
 * Most ids one block holds; a full block splits in two halves on the next insert. Smaller
 * blocks make range sums cheaper (at most B / 2 additions per end) and inserts cheaper,
 * larger ones make the lazy prefix rebuild and block splits rarer.
 */
export const BLOCK_CAPACITY = 128;

/** Ids a new block has room for before it grows (doubling up to the capacity). */
const INITIAL_BLOCK_IDS = 16;

function checkBound(bound: IdBound, name: string): void {
  if (bound === null) return;
  if (!(bound instanceof Uint8Array) || bound.length > ID_BYTES) {
    throw new TypeError(
      `Invalid ${name} bound: expected null or a Uint8Array of at most ${ID_BYTES} bytes`,
    );
  }
}

/**
 * An ordered set of 32-byte ids (compared byte-wise) answering range queries over the
 * half-open range `[lower, upper)`, where a bound is a zero-padded byte prefix or `null`
 * for the end of the id space.
 *
 * @example
 * ```ts
 * import { IdSet } from "./id_set.ts";
 * const set = new IdSet();
 * set.add(new Uint8Array(32).fill(7));
 * set.count(new Uint8Array([7]), null); // 1
 * set.fingerprint(new Uint8Array(0), null).length; // 16
 * ```
 */
export class IdSet implements Iterable<Uint8Array> {
  #blocks: Block[] = [];
  #size = 0;
  /** prefixCount[b]: ids in blocks before b; valid for b <= #validPrefix. */
  #prefixCount: number[] = [0];
  /** prefixSum[b * 8 ..]: sum of the ids in blocks before b; same validity. */
  #prefixSum = new Uint32Array(SUM_LIMBS);
  #validPrefix = 0;
  /** Scratch space for prefix sums of query ends. */
  readonly #scratch = new Uint32Array(3 * SUM_LIMBS);
  /** Scratch space for limb totals inside one block. */
  readonly #columns = new Float64Array(SUM_LIMBS);

  /**
   * Builds a set from any ids (duplicates are dropped). Inserting one by one is faster here
   * than sorting first: an insert is a binary search and a short copy inside one block.
   */
  constructor(ids?: Iterable<Uint8Array>) {
    if (ids === undefined) return;
    for (const id of ids) this.add(id);
  }

  /** Number of ids in the set. */
  get size(): number {
    return this.#size;
  }

  /** Adds an id; returns false when it was already present. */
  add(id: Uint8Array): boolean {
    if (!isId(id)) {
      throw new TypeError(`Invalid id: expected ${ID_BYTES} bytes`);
    }
    if (this.#blocks.length === 0) {
      this.#blocks.push(newBlock(INITIAL_BLOCK_IDS));
    }
    let b = this.#blockFor(id);
    let block = this.#blocks[b];
    let pos = this.#searchBlock(block, id);
    if (
      pos < block.length && compareAt(id, block.bytes, pos * ID_BYTES) === 0
    ) {
      return false;
    }
    if (block.length === BLOCK_CAPACITY) {
      this.#split(b);
      const half = this.#blocks[b].length;
      if (pos > half) {
        b++;
        pos -= half;
        block = this.#blocks[b];
      }
    }
    if ((block.length + 1) * ID_BYTES > block.bytes.length) {
      const grown = new Uint8Array(
        Math.min(BLOCK_CAPACITY, 2 * block.bytes.length / ID_BYTES) * ID_BYTES,
      );
      grown.set(block.bytes.subarray(0, block.length * ID_BYTES));
      block.bytes = grown;
      block.words = new Uint32Array(grown.buffer);
    }
    const at = pos * ID_BYTES;
    block.bytes.copyWithin(at + ID_BYTES, at, block.length * ID_BYTES);
    block.bytes.set(id, at);
    block.length++;
    addStored(block.sum, 0, block, pos);
    this.#size++;
    if (b < this.#validPrefix) this.#validPrefix = b;
    return true;
  }

  /** True when the set holds `id`. */
  has(id: Uint8Array): boolean {
    if (!isId(id) || this.#blocks.length === 0) return false;
    const block = this.#blocks[this.#blockFor(id)];
    const pos = this.#searchBlock(block, id);
    return pos < block.length &&
      compareAt(id, block.bytes, pos * ID_BYTES) === 0;
  }

  /** Iterates over copies of the ids in ascending order. */
  *[Symbol.iterator](): Iterator<Uint8Array> {
    for (const block of this.#blocks) {
      for (let i = 0; i < block.length; i++) {
        yield block.bytes.slice(i * ID_BYTES, (i + 1) * ID_BYTES);
      }
    }
  }

  /** Number of ids below `bound` (the rank of the bound); `null` gives the size. */
  rank(bound: IdBound): number {
    checkBound(bound, "rank");
    if (bound === null) return this.#size;
    this.#ensurePrefix();
    // First block whose first id is not below the bound; the bound falls in the one before.
    let lo = 0;
    let hi = this.#blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (storedBelow(this.#blocks[mid].bytes, 0, bound)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return 0;
    const block = this.#blocks[lo - 1];
    let a = 0;
    let z = block.length;
    while (a < z) {
      const mid = (a + z) >>> 1;
      if (storedBelow(block.bytes, mid * ID_BYTES, bound)) a = mid + 1;
      else z = mid;
    }
    return this.#prefixCount[lo - 1] + a;
  }

  /** A copy of the id at `rank` (0-based position in ascending order). */
  at(rank: number): Uint8Array {
    this.#checkRanks(rank, rank + 1);
    const b = this.#blockOfRank(rank);
    const offset = (rank - this.#prefixCount[b]) * ID_BYTES;
    return this.#blocks[b].bytes.slice(offset, offset + ID_BYTES);
  }

  /** Copies of the ids with ranks in `[start, end)`, in ascending order. */
  slice(start: number, end: number): Uint8Array[] {
    this.#checkRanks(start, end);
    const out: Uint8Array[] = [];
    if (start === end) return out;
    let b = this.#blockOfRank(start);
    let i = start - this.#prefixCount[b];
    for (let r = start; r < end; r++) {
      while (i === this.#blocks[b].length) {
        b++;
        i = 0;
      }
      out.push(this.#blocks[b].bytes.slice(i * ID_BYTES, (i + 1) * ID_BYTES));
      i++;
    }
    return out;
  }

  /** Number of ids in `[lower, upper)`. */
  count(lower: IdBound, upper: IdBound): number {
    return Math.max(0, this.rank(upper) - this.rank(lower));
  }

  /** Up to `limit` ids of `[lower, upper)` in ascending order (copies). */
  idsInRange(lower: IdBound, upper: IdBound, limit = Infinity): Uint8Array[] {
    const start = this.rank(lower);
    const end = Math.max(start, this.rank(upper));
    return this.slice(start, Math.min(end, start + Math.max(0, limit)));
  }

  /** The {@linkcode FINGERPRINT_BYTES}-byte fingerprint of the ids in `[lower, upper)`. */
  fingerprint(lower: IdBound, upper: IdBound): Uint8Array {
    const start = this.rank(lower);
    return this.fingerprintOfRanks(start, Math.max(start, this.rank(upper)));
  }

  /** The fingerprint of the ids with ranks in `[start, end)`. */
  fingerprintOfRanks(start: number, end: number): Uint8Array {
    this.#checkRanks(start, end);
    const s = this.#scratch;
    this.#prefixSumAtRank(end, s, 0);
    this.#prefixSumAtRank(start, s, SUM_LIMBS);
    subtractSums(s, 2 * SUM_LIMBS, s, 0, s, SUM_LIMBS);
    return fingerprintFromSum(s, 2 * SUM_LIMBS, end - start);
  }

  /**
   * Fingerprints of consecutive rank ranges: entry k covers ranks `[ranks[k], ranks[k+1])`.
   * Each boundary's prefix sum is computed once.
   */
  fingerprintsBetween(ranks: readonly number[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (ranks.length < 2) return out;
    this.#checkRanks(ranks[0], ranks[0]);
    const s = this.#scratch;
    this.#prefixSumAtRank(ranks[0], s, 0);
    for (let k = 1; k < ranks.length; k++) {
      this.#checkRanks(ranks[k - 1], ranks[k]);
      const cur = (k % 2) * SUM_LIMBS;
      const prev = SUM_LIMBS - cur;
      this.#prefixSumAtRank(ranks[k], s, cur);
      subtractSums(s, 2 * SUM_LIMBS, s, cur, s, prev);
      out.push(fingerprintFromSum(s, 2 * SUM_LIMBS, ranks[k] - ranks[k - 1]));
    }
    return out;
  }

  /** Index of the block an id belongs in: the last whose first id is <= id (or 0). */
  #blockFor(id: Uint8Array): number {
    let lo = 0;
    let hi = this.#blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compareAt(id, this.#blocks[mid].bytes, 0) >= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Position of the first id in the block that is >= `id`. */
  #searchBlock(block: Block, id: Uint8Array): number {
    let lo = 0;
    let hi = block.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareAt(id, block.bytes, mid * ID_BYTES) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Splits the full block `b` into two halves. */
  #split(b: number): void {
    const block = this.#blocks[b];
    const half = block.length >>> 1;
    const upper = newBlock(BLOCK_CAPACITY);
    upper.bytes.set(
      block.bytes.subarray(half * ID_BYTES, block.length * ID_BYTES),
    );
    upper.length = block.length - half;
    for (let i = 0; i < upper.length; i++) {
      addStored(upper.sum, 0, upper, i);
      subtractStored(block.sum, 0, upper, i);
    }
    block.length = half;
    this.#blocks.splice(b + 1, 0, upper);
    if (b < this.#validPrefix) this.#validPrefix = b;
  }

  /** Brings prefix counts and sums up to date from the first changed block. */
  #ensurePrefix(): void {
    const n = this.#blocks.length;
    if (this.#validPrefix >= n && this.#prefixCount.length === n + 1) return;
    if (this.#prefixSum.length < (n + 1) * SUM_LIMBS) {
      const grown = new Uint32Array(2 * (n + 1) * SUM_LIMBS);
      grown.set(
        this.#prefixSum.subarray(0, (this.#validPrefix + 1) * SUM_LIMBS),
      );
      this.#prefixSum = grown;
    }
    this.#prefixCount.length = n + 1;
    for (let b = this.#validPrefix; b < n; b++) {
      this.#prefixCount[b + 1] = this.#prefixCount[b] + this.#blocks[b].length;
      addSums(
        this.#prefixSum,
        (b + 1) * SUM_LIMBS,
        this.#prefixSum,
        b * SUM_LIMBS,
        this.#blocks[b].sum,
        0,
      );
    }
    this.#validPrefix = n;
  }

  /** Index of the block holding `rank` (requires rank < size). */
  #blockOfRank(rank: number): number {
    this.#ensurePrefix();
    let lo = 0;
    let hi = this.#blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#prefixCount[mid] <= rank) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Writes the sum of the ids with rank < `rank` into `out[at..at+8)`. */
  #prefixSumAtRank(rank: number, out: Uint32Array, at: number): void {
    this.#ensurePrefix();
    const n = this.#blocks.length;
    if (rank === this.#size) {
      out.set(this.#prefixSum.subarray(n * SUM_LIMBS, (n + 1) * SUM_LIMBS), at);
      return;
    }
    const b = this.#blockOfRank(rank);
    const block = this.#blocks[b];
    const offset = rank - this.#prefixCount[b];
    // Walk from whichever end of the block is nearer.
    const columns = this.#columns;
    if (offset <= block.length >>> 1) {
      out.set(this.#prefixSum.subarray(b * SUM_LIMBS, (b + 1) * SUM_LIMBS), at);
      columnTotals(columns, block, 0, offset);
      addColumnsToSum(out, at, columns, 1);
    } else {
      out.set(
        this.#prefixSum.subarray((b + 1) * SUM_LIMBS, (b + 2) * SUM_LIMBS),
        at,
      );
      columnTotals(columns, block, offset, block.length);
      addColumnsToSum(out, at, columns, -1);
    }
  }

  #checkRanks(start: number, end: number): void {
    if (
      !Number.isInteger(start) || !Number.isInteger(end) || start < 0 ||
      end < start || end > this.#size
    ) {
      throw new RangeError(
        `Invalid rank range [${start}, ${end}) in a set of ${this.#size} ids`,
      );
    }
  }
}
