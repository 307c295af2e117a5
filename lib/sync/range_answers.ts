/**
 * How one range of a peer's message is answered: a fingerprint by a skip, our id list or a
 * split into sub-range fingerprints; an id list by the range's difference. Each answer
 * must fit the given budget, or it returns null and the caller defers the range.
 *
 * @module
 */

import {
  compareIds,
  ID_BYTES,
  type IdBound,
  separatorBound,
} from "../idset/id_bytes.ts";
import type { IdSet } from "../idset/id_set.ts";
import { fingerprintsEqual } from "../idset/fingerprint.ts";
import {
  boundSize,
  MAX_VARINT_BYTES,
  type ReconcileRange,
  varintSize,
} from "./message.ts";
import { fingerprintRangeSize } from "./reply_builder.ts";

/** Sub-ranges a mismatched range is split into. */
export const BRANCHING_FACTOR = 16;
/**
 * A mismatched range holding at most this many of our ids is answered with the ids rather
 * than split. Lower trades bytes for rounds: with 100,000 ids, 16 costs ~1.4 KB and 7
 * messages for one difference (~780 B per difference at 100), against ~1.9 KB and 6
 * messages (~1.2 KB per difference) with 32.
 */
export const ID_LIST_THRESHOLD = BRANCHING_FACTOR;
/** Our ids fetched at a time while walking a range against a peer's id list. */
const WALK_CHUNK_IDS = 256;
/** Largest encoded size of a difference range's two counts. */
const DIFFERENCE_COUNTS_BYTES = 2 * MAX_VARINT_BYTES;

/** Room left for one range's answer. */
export interface RangeBudget {
  readonly bytes: number;
  readonly ranges: number;
  readonly ids: number;
  /** Answer even over the soft budget: nothing was answered yet, so a round progresses. */
  readonly force: boolean;
}

/** One range of the peer's message, located in our set. */
export interface RangeInput {
  readonly set: IdSet;
  readonly lower: IdBound;
  readonly upper: IdBound;
  /** Our ranks of the range: ids with ranks in [start, end) lie in it. */
  readonly start: number;
  readonly end: number;
  readonly budget: RangeBudget;
}

/** The answer to one work range. */
export interface RangeAnswer {
  readonly ranges: ReconcileRange[];
  /** Our rank from which the rest of the range is deferred, when it was cut short. */
  readonly deferredFrom?: number;
  /** Ids we hold that the peer lacks, learned from the range. */
  readonly have: Uint8Array[];
  /** Ids the peer holds that we lack, learned from the range. */
  readonly need: Uint8Array[];
}

function fits(budget: RangeBudget, bytes: number, ranges: number, ids: number) {
  if (ids > budget.ids) return false;
  return budget.force || (bytes <= budget.bytes && ranges <= budget.ranges);
}

/** Answers a peer's fingerprint; null when the answer does not fit the budget. */
export function answerFingerprint(
  input: RangeInput,
  theirs: Uint8Array,
): RangeAnswer | null {
  const { set, upper, start, end, budget } = input;
  if (fingerprintsEqual(set.fingerprintOfRanks(start, end), theirs)) {
    return { ranges: [{ mode: "skip", upper }], have: [], need: [] };
  }
  const count = end - start;
  if (count <= ID_LIST_THRESHOLD) {
    const bytes = boundSize(upper) + 1 + varintSize(count) + ID_BYTES * count;
    if (!fits(budget, bytes, 1, count)) return null;
    const ids = set.slice(start, end);
    return { ranges: [{ mode: "idList", upper, ids }], have: [], need: [] };
  }
  // Split into sub-ranges of (nearly) equal, non-zero counts, bounded by the shortest
  // separators between neighbouring ids.
  const parts = Math.min(BRANCHING_FACTOR, count);
  const ranks: number[] = [start];
  const bounds: IdBound[] = [];
  let bytes = 0;
  for (let k = 1; k <= parts; k++) {
    const rank = start + Math.floor(k * count / parts);
    const bound = k === parts
      ? upper
      : separatorBound(set.at(rank - 1), set.at(rank));
    ranks.push(rank);
    bounds.push(bound);
    bytes += fingerprintRangeSize(bound);
  }
  if (!fits(budget, bytes, parts, 0)) return null;
  const fingerprints = set.fingerprintsBetween(ranks);
  const ranges: ReconcileRange[] = bounds.map((bound, k) => ({
    mode: "fingerprint",
    upper: bound,
    fingerprint: fingerprints[k],
  }));
  return { ranges, have: [], need: [] };
}

/**
 * Answers a peer's id list with the difference of the range. When the difference does not
 * fit, answers a prefix of the range and reports where the deferred rest starts; null when
 * not even one id fits.
 */
export function answerIdList(
  input: RangeInput,
  theirs: readonly Uint8Array[],
): RangeAnswer | null {
  const { set, upper, start, end, budget } = input;
  const overhead = boundSize(upper) + 1 + DIFFERENCE_COUNTS_BYTES +
    fingerprintRangeSize(upper);
  let maxIds = Math.min(
    budget.ids,
    Math.floor((budget.bytes - overhead) / ID_BYTES),
  );
  if (budget.force) maxIds = Math.max(maxIds, Math.min(1, budget.ids));
  if (maxIds <= 0 || (!budget.force && budget.ranges < 2)) return null;

  const have: Uint8Array[] = [];
  const need: Uint8Array[] = [];
  let last: Uint8Array | undefined; // the last difference taken
  let cut: Uint8Array | undefined; // the first difference left out
  let chunk: Uint8Array[] = [];
  let c = 0; // index in chunk
  let next = start; // our rank after the chunk
  let j = 0; // index in theirs
  const take = (id: Uint8Array, list: Uint8Array[]) => {
    if (have.length + need.length === maxIds) {
      cut = id;
      return false;
    }
    list.push(id);
    last = id;
    return true;
  };
  for (;;) {
    if (c === chunk.length && next < end) {
      const to = Math.min(end, next + WALK_CHUNK_IDS);
      chunk = set.slice(next, to);
      c = 0;
      next = to;
    }
    const ours = c < chunk.length ? chunk[c] : undefined;
    const peer = j < theirs.length ? theirs[j] : undefined;
    if (ours === undefined && peer === undefined) break;
    const order = ours === undefined
      ? 1
      : peer === undefined
      ? -1
      : compareIds(ours, peer);
    if (order === 0) {
      c++;
      j++;
    } else if (order < 0) {
      if (!take(ours!, have)) break;
      c++;
    } else {
      if (!take(peer!.slice(), need)) break;
      j++;
    }
  }
  if (have.length + need.length === 0) {
    return { ranges: [{ mode: "skip", upper }], have, need };
  }
  if (cut === undefined) {
    return { ranges: [{ mode: "difference", upper, have, need }], have, need };
  }
  const bound = separatorBound(last!, cut);
  return {
    ranges: [{ mode: "difference", upper: bound, have, need }],
    deferredFrom: set.rank(bound),
    have,
    need,
  };
}
