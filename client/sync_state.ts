/**
 * The state a browser sync reports (see browser_sync.ts) and the leader tab shares with the
 * other tabs (see tab_channel.ts).
 *
 * @module
 */

/** Where sync stands. */
export type SyncStatus =
  | "idle"
  | "syncing"
  | "offline"
  | "error"
  | "revoked";

/** What a revoked device kept: local edits the server never confirmed. */
export interface RevokedReport {
  /** Commits made here that did not reach the server (they stay in the database). */
  readonly commits: number;
  /** Paths of the items they changed. */
  readonly items: readonly string[];
}

/**
 * Whether the server can be reached: "offline" when the browser has no network,
 * "unreachable" when it has one but the server does not answer (down, wrong address,
 * a proxy in the way), "online" when the server answered the last attempt.
 */
export type NetworkState = "online" | "offline" | "unreachable";

/** A snapshot of the sync state, carried by `statechange` events. */
export interface SyncState {
  /** The browser has a network and the server answered the last attempt. */
  readonly online: boolean;
  /** Tells a missing network from a server that does not answer. */
  readonly network: NetworkState;
  readonly status: SyncStatus;
  /** "websocket" while the live socket is up, else "http" (polling). */
  readonly transport: "websocket" | "http";
  /** Repositories with changes not yet reconciled over HTTP. */
  readonly pending: readonly string[];
  /**
   * Commits of this replica (every tab) the server has not confirmed yet: the edits
   * that clearing local data now would lose.
   */
  readonly pendingCommits: number;
  readonly lastSyncAt?: number;
  readonly lastError?: string;
  /**
   * "leader" when this tab syncs for every tab of the database, "follower" when it
   * shows the leader's state.
   */
  readonly role: "leader" | "follower";
  /** Set when the server revoked this device (status "revoked"): what stayed local. */
  readonly revoked?: RevokedReport;
}
