/**
 * Kinds of records in a repository log. Every record payload starts with its kind byte.
 * A commit record is `[1][signature: 64 bytes][canonical commit bytes]`, the same bytes
 * on disk and on the wire; a session record is `[2][session record]`.
 *
 * @module
 */

/** Record kinds. */
export const RecordKind = {
  Commit: 1,
  Session: 2,
} as const;

/** A record kind. */
export type RecordKind = typeof RecordKind[keyof typeof RecordKind];

/** Offset of the commit bytes inside a commit record payload. */
export const COMMIT_RECORD_HEADER = 65;
