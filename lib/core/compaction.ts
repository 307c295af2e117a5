/**
 * Running garbage collection on a repository: checking the retention, planning what to
 * keep (compaction_plan.ts), closing the repository, rewriting its file atomically and
 * reopening it with its listeners handed over. Also following a sync peer's horizon, so
 * that both replicas hold the same history and reconcile in one round again.
 *
 * @module
 */

import type { CommitId } from "../commit/commit.ts";
import { type RepoPath, repoPathOf } from "../path.ts";
import type { Storage } from "../storage/storage.ts";
import { compactedLog } from "./compaction_plan.ts";
import type { OpenRepositories } from "./open_repositories.ts";

/** Default shortest retention window: one day, the default session lifetime. */
export const DEFAULT_MIN_RETENTION_MS = 24 * 3_600_000;

/**
 * Shortest retention a sync peer can announce and have followed: below it, its horizon
 * is followed only down to this far back (a peer cannot make a replica forget its last
 * second of history).
 */
export const MIN_FOLLOWED_RETENTION_MS = 1000;

/** Options of {@link Compactor.followHorizon}. */
export interface FollowOptions {
  /**
   * The retention window the peer announced (ms): its horizon is followed down to it
   * instead of this replica's own minimum retention.
   */
  readonly retentionMs?: number;
  /** Commits to keep although they are old: those the peer holds. */
  readonly keep?: ReadonlySet<CommitId>;
}

/** What a compaction kept and dropped. */
export interface CompactionResult {
  readonly repo: string;
  readonly keptCommits: number;
  readonly droppedCommits: number;
  /** Size of the rewritten log. */
  readonly bytesAfter: number;
}

/** Garbage collection of one database's repositories. */
export class Compactor {
  /** The last peer horizon each repository followed (see followHorizon). */
  readonly #followed = new Map<RepoPath, number>();

  constructor(
    private readonly storage: Storage,
    private readonly repos: OpenRepositories,
    /** Wall-clock ms. */
    private readonly now: () => number,
    /** Shortest retention window accepted (ms). */
    readonly minRetentionMs: number = DEFAULT_MIN_RETENTION_MS,
  ) {}

  /**
   * Garbage-collects a repository's history: commits older than `retainMs` are removed
   * per item unless the current value needs them, and the file is rewritten atomically.
   */
  async compact(
    repo: string,
    options: { retainMs: number },
  ): Promise<CompactionResult> {
    const path = repoPathOf(repo);
    const retainMs = options?.retainMs;
    if (typeof retainMs !== "number" || !(retainMs >= this.minRetentionMs)) {
      throw new RangeError(
        `Invalid retention ${
          String(retainMs)
        } ms for ${path}: must be at least ${this.minRetentionMs} ms (the session lifetime)`,
      );
    }
    return await this.#compactTo(path, (this.now() - retainMs) * 1024);
  }

  /**
   * Follows a sync peer's garbage collection: when the peer's horizon (an HLC timestamp)
   * is later than this repository's, compacts to it. The horizon is clamped to the local
   * minimum retention, or to the retention the peer announced when it is shorter (a peer
   * cannot make this replica forget more recent history than it says it keeps itself);
   * storages that cannot rewrite logs collect in place. Returns null when nothing was
   * done.
   */
  async followHorizon(
    repo: string,
    peerHorizon: number,
    options: FollowOptions = {},
  ): Promise<CompactionResult | null> {
    const path = repoPathOf(repo);
    const cutoff = this.cutoffFor(peerHorizon, options.retentionMs);
    const r = await this.repos.open(path);
    if (
      !(cutoff > r.horizon) || this.repos.isCompacting(path) ||
      (this.#followed.get(path) ?? 0) >= cutoff
    ) return null;
    this.#followed.set(path, cutoff);
    if (!this.storage.replaceLog) {
      // The log cannot be rewritten: collect in place (kept, but no longer offered).
      const plan = compactedLog(r, cutoff, options.keep);
      if (!plan.dropped) return null;
      r.collectInPlace(cutoff, plan.droppedIds);
      return {
        repo: path,
        keptCommits: plan.kept,
        droppedCommits: plan.dropped,
        bytesAfter: 0,
      };
    }
    const result = await this.#compactTo(path, cutoff, options.keep);
    return result.droppedCommits ? result : null;
  }

  /**
   * The cutoff a peer horizon leads to here: never inside the minimum retention, or
   * inside the retention the peer announced (at least {@link MIN_FOLLOWED_RETENTION_MS})
   * when that is shorter.
   */
  cutoffFor(peerHorizon: number, peerRetentionMs?: number): number {
    let retention = this.minRetentionMs;
    if (
      typeof peerRetentionMs === "number" && Number.isFinite(peerRetentionMs)
    ) {
      retention = Math.min(
        retention,
        Math.max(peerRetentionMs, MIN_FOLLOWED_RETENTION_MS),
      );
    }
    return Math.min(peerHorizon, (this.now() - retention) * 1024);
  }

  /** True when `path` has not followed a horizon at least as late as `peerHorizon`'s cutoff. */
  wouldFollow(
    path: RepoPath,
    peerHorizon: number,
    peerRetentionMs?: number,
  ): boolean {
    return (this.#followed.get(path) ?? 0) <
      this.cutoffFor(peerHorizon, peerRetentionMs);
  }

  async #compactTo(
    path: RepoPath,
    cutoff: number,
    keep?: ReadonlySet<CommitId>,
  ): Promise<CompactionResult> {
    const replaceLog = this.storage.replaceLog?.bind(this.storage);
    if (!replaceLog) {
      throw new Error(
        `This storage cannot rewrite logs: ${path} cannot be compacted`,
      );
    }
    if (this.repos.isCompacting(path)) {
      throw new Error(`Repository ${path} is already being compacted`);
    }
    // Marked before the first await: an `open` from now on waits for the new file.
    const done = this.repos.beginCompaction(path);
    try {
      const r = await this.repos.openOnce(path);
      // Dry run: when nothing is old enough to drop, leave the file alone.
      const plan = compactedLog(r, cutoff, keep);
      if (plan.removed === 0) {
        return {
          repo: path,
          keptCommits: plan.kept,
          droppedCommits: 0,
          bytesAfter: plan.frames.reduce((n, f) => n + f.length, 0),
        };
      }
      await r.close("compacted");
      const { frames, kept, dropped } = compactedLog(r, cutoff, keep);
      await replaceLog(path, frames);
      this.repos.replaced(path, r);
      // Reopen at once: live queries and item listeners move to the new repository.
      const fresh = await this.repos.openOnce(path);
      fresh.adopt(r);
      return {
        repo: path,
        keptCommits: kept,
        droppedCommits: dropped,
        bytesAfter: frames.reduce((n, f) => n + f.length, 0),
      };
    } finally {
      done();
    }
  }
}
