/**
 * Range-based set reconciliation of commit ids, transport-independent and stateless: every
 * round is a pure function of the local set and the peer's last message.
 *
 * The initiator sends {@linkcode initiate}; then both sides feed each message they receive
 * to {@linkcode respond} and send back its `reply` until a side gets a null reply (nothing
 * left to reconcile: the transport closes the exchange, e.g. with an empty response).
 *
 * Per range: equal fingerprints are skipped; a mismatch is split into
 * {@linkcode BRANCHING_FACTOR} sub-ranges of equal id counts, or answered with our id list
 * when we hold at most {@linkcode ID_LIST_THRESHOLD} ids there. An id list is answered with
 * the range's difference (what each side lacks), which ends the range.
 *
 * Who learns what: both sides learn the full difference. For each differing range, the side
 * that receives the id list reports it in `have`/`need` of that `respond` call, and the
 * other side reports the same ids, swapped, when the difference reaches it. So over the
 * whole exchange each side's `have` is exactly what it holds and the peer lacks (what it
 * must send) and its `need` exactly what the peer holds and it lacks (what it will get).
 *
 * Size limits: new work in a reply (splits, id lists, differences) stops at `maxBytes` and
 * `maxRanges`. Ranges of the peer's message left unanswered are deferred: echoed as our
 * fingerprint of the range (adjacent ones merged), so a later round takes them up. A reply
 * thus stays within the limits, give or take one range, unless the peer's message was
 * itself bigger, in which case the echo may be about that big. Every reply answers at least
 * one range, so every round progresses. Only when echoing would break the protocol's hard
 * limits is everything from there on deferred as one range; an id of that stretch whose
 * difference was already settled may then be reported again, so treat `have` and `need`
 * as idempotent (sending or requesting a commit twice is harmless).
 *
 * @module
 */

import { type IdBound, START_BOUND } from "../idset/id_bytes.ts";
import type { IdSet } from "../idset/id_set.ts";
import {
  MAX_IDS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  MAX_RANGES_PER_MESSAGE,
  PROTOCOL_VERSION,
  type ReconcileMessage,
  type ReconcileRange,
  validateMessage,
} from "./message.ts";
import {
  fingerprintRangeSize,
  ReplyBuilder,
  skipRangeSize,
} from "./reply_builder.ts";
import {
  answerFingerprint,
  answerIdList,
  BRANCHING_FACTOR,
  ID_LIST_THRESHOLD,
  type RangeInput,
} from "./range_answers.ts";

export * from "./message.ts";
export { decodeMessage, encodeMessage } from "./codec.ts";
export { BRANCHING_FACTOR, ID_LIST_THRESHOLD } from "./range_answers.ts";
export { ID_BYTES, type IdBound } from "../idset/id_bytes.ts";
export { FINGERPRINT_BYTES } from "../idset/fingerprint.ts";

/** Default soft limit on a reply's encoded size. */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024;
/** Smallest allowed `maxBytes`. */
export const MIN_REPLY_BYTES = 1024;
/** Largest allowed `maxBytes`: leaves room under the hard limit to defer a whole message. */
export const MAX_REPLY_BYTES = MAX_MESSAGE_BYTES / 4;
/** Default soft limit on a reply's range count. */
export const DEFAULT_MAX_REPLY_RANGES = 2048;
/** Smallest allowed `maxRanges`: one full split and a little more. */
export const MIN_REPLY_RANGES = 4 * BRANCHING_FACTOR;
/** Largest allowed `maxRanges`. */
export const MAX_REPLY_RANGES = MAX_RANGES_PER_MESSAGE / 4;

/** Tuning for {@linkcode initiate} and {@linkcode respond}. */
export interface ReconcileOptions {
  /** Soft limit on the encoded size of a message (default 64 KiB). */
  readonly maxBytes?: number;
  /** Soft limit on the ranges in a message (default 2048). */
  readonly maxRanges?: number;
}

/** Outcome of one {@linkcode respond} call. */
export interface RespondResult {
  /** The message to send back, or null when nothing remains to reconcile. */
  readonly reply: ReconcileMessage | null;
  /** Ids learned this round that we hold and the peer lacks (we must send them). */
  readonly have: Uint8Array[];
  /** Ids learned this round that the peer holds and we lack (we will receive them). */
  readonly need: Uint8Array[];
}

interface Limits {
  readonly maxBytes: number;
  readonly maxRanges: number;
}

function resolveOptions(options: ReconcileOptions | undefined): Limits {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_REPLY_BYTES;
  const maxRanges = options?.maxRanges ?? DEFAULT_MAX_REPLY_RANGES;
  if (
    !Number.isInteger(maxBytes) || maxBytes < MIN_REPLY_BYTES ||
    maxBytes > MAX_REPLY_BYTES
  ) {
    throw new RangeError(
      `Invalid maxBytes ${maxBytes}: expected an integer in [${MIN_REPLY_BYTES}, ${MAX_REPLY_BYTES}]`,
    );
  }
  if (
    !Number.isInteger(maxRanges) || maxRanges < MIN_REPLY_RANGES ||
    maxRanges > MAX_REPLY_RANGES
  ) {
    throw new RangeError(
      `Invalid maxRanges ${maxRanges}: expected an integer in [${MIN_REPLY_RANGES}, ${MAX_REPLY_RANGES}]`,
    );
  }
  return { maxBytes, maxRanges };
}

/**
 * The first message of an exchange: the fingerprint of the whole set, or the whole id list
 * when the set holds at most {@linkcode ID_LIST_THRESHOLD} ids.
 *
 * @example
 * ```ts
 * import { IdSet } from "../idset/id_set.ts";
 * import { encodeMessage, initiate, respond } from "./reconcile.ts";
 * const a = new IdSet([new Uint8Array(32).fill(1)]);
 * const b = new IdSet([new Uint8Array(32).fill(1)]);
 * encodeMessage(initiate(a)).length; // 36: an id list of one id
 * respond(b, initiate(a)).reply; // null: already in sync
 * ```
 */
export function initiate(
  set: IdSet,
  options?: ReconcileOptions,
): ReconcileMessage {
  resolveOptions(options);
  const range: ReconcileRange = set.size <= ID_LIST_THRESHOLD
    ? { mode: "idList", upper: null, ids: set.slice(0, set.size) }
    : {
      mode: "fingerprint",
      upper: null,
      fingerprint: set.fingerprintOfRanks(0, set.size),
    };
  return { version: PROTOCOL_VERSION, ranges: [range] };
}

/** Whether a range asks for work (true) or is settled (false). */
function isWork(range: ReconcileRange): boolean {
  return range.mode === "fingerprint" || range.mode === "idList";
}

/**
 * Cost of deferring every range from index i on: reserve[i] bytes and ranges. Consecutive
 * work ranges merge into one fingerprint and consecutive settled ranges into one skip.
 */
function deferralReserve(ranges: readonly ReconcileRange[]): {
  bytes: number[];
  count: number[];
} {
  const n = ranges.length;
  const bytes = new Array<number>(n + 1).fill(0);
  const count = new Array<number>(n + 1).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    const r = ranges[i];
    const endsRun = i === n - 1 || isWork(ranges[i + 1]) !== isWork(r);
    const cost = !endsRun
      ? 0
      : isWork(r)
      ? fingerprintRangeSize(r.upper)
      : skipRangeSize(r.upper);
    bytes[i] = bytes[i + 1] + cost;
    count[i] = count[i + 1] + (endsRun ? 1 : 0);
  }
  return { bytes, count };
}

/**
 * Processes a peer's message against our set: returns our reply and the differences
 * learned in this round (see the module doc for who learns what).
 *
 * @example
 * ```ts
 * import { IdSet } from "../idset/id_set.ts";
 * import { initiate, respond } from "./reconcile.ts";
 * const a = new IdSet([new Uint8Array(32).fill(1)]);
 * const b = new IdSet([new Uint8Array(32).fill(2)]);
 * const r1 = respond(b, initiate(a)); // b learns: have [2…], need [1…]
 * const r2 = respond(a, r1.reply!); // a learns: have [1…], need [2…]
 * r2.reply; // null
 * ```
 */
export function respond(
  set: IdSet,
  message: ReconcileMessage,
  options?: ReconcileOptions,
): RespondResult {
  const limits = resolveOptions(options);
  validateMessage(message);
  const ranges = message.ranges;
  const reserve = deferralReserve(ranges);
  const out = new ReplyBuilder();
  const have: Uint8Array[] = [];
  const need: Uint8Array[] = [];
  let answered = false; // some work range was answered in this reply
  let deferring = false; // every later work range is deferred
  let coarseFrom = -1; // when >= 0: our rank where one deferred range to the end starts
  let lower: IdBound = START_BOUND;
  let lowerRank = 0;
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i];
    const upperRank = set.rank(range.upper);
    if (range.mode === "difference") {
      // The peer settled this range: its `need` is our have, its `have` our need.
      for (const id of range.need) if (set.has(id)) have.push(id.slice());
      for (const id of range.have) if (!set.has(id)) need.push(id.slice());
    }
    if (
      deferring && coarseFrom < 0 &&
      (out.bytes + reserve.bytes[i] > MAX_MESSAGE_BYTES ||
        out.ranges + reserve.count[i] > MAX_RANGES_PER_MESSAGE)
    ) {
      coarseFrom = lowerRank; // range-by-range deferral would break the hard limits
    }
    if (coarseFrom >= 0) {
      // Covered by the single deferred range added after the loop.
    } else if (range.mode === "skip" || range.mode === "difference") {
      out.skip(range.upper);
    } else if (deferring) {
      out.defer(range.upper, lowerRank, upperRank);
    } else {
      const input: RangeInput = {
        set,
        lower,
        upper: range.upper,
        start: lowerRank,
        end: upperRank,
        budget: {
          bytes: limits.maxBytes - out.bytes - reserve.bytes[i + 1],
          ranges: limits.maxRanges - out.ranges - reserve.count[i + 1],
          ids: MAX_IDS_PER_MESSAGE - out.ids,
          force: !answered,
        },
      };
      const answer = range.mode === "fingerprint"
        ? answerFingerprint(input, range.fingerprint)
        : answerIdList(input, range.ids);
      if (answer === null) {
        deferring = true;
        out.defer(range.upper, lowerRank, upperRank);
      } else {
        answered = true;
        for (const r of answer.ranges) {
          if (r.mode === "skip") out.skip(r.upper);
          else out.push(r);
        }
        have.push(...answer.have);
        need.push(...answer.need);
        if (answer.deferredFrom !== undefined) {
          deferring = true;
          out.defer(range.upper, answer.deferredFrom, upperRank);
        }
      }
    }
    lower = range.upper;
    lowerRank = upperRank;
  }
  if (coarseFrom >= 0) out.defer(lower, coarseFrom, lowerRank);
  return { reply: out.finish(set), have, need };
}
