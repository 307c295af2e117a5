/**
 * The sync status: offline, server unreachable or online, and how many edits the
 * server has not confirmed yet.
 *
 * @module
 */

import { useSyncStatus } from "@capra/capra/react";

/** One line about sync. */
export function StatusBar() {
  const s = useSyncStatus();
  if (!s) return null;
  const where = s.network === "offline"
    ? "Offline"
    : s.network === "unreachable"
    ? "Server unreachable"
    : "Online";
  const pending = s.pendingCommits === 0
    ? "all saved to the server"
    : `${s.pendingCommits} edit${s.pendingCommits === 1 ? "" : "s"} not synced`;
  return (
    <p role="status" id="status" data-pending={s.pendingCommits}>
      {where} · {pending}
    </p>
  );
}
