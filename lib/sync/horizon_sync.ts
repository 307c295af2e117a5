/**
 * Sync that follows the peer's garbage collection. A sync pass learns the peer's
 * horizon from its first answer and holds back the commits older than it (the peer would
 * ignore them); it still receives everything the peer holds, old kept commits included.
 * Then, with the history they build on still here:
 *
 * 1. The local edits the peer cannot take (held back and not history it collected, or
 *    reported obsolete by the peer) are re-applied on the peer's current state as one
 *    new commit per item (lib/core/refused_edits.ts), reported in `SyncStats.reapplied`;
 *    held-back history the peer collected is collected here too.
 * 2. This replica follows the peer's horizon (down to the retention the peer announced,
 *    or its own minimum retention), keeping every commit the peer holds, so both hold
 *    the same history and the next sync settles in one round.
 * 3. One more pass sends the re-applied commits.
 *
 * @module
 */

import type { CommitId } from "../commit/commit.ts";
import type { FollowOptions } from "../core/compaction.ts";
import type { OpenRepository } from "../core/open_repository.ts";
import {
  peerKnowledge,
  type SyncHooks,
  syncRepository,
  type SyncStats,
  type SyncTransport,
} from "./sync_round.ts";

/** What following a peer's horizon needs from the database. */
export interface HorizonFollower {
  /** Opens (or returns) the repository. */
  open(repo: string): Promise<OpenRepository>;
  /** True when a peer horizon would make this replica collect more than it has. */
  wouldFollow(path: string, peerHorizon: number, retentionMs?: number): boolean;
  /** Collects the repository's history up to the peer's horizon (clamped locally). */
  followHorizon(
    repo: string,
    peerHorizon: number,
    options: FollowOptions,
  ): Promise<unknown>;
}

/** Adds the counts of a later sync to the first one's. */
function combined(first: SyncStats, rest: SyncStats): SyncStats {
  return {
    ...rest,
    rounds: first.rounds + rest.rounds,
    bytesSent: first.bytesSent + rest.bytesSent,
    bytesReceived: first.bytesReceived + rest.bytesReceived,
    commitsSent: first.commitsSent + rest.commitsSent,
    commitsReceived: first.commitsReceived + rest.commitsReceived,
    rejected: [...first.rejected, ...rest.rejected],
    obsolete: first.obsolete + rest.obsolete,
    errors: [...first.errors, ...rest.errors],
    peerHorizon: Math.max(first.peerHorizon, rest.peerHorizon),
    reapplied: [...first.reapplied, ...rest.reapplied],
  };
}

/**
 * Reconciles `repo` (open already) with a peer through `transport` and returns when both
 * hold the same commits, re-applying refused edits and following the peer's horizon on
 * the way (see the module doc).
 */
export async function syncFollowingHorizon(
  db: HorizonFollower,
  repo: OpenRepository,
  transport: SyncTransport,
  hooks: SyncHooks = {},
): Promise<SyncStats> {
  const path = repo.path;
  const knowledge = peerKnowledge();
  const stats = await syncRepository(repo, transport, hooks, knowledge);
  let again = false;
  if (knowledge.heldBack.size || knowledge.refused.size) {
    const done = await (await db.open(path)).reapplyRefused(knowledge);
    stats.obsolete = done.refused;
    stats.reapplied = done.reapplied;
    again = done.reapplied.length > 0 || done.collected > 0;
  }
  const current = await db.open(path);
  const retentionMs = hooks.peerRetentionMs;
  if (
    stats.peerHorizon > current.horizon &&
    db.wouldFollow(path, stats.peerHorizon, retentionMs)
  ) {
    // Keep what the peer holds: both then hold the same history.
    const keep = new Set<CommitId>();
    for (const id of current.commitIndex().keys()) {
      if (!knowledge.lacking.has(id)) keep.add(id);
    }
    await db.followHorizon(path, stats.peerHorizon, {
      keep,
      ...(retentionMs !== undefined ? { retentionMs } : {}),
    });
    again = true;
  }
  if (!again) return stats;
  const rest = await syncRepository(await db.open(path), transport, hooks);
  return combined(stats, rest);
}
