/**
 * Reconciliation messages: plain data, a compact binary encoding, and strict validation.
 *
 * A message is a list of consecutive ranges covering the id space from the start up to the
 * last range's upper bound (anything above it is settled). Binary layout:
 *
 * ```
 * message     = version:u8 range*                       (ranges until the end of the bytes)
 * range       = bound mode:u8 payload
 * bound       = 0xff                                    (end of the id space)
 *             | len:u8 (0..32) prefix[len]              (canonical: no trailing zero byte)
 * skip        (mode 0) = nothing
 * fingerprint (mode 1) = fp[16]
 * idList      (mode 2) = count:varint id[32]*count
 * difference  (mode 3) = haveCount:varint needCount:varint id[32]*(have+need)
 * varint      = unsigned LEB128, minimal, at most 3 bytes
 * ```
 *
 * Bounds strictly increase; ids in a range are strictly ascending and inside it.
 *
 * @module
 */

import {
  compareBounds,
  compareIds,
  ID_BYTES,
  type IdBound,
  idInRange,
  isCanonicalBound,
  START_BOUND,
} from "../idset/id_bytes.ts";
import { FINGERPRINT_BYTES } from "../idset/fingerprint.ts";

/** Version byte of the message encoding. */
export const PROTOCOL_VERSION = 1;
/** Largest encoded message accepted or produced, in bytes. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Most ranges in one message. */
export const MAX_RANGES_PER_MESSAGE = 16_384;
/** Most ids (over all id lists and differences) in one message. */
export const MAX_IDS_PER_MESSAGE = 16_384;
/** Bound length byte standing for the end of the id space. */
export const END_BOUND_TAG = 0xff;
/** Longest varint accepted (3 bytes hold every count up to 2^21 - 1). */
export const MAX_VARINT_BYTES = 3;

/** Mode byte of each range kind. */
export const RangeMode = {
  skip: 0,
  fingerprint: 1,
  idList: 2,
  difference: 3,
} as const;

/** Nothing to do in this range: it matched, or it was settled earlier. */
export interface SkipRange {
  readonly mode: "skip";
  readonly upper: IdBound;
}

/** The sender's fingerprint of its ids in the range; please compare. */
export interface FingerprintRange {
  readonly mode: "fingerprint";
  readonly upper: IdBound;
  readonly fingerprint: Uint8Array;
}

/** Every id the sender holds in the range; please answer with a difference. */
export interface IdListRange {
  readonly mode: "idList";
  readonly upper: IdBound;
  readonly ids: readonly Uint8Array[];
}

/**
 * The settled difference of the range, from the sender's side: `have` are ids the sender
 * holds and the receiver lacks, `need` are ids the receiver holds and the sender lacks.
 * The receiver does not answer it.
 */
export interface DifferenceRange {
  readonly mode: "difference";
  readonly upper: IdBound;
  readonly have: readonly Uint8Array[];
  readonly need: readonly Uint8Array[];
}

/** One range of a message; its lower bound is the previous range's upper bound. */
export type ReconcileRange =
  | SkipRange
  | FingerprintRange
  | IdListRange
  | DifferenceRange;

/** One reconciliation message. */
export interface ReconcileMessage {
  readonly version: typeof PROTOCOL_VERSION;
  readonly ranges: readonly ReconcileRange[];
}

/** Encoded size of a bound. */
export function boundSize(bound: IdBound): number {
  return bound === null ? 1 : 1 + bound.length;
}

/** Encoded size of an unsigned LEB128 varint. */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : 3;
}

/** Encoded size of one range. */
export function rangeSize(range: ReconcileRange): number {
  const head = boundSize(range.upper) + 1;
  switch (range.mode) {
    case "skip":
      return head;
    case "fingerprint":
      return head + FINGERPRINT_BYTES;
    case "idList":
      return head + varintSize(range.ids.length) + ID_BYTES * range.ids.length;
    case "difference":
      return head + varintSize(range.have.length) +
        varintSize(range.need.length) +
        ID_BYTES * (range.have.length + range.need.length);
  }
}

/** Encoded size of a message (which must be well-formed). */
export function messageSize(message: ReconcileMessage): number {
  let size = 1;
  for (const range of message.ranges) size += rangeSize(range);
  return size;
}

function checkIds(
  ids: unknown,
  lower: IdBound,
  upper: IdBound,
  where: string,
): readonly Uint8Array[] {
  if (!Array.isArray(ids)) {
    throw new TypeError(`${where}: ids must be an array`);
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id instanceof Uint8Array) || id.length !== ID_BYTES) {
      throw new TypeError(
        `${where}: id ${i} is not a ${ID_BYTES}-byte Uint8Array`,
      );
    }
    if (i > 0 && compareIds(ids[i - 1], id) >= 0) {
      throw new SyntaxError(
        `${where}: ids are not strictly ascending at index ${i}`,
      );
    }
    if (!idInRange(id, lower, upper)) {
      throw new SyntaxError(`${where}: id ${i} lies outside the range`);
    }
  }
  return ids;
}

function checkDisjoint(
  a: readonly Uint8Array[],
  b: readonly Uint8Array[],
  where: string,
): void {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const c = compareIds(a[i], b[j]);
    if (c === 0) {
      throw new SyntaxError(`${where}: an id is both had and needed`);
    }
    if (c < 0) i++;
    else j++;
  }
}

/**
 * Checks that a message is well-formed and within every limit; returns its encoded size.
 * Throws a TypeError for wrong value types, a SyntaxError for a broken structure and a
 * RangeError for an unsupported version or an exceeded limit.
 */
export function validateMessage(message: ReconcileMessage): number {
  if (typeof message !== "object" || message === null) {
    throw new TypeError("Invalid reconcile message: expected an object");
  }
  if (message.version !== PROTOCOL_VERSION) {
    throw new RangeError(
      `Unsupported reconcile message version ${
        String(message.version)
      }: expected ${PROTOCOL_VERSION}`,
    );
  }
  const ranges = message.ranges;
  if (!Array.isArray(ranges)) {
    throw new TypeError("Invalid reconcile message: ranges must be an array");
  }
  if (ranges.length > MAX_RANGES_PER_MESSAGE) {
    throw new RangeError(
      `Reconcile message has ${ranges.length} ranges: the limit is ${MAX_RANGES_PER_MESSAGE}`,
    );
  }
  let lower: IdBound = START_BOUND;
  let size = 1;
  let idCount = 0;
  for (let r = 0; r < ranges.length; r++) {
    const range = ranges[r] as ReconcileRange;
    const where = `Invalid reconcile message range ${r}`;
    if (typeof range !== "object" || range === null) {
      throw new TypeError(`${where}: expected an object`);
    }
    const upper = range.upper;
    if (
      upper !== null &&
      !(upper instanceof Uint8Array && upper.length <= ID_BYTES)
    ) {
      throw new TypeError(
        `${where}: upper must be null or at most ${ID_BYTES} bytes`,
      );
    }
    if (!isCanonicalBound(upper)) {
      throw new SyntaxError(`${where}: upper bound ends with a zero byte`);
    }
    if (lower === null || compareBounds(lower, upper) >= 0) {
      throw new SyntaxError(`${where}: bounds must strictly increase`);
    }
    switch (range.mode) {
      case "skip":
        break;
      case "fingerprint":
        if (
          !(range.fingerprint instanceof Uint8Array) ||
          range.fingerprint.length !== FINGERPRINT_BYTES
        ) {
          throw new TypeError(
            `${where}: fingerprint must be ${FINGERPRINT_BYTES} bytes`,
          );
        }
        break;
      case "idList":
        idCount += checkIds(range.ids, lower, upper, where).length;
        break;
      case "difference":
        idCount += checkIds(range.have, lower, upper, where).length;
        idCount += checkIds(range.need, lower, upper, where).length;
        if (range.have.length + range.need.length === 0) {
          throw new SyntaxError(
            `${where}: a difference must carry at least one id`,
          );
        }
        checkDisjoint(range.have, range.need, where);
        break;
      default:
        throw new TypeError(
          `${where}: unknown mode ${
            String((range as { mode?: unknown }).mode)
          }`,
        );
    }
    if (idCount > MAX_IDS_PER_MESSAGE) {
      throw new RangeError(
        `Reconcile message carries more than ${MAX_IDS_PER_MESSAGE} ids`,
      );
    }
    size += rangeSize(range);
    lower = upper;
  }
  if (size > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Reconcile message of ${size} bytes exceeds the limit of ${MAX_MESSAGE_BYTES}`,
    );
  }
  return size;
}
