/**
 * The blocks an `IdSet` stores its ids in, and the inner loops over them.
 *
 * @module
 */

import { ID_BYTES } from "./id_bytes.ts";
import {
  addIdToSum,
  addWordsToSum,
  LITTLE_ENDIAN_PLATFORM,
  subtractIdFromSum,
  subtractWordsFromSum,
  SUM_LIMBS,
} from "./fingerprint.ts";

/** A run of sorted ids with the cached sum of its ids. */
export interface Block {
  /** `length` sorted ids, 32 bytes each, then spare room. */
  bytes: Uint8Array;
  /** The same memory as 32-bit words: the ids' limbs on little-endian platforms. */
  words: Uint32Array;
  length: number;
  /** Sum of this block's ids (8 limbs). */
  sum: Uint32Array;
}

export function newBlock(capacityIds: number): Block {
  const bytes = new Uint8Array(capacityIds * ID_BYTES);
  return {
    bytes,
    words: new Uint32Array(bytes.buffer),
    length: 0,
    sum: new Uint32Array(SUM_LIMBS),
  };
}

/** Adds the block's id at `index` to the sum at `sum[at..]`. */
export function addStored(
  sum: Uint32Array,
  at: number,
  block: Block,
  index: number,
): void {
  if (LITTLE_ENDIAN_PLATFORM) {
    addWordsToSum(sum, at, block.words, index * SUM_LIMBS);
  } else addIdToSum(sum, at, block.bytes, index * ID_BYTES);
}

/** Sets `columns[i]` to the plain total of limb i over the block's ids `[from, to)`. */
export function columnTotals(
  columns: Float64Array,
  block: Block,
  from: number,
  to: number,
  useWords: boolean = LITTLE_ENDIAN_PLATFORM,
): void {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
  if (useWords) {
    const w = block.words;
    for (let i = from * SUM_LIMBS; i < to * SUM_LIMBS; i += SUM_LIMBS) {
      c0 += w[i];
      c1 += w[i + 1];
      c2 += w[i + 2];
      c3 += w[i + 3];
      c4 += w[i + 4];
      c5 += w[i + 5];
      c6 += w[i + 6];
      c7 += w[i + 7];
    }
    columns[0] = c0;
    columns[1] = c1;
    columns[2] = c2;
    columns[3] = c3;
    columns[4] = c4;
    columns[5] = c5;
    columns[6] = c6;
    columns[7] = c7;
    return;
  }
  columns.fill(0);
  const b = block.bytes;
  for (let i = from * ID_BYTES; i < to * ID_BYTES; i += 4) {
    columns[(i % ID_BYTES) / 4] +=
      (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
  }
}

/** Subtracts the block's id at `index` from the sum at `sum[at..]`. */
export function subtractStored(
  sum: Uint32Array,
  at: number,
  block: Block,
  index: number,
): void {
  if (LITTLE_ENDIAN_PLATFORM) {
    subtractWordsFromSum(sum, at, block.words, index * SUM_LIMBS);
  } else subtractIdFromSum(sum, at, block.bytes, index * ID_BYTES);
}

/** Byte-wise comparison of `id` with the id stored at `bytes[offset..]`. */
export function compareAt(
  id: Uint8Array,
  bytes: Uint8Array,
  offset: number,
): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = id[i] - bytes[offset + i];
    if (d !== 0) return d;
  }
  return 0;
}

/** True when the id stored at `bytes[offset..]` is below `bound`. */
export function storedBelow(
  bytes: Uint8Array,
  offset: number,
  bound: Uint8Array,
): boolean {
  for (let i = 0; i < bound.length; i++) {
    const d = bytes[offset + i] - bound[i];
    if (d !== 0) return d < 0;
  }
  return false;
}
