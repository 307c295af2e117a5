/**
 * Running garbage collection on a repository: checking the retention, planning what to
 * keep (compaction_plan.ts), closing the repository, rewriting its file atomically and
 * reopening it with its listeners handed over. Also following a sync peer's horizon, so
 * that both replicas hold the same history and reconcile in one round again.
 *
 * @module
 */

import { type RepoPath, repoPathOf } from "../path.ts";
import type { Storage } from "../storage/storage.ts";
import { compactedLog } from "./compaction_plan.ts";
import type { OpenRepositories } from "./open_repositories.ts";

/** Default shortest retention window: one day, the default session lifetime. */
export const DEFAULT_MIN_RETENTION_MS = 24 * 3_600_000;

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
   * minimum retention (a peer cannot make this replica forget recent history); storages
   * that cannot rewrite logs collect in place. Returns null when nothing was done.
   */
  async followHorizon(
    repo: string,
    peerHorizon: number,
  ): Promise<CompactionResult | null> {
    const path = repoPathOf(repo);
    const cutoff = this.cutoffFor(peerHorizon);
    const r = await this.repos.open(path);
    if (
      !(cutoff > r.horizon) || this.repos.isCompacting(path) ||
      (this.#followed.get(path) ?? 0) >= cutoff
    ) return null;
    this.#followed.set(path, cutoff);
    if (!this.storage.replaceLog) {
      // The log cannot be rewritten: collect in place (kept, but no longer offered).
      const plan = compactedLog(r, cutoff);
      if (!plan.dropped) return null;
      r.collectInPlace(cutoff, plan.droppedIds);
      return {
        repo: path,
        keptCommits: plan.kept,
        droppedCommits: plan.dropped,
        bytesAfter: 0,
      };
    }
    const result = await this.#compactTo(path, cutoff);
    return result.droppedCommits ? result : null;
  }

  /** The cutoff a peer horizon leads to here: never inside the minimum retention. */
  cutoffFor(peerHorizon: number): number {
    return Math.min(peerHorizon, (this.now() - this.minRetentionMs) * 1024);
  }

  /** True when `path` has not followed a horizon at least as late as `peerHorizon`'s cutoff. */
  wouldFollow(path: RepoPath, peerHorizon: number): boolean {
    return (this.#followed.get(path) ?? 0) < this.cutoffFor(peerHorizon);
  }

  async #compactTo(
    path: RepoPath,
    cutoff: number,
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
      const plan = compactedLog(r, cutoff);
      if (plan.dropped === 0) {
        return {
          repo: path,
          keptCommits: plan.kept,
          droppedCommits: 0,
          bytesAfter: plan.frames.reduce((n, f) => n + f.length, 0),
        };
      }
      await r.close("compacted");
      const { frames, kept, dropped } = compactedLog(r, cutoff);
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
