/**
 * What garbage collection left in a repository: the horizon (commits older than it were
 * collected and are refused), the pruned ids (dropped commits that kept commits name as
 * parents: the graph treats them as present) and the ids collected in place (storages that
 * cannot rewrite their log keep them, but no longer offer them to peers). Changes are
 * persisted as horizon records.
 *
 * @module
 */

import type { CommitId } from "../commit/commit.ts";
import type { LogWriter } from "./log_writer.ts";
import { encodeHorizonRecord, RecordKind } from "./records.ts";

/** The garbage-collection state of one repository. */
export class GcState {
  /** Commits older than this timestamp were garbage-collected and are refused. */
  horizon: number;
  /** Commits removed by garbage collection that kept commits name as parents. */
  readonly pruned: Set<CommitId>;
  /** Commits collected in place: still in the log, no longer offered to peers. */
  readonly collected: Set<CommitId>;

  constructor(
    private readonly writer: LogWriter,
    horizon: number,
    pruned: Iterable<CommitId>,
    collected: Iterable<CommitId>,
  ) {
    this.horizon = horizon;
    this.pruned = new Set(pruned);
    this.collected = new Set(collected);
  }

  /**
   * Takes a peer's word that `ids` were garbage-collected there (those `held` does not
   * know); persists them in a horizon record. Returns how many were new.
   */
  admitPruned(
    ids: Iterable<CommitId>,
    held: ReadonlyMap<CommitId, unknown>,
  ): number {
    const fresh: CommitId[] = [];
    for (const id of ids) {
      if (!this.pruned.has(id) && !held.has(id)) fresh.push(id);
    }
    if (!fresh.length) return 0;
    for (const id of fresh) this.pruned.add(id);
    this.writer.appendRecord(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: this.horizon, pruned: fresh }),
    );
    return fresh.length;
  }

  /**
   * Counts `dropped` as collected from now on (they stay stored) and moves the horizon to
   * `cutoff`. Returns false when there was nothing to collect.
   */
  collectInPlace(cutoff: number, dropped: readonly CommitId[]): boolean {
    if (!dropped.length) return false;
    for (const id of dropped) this.collected.add(id);
    this.horizon = Math.max(this.horizon, cutoff);
    this.writer.appendRecord(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: this.horizon, pruned: dropped, inPlace: true }),
    );
    return true;
  }
}
