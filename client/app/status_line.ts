/**
 * The demo app's status line: whether the server can be reached (no network is
 * "Offline", a network without an answering server is "Server unreachable"), how it is
 * synced (live socket or polling, directly or through another tab), and how many edits
 * the server has not confirmed yet; a device the server revoked says so.
 *
 * @module
 */

import type { SyncState } from "../browser_sync.ts";

/** "1 edit" / "3 edits". */
export function editCount(n: number): string {
  return `${n} edit${n === 1 ? "" : "s"}`;
}

/** The status line's text for a sync state. */
export function statusText(s: SyncState): string {
  const pending = s.pendingCommits > 0
    ? `${editCount(s.pendingCommits)} not synced yet`
    : "all edits synced";
  const via = s.role === "follower" ? ", via another tab" : "";
  if (s.status === "revoked") {
    // The server refuses this device: nothing syncs until it signs in again.
    const kept = s.revoked?.commits ?? s.pendingCommits;
    return `Device signed out by the server · ${
      kept > 0 ? `${editCount(kept)} kept here, not synced` : "nothing unsynced"
    }`;
  }
  switch (s.network) {
    case "offline":
      return `Offline · ${pending}`;
    case "unreachable":
      return `Server unreachable, retrying${via} · ${pending}`;
    default: {
      const how = s.transport === "websocket" ? "live" : "polling";
      const state = s.status === "error"
        ? `sync error: ${s.lastError ?? "unknown"}`
        : s.status === "syncing"
        ? "syncing"
        : pending;
      return `Online (${how}${via}) · ${
        state === pending ? state : `${state} · ${pending}`
      }`;
    }
  }
}

/** Shows a sync state in the status element (text and data attributes for styling). */
export function renderStatus(el: HTMLElement, s: SyncState): void {
  el.textContent = statusText(s);
  el.dataset.online = String(s.online);
  el.dataset.network = s.network;
  el.dataset.status = s.status;
  el.dataset.transport = s.transport;
  el.dataset.role = s.role;
  el.dataset.pending = String(s.pendingCommits);
}
