/**
 * Kinds of records in a repository log. Every record payload starts with its kind byte.
 * A commit record is `[1][signature: 64 bytes][canonical commit bytes]`, the same bytes
 * on disk and on the wire; a session record is `[2][session record]`.
 *
 * @module
 */

import { decode, encode } from "../encoding/msgpack.ts";
import { decodeBase64Url, encodeBase64Url } from "../encoding/base64url.ts";
import {
  type CommitId,
  commitIdBytes,
  commitIdFromBytes,
} from "../commit/commit.ts";

/** Record kinds. */
export const RecordKind = {
  Commit: 1,
  Session: 2,
  /** Written by garbage collection: the horizon timestamp and the pruned frontier. */
  Horizon: 3,
  /**
   * Written when a repository closes after long histories grew: which earlier commit
   * records a reader needs to decode at open (see {@link CheckpointRecord}).
   */
  Checkpoint: 4,
} as const;

/** A record kind. */
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/** Offset of the commit bytes inside a commit record payload. */
export const COMMIT_RECORD_HEADER = 65;

/**
 * What garbage collection left: commits before `ts` are gone; `pruned` parents are gone.
 * With `inPlace` (storages that cannot rewrite their log) the `pruned` commits are still
 * in the log but count as collected: they are no longer offered to peers.
 */
export interface HorizonRecord {
  readonly ts: number;
  readonly pruned: readonly CommitId[];
  readonly inPlace?: boolean;
}

/** Encodes a horizon record body. */
export function encodeHorizonRecord(h: HorizonRecord): Uint8Array {
  return encode({
    ts: h.ts,
    pruned: [...h.pruned].sort().map(commitIdBytes),
    ...(h.inPlace ? { inPlace: true } : {}),
  });
}

/** Decodes a horizon record body; throws SyntaxError when malformed. */
export function decodeHorizonRecord(bytes: Uint8Array): HorizonRecord {
  const v = decode(bytes, { maxDepth: 2 }) as {
    ts?: unknown;
    pruned?: unknown;
    inPlace?: unknown;
  };
  if (
    v === null || typeof v !== "object" || typeof v.ts !== "number" ||
    !Array.isArray(v.pruned) ||
    !v.pruned.every((x) => x instanceof Uint8Array && x.length === 32)
  ) throw new SyntaxError("Invalid horizon record: expected { ts, pruned }");
  return {
    ts: v.ts,
    pruned: (v.pruned as Uint8Array[]).map(commitIdFromBytes),
    ...(v.inPlace === true ? { inPlace: true } : {}),
  };
}

/**
 * A checkpoint covers every record before it. For each item with two or more commit
 * records before the checkpoint, it names the records that reading the item needs (its
 * heads and the full snapshots they are deltas of) by payload offset, each with the first
 * {@link CHECKPOINT_ID_PREFIX} characters of its commit id (checked when decoded, so a
 * checkpoint that does not match its log is never trusted). The item's other records
 * before the checkpoint are history, decoded on demand. An item with nothing named
 * (commits waiting for missing parents, say) is decoded whole, and so is every item with
 * one record before the checkpoint.
 */
export interface CheckpointRecord {
  /** Payload offset → commit id prefix. */
  readonly named: Map<number, string>;
}

/** Characters of a commit id a checkpoint keeps per record (9 bytes). */
export const CHECKPOINT_ID_PREFIX = 12;
const PREFIX_BYTES = 9;
const CHECKPOINT_VERSION = 1;

/** Encodes a checkpoint record body: `[1, offsets as LEB128 deltas, id prefixes]`. */
export function encodeCheckpointRecord(
  named: ReadonlyMap<number, string>,
): Uint8Array {
  const sorted = Float64Array.from(named.keys()).sort();
  const offsets = new Uint8Array(sorted.length * 8);
  const prefixes = new Uint8Array(sorted.length * PREFIX_BYTES);
  let o = 0, prev = 0;
  sorted.forEach((x, k) => {
    let v = x - prev;
    prev = x;
    while (v >= 0x80) {
      offsets[o++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    offsets[o++] = v;
    const id = decodeBase64Url(named.get(x)!.slice(0, CHECKPOINT_ID_PREFIX));
    prefixes.set(id.subarray(0, PREFIX_BYTES), k * PREFIX_BYTES);
  });
  return encode([CHECKPOINT_VERSION, offsets.slice(0, o), prefixes]);
}

/** Decodes a checkpoint record body; throws SyntaxError when malformed. */
export function decodeCheckpointRecord(bytes: Uint8Array): CheckpointRecord {
  const v = decode(bytes, { maxDepth: 1 });
  if (
    !Array.isArray(v) || v[0] !== CHECKPOINT_VERSION ||
    !(v[1] instanceof Uint8Array) || !(v[2] instanceof Uint8Array) ||
    v[2].length % PREFIX_BYTES !== 0
  ) {
    throw new SyntaxError(
      "Invalid checkpoint record: expected [1, offsets, prefixes]",
    );
  }
  const offsets = v[1], prefixes = v[2];
  const named = new Map<number, string>();
  let prev = 0, i = 0, k = 0;
  while (i < offsets.length) {
    let x = 0, scale = 1, b: number;
    do {
      if (i >= offsets.length || scale > 2 ** 49) {
        throw new SyntaxError("Invalid checkpoint record: truncated offset");
      }
      b = offsets[i++];
      x += (b & 0x7f) * scale;
      scale *= 0x80;
    } while (b & 0x80);
    if ((k + 1) * PREFIX_BYTES > prefixes.length) {
      throw new SyntaxError("Invalid checkpoint record: missing id prefix");
    }
    named.set(
      prev += x,
      encodeBase64Url(
        prefixes.subarray(k * PREFIX_BYTES, (k + 1) * PREFIX_BYTES),
      ),
    );
    k++;
  }
  return { named };
}
