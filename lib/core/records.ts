/**
 * Kinds of records in a repository log. Every record payload starts with its kind byte.
 * A commit record is `[1][signature: 64 bytes][canonical commit bytes]`, the same bytes
 * on disk and on the wire; a session record is `[2][session record]`.
 *
 * @module
 */

import { decode, encode } from "../encoding/msgpack.ts";
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
} as const;

/** A record kind. */
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/** Offset of the commit bytes inside a commit record payload. */
export const COMMIT_RECORD_HEADER = 65;

/** What garbage collection left: commits before `ts` are gone; `pruned` parents are gone. */
export interface HorizonRecord {
  readonly ts: number;
  readonly pruned: readonly CommitId[];
}

/** Encodes a horizon record body. */
export function encodeHorizonRecord(h: HorizonRecord): Uint8Array {
  return encode({ ts: h.ts, pruned: [...h.pruned].sort().map(commitIdBytes) });
}

/** Decodes a horizon record body; throws SyntaxError when malformed. */
export function decodeHorizonRecord(bytes: Uint8Array): HorizonRecord {
  const v = decode(bytes, { maxDepth: 2 }) as {
    ts?: unknown;
    pruned?: unknown;
  };
  if (
    v === null || typeof v !== "object" || typeof v.ts !== "number" ||
    !Array.isArray(v.pruned) ||
    !v.pruned.every((x) => x instanceof Uint8Array && x.length === 32)
  ) throw new SyntaxError("Invalid horizon record: expected { ts, pruned }");
  return {
    ts: v.ts,
    pruned: (v.pruned as Uint8Array[]).map(commitIdFromBytes),
  };
}
