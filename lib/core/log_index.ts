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

/** Frames indexed between two clock reads of {@link indexLogSliced}. */
const FRAMES_PER_CHECK = 2048;

/** The state of one pass (filled frame by frame). */
class LogIndexer {
  readonly entries = new Map<string, ItemEntry>();
  readonly pruned: CommitId[] = [];
  readonly collected: CommitId[] = [];
  readonly sessions: SessionRecord[] = [];
  checkpoint: Uint8Array | null = null;
  checkpointAt = -1;
  sinceCheckpoint = 0;
  horizon = 0;

  constructor(
    private readonly log: RepoLog,
    private readonly path: RepoPath,
  ) {}

  /** Indexes frames `from` to `to` (frame numbers, not offsets). */
  add(from: number, to: number): void {
    const data = this.log.data, frames = this.log.frames;
    const entries = this.entries;
    for (let i = 2 * from; i < 2 * to; i += 2) {
      const start = frames[i], end = frames[i + 1];
      const kind = data[start];
      if (kind === RecordKind.Commit && end - start > 65) {
        const key = peekItemKey(data, start + 65, end);
        if (key === undefined) continue;
        this.sinceCheckpoint++;
        const e = entries.get(key);
        if (!e) {
          const created = new ItemEntry(key, this.path);
          created.start = start;
          created.end = end;
          entries.set(key, created);
        } else (e.more ??= []).push(start, end);
      } else if (kind === RecordKind.Checkpoint) {
        this.checkpointAt = start;
        this.checkpoint = data.subarray(start + 1, end);
        this.sinceCheckpoint = 0;
      } else if (kind === RecordKind.Horizon) {
        try {
          const h = decodeHorizonRecord(data.subarray(start + 1, end));
          this.horizon = Math.max(this.horizon, h.ts);
          const into = h.inPlace ? this.collected : this.pruned;
          for (const id of h.pruned) into.push(id);
        } catch { /* reported by `verify` */ }
      } else if (kind === RecordKind.Session) {
        try {
          this.sessions.push(
            decodeSessionRecord(data.subarray(start + 1, end)),
          );
        } catch { /* reported by `verify` */ }
      }
    }
  }

  result(): LogIndex {
    const frames = this.log.frames;
    return {
      entries: this.entries,
      sinceCheckpoint: this.sinceCheckpoint,
      checkpointAt: this.checkpointAt,
      checkpoint: this.checkpoint,
      horizon: this.horizon,
      pruned: this.pruned,
      collected: this.collected,
      sessions: this.sessions,
      size: frames.length ? frames[frames.length - 1] : 0,
    };
  }
}

/**
 * Indexes `log` of repository `path`. Records that are checksummed but undecodable are
 * skipped here (the `verify` command reports them).
 */
export function indexLog(log: RepoLog, path: RepoPath): LogIndex {
  const ix = new LogIndexer(log, path);
  ix.add(0, log.frames.length / 2);
  return ix.result();
}

/**
 * {@link indexLog} in slices of about `sliceMs`, calling `pause` between slices (the
 * database yields to the event loop there, so opening a large repository in a browser
 * is no long task).
 */
export async function indexLogSliced(
  log: RepoLog,
  path: RepoPath,
  sliceMs: number,
  pause: () => Promise<void>,
): Promise<LogIndex> {
  const ix = new LogIndexer(log, path);
  const n = log.frames.length / 2;
  let sliceStart = performance.now();
  for (let i = 0; i < n; i += FRAMES_PER_CHECK) {
    ix.add(i, Math.min(n, i + FRAMES_PER_CHECK));
    if (i + FRAMES_PER_CHECK < n && performance.now() - sliceStart > sliceMs) {
      await pause();
      sliceStart = performance.now();
    }
  }
  return ix.result();
}
