/**
 * Sync that follows the peer's garbage collection. When the peer collected history this
 * replica still holds, the sync stops before offering it, this replica collects to the
 * peer's horizon too (so both commit-id sets match again) and syncs once more.
 *
 * @module
 */

import type { OpenRepository } from "../core/open_repository.ts";
import {
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
  wouldFollow(path: string, peerHorizon: number): boolean;
  /** Collects the repository's history up to the peer's horizon (clamped locally). */
  followHorizon(repo: string, peerHorizon: number): Promise<unknown>;
}

/**
 * Reconciles `repo` (open already) with a peer through `transport` and returns when both
 * hold the same commits, following the peer's horizon on the way.
 */
export async function syncFollowingHorizon(
  db: HorizonFollower,
  repo: OpenRepository,
  transport: SyncTransport,
  hooks?: SyncHooks,
): Promise<SyncStats> {
  const stats = await syncRepository(repo, transport, {
    ...hooks,
    stopAtHorizon: (h) => db.wouldFollow(repo.path, h),
  });
  if (stats.peerHorizon <= repo.horizon) return stats;
  await db.followHorizon(repo.path, stats.peerHorizon);
  if (!stats.stoppedAtHorizon) return stats;
  const rest = await syncRepository(await db.open(repo.path), transport, hooks);
  return {
    ...rest,
    rounds: stats.rounds + rest.rounds,
    bytesSent: stats.bytesSent + rest.bytesSent,
    bytesReceived: stats.bytesReceived + rest.bytesReceived,
    commitsSent: stats.commitsSent + rest.commitsSent,
    commitsReceived: stats.commitsReceived + rest.commitsReceived,
    rejected: [...stats.rejected, ...rest.rejected],
    errors: [...stats.errors, ...rest.errors],
  };
}
