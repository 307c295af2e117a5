/**
 * Indexing a repository log on open without decoding history: one pass over the record
 * frames reads only each commit's item key (so every item gets an entry pointing at its
 * records), the last checkpoint, the garbage-collection horizons and the session records.
 *
 * @module
 */

import { type CommitId, peekItemKey } from "../commit/commit.ts";
import type { RepoPath } from "../path.ts";
import type { RepoLog } from "../storage/storage.ts";
import { ItemEntry } from "./item_entry.ts";
import { decodeHorizonRecord, RecordKind } from "./records.ts";
import { decodeSessionRecord, type SessionRecord } from "./session.ts";

/** What one pass over a log found. */
export interface LogIndex {
  /** One entry per item key, in order of first appearance. */
  readonly entries: Map<string, ItemEntry>;
  /** Commit records stored after the last checkpoint. */
  readonly sinceCheckpoint: number;
  /** Payload offset of the last checkpoint record (-1: none), and its body. */
  readonly checkpointAt: number;
  readonly checkpoint: Uint8Array | null;
  /** The latest garbage-collection horizon (HLC timestamp; 0: none). */
  readonly horizon: number;
  /** Ids pruned by compaction (frontier parents of kept commits). */
  readonly pruned: CommitId[];
  /** Ids collected in place (still stored, no longer offered to peers). */
  readonly collected: CommitId[];
  /** Sessions whose record the log holds. */
  readonly sessions: SessionRecord[];
  /** Log offset where the next appended frame starts (= the log's size at open). */
  readonly size: number;
}

/**
 * Indexes `log` of repository `path`. Records that are checksummed but undecodable are
 * skipped here (the `verify` command reports them).
 */
export function indexLog(log: RepoLog, path: RepoPath): LogIndex {
  const data = log.data, frames = log.frames;
  const entries = new Map<string, ItemEntry>();
  const pruned: CommitId[] = [], collected: CommitId[] = [];
  const sessions: SessionRecord[] = [];
  let checkpoint: Uint8Array | null = null;
  let checkpointAt = -1, sinceCheckpoint = 0, horizon = 0;
  for (let i = 0; i < frames.length; i += 2) {
    const start = frames[i], end = frames[i + 1];
    const kind = data[start];
    if (kind === RecordKind.Commit && end - start > 65) {
      const key = peekItemKey(data, start + 65, end);
      if (key === undefined) continue;
      sinceCheckpoint++;
      const e = entries.get(key);
      if (!e) {
        const created = new ItemEntry(key, path);
        created.start = start;
        created.end = end;
        entries.set(key, created);
      } else (e.more ??= []).push(start, end);
    } else if (kind === RecordKind.Checkpoint) {
      checkpointAt = start;
      checkpoint = data.subarray(start + 1, end);
      sinceCheckpoint = 0;
    } else if (kind === RecordKind.Horizon) {
      try {
        const h = decodeHorizonRecord(data.subarray(start + 1, end));
        horizon = Math.max(horizon, h.ts);
        const into = h.inPlace ? collected : pruned;
        for (const id of h.pruned) into.push(id);
      } catch { /* reported by `verify` */ }
    } else if (kind === RecordKind.Session) {
      try {
        sessions.push(decodeSessionRecord(data.subarray(start + 1, end)));
      } catch { /* reported by `verify` */ }
    }
  }
  return {
    entries,
    sinceCheckpoint,
    checkpointAt,
    checkpoint,
    horizon,
    pruned,
    collected,
    sessions,
    size: frames.length ? frames[frames.length - 1] : 0,
  };
}
