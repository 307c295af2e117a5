/**
 * Keeps tabs of one origin consistent: each tab's new local commits are posted on a
 * BroadcastChannel and ingested by the other tabs (duplicates are ignored by ingest), so
 * tabs agree even offline. Every tab appends to the shared IndexedDB log in whole-record
 * chunks with auto-increment keys, so concurrent writers never corrupt it.
 *
 * @module
 */

import type { Database } from "../lib/core/database.ts";

interface TabMessage {
  readonly repo: string;
  readonly records: Uint8Array[];
}

/** Links a database to the other tabs' databases of the same name; returns a stop. */
export function linkTabs(db: Database, name: string): () => void {
  if (typeof BroadcastChannel === "undefined") return () => {};
  const channel = new BroadcastChannel(`capra:${name}`);
  const off = db.onCommits((repo, nodes) => {
    // Local commits are announced once signed and stored.
    queueMicrotask(() => {
      const records: Uint8Array[] = [];
      for (const n of nodes) {
        const rec = repo.commitRecord(n.commit.id);
        if (rec) records.push(rec);
      }
      if (records.length) {
        channel.postMessage({ repo: repo.path, records } satisfies TabMessage);
      }
    });
  });
  channel.onmessage = async (ev: MessageEvent<TabMessage>) => {
    const { repo, records } = ev.data ?? {};
    if (typeof repo !== "string" || !Array.isArray(records)) return;
    if (db.closed || !db.isOpen(repo)) return;
    try {
      await db.repository(repo).ingest(records);
    } catch (e) {
      console.error("capra: cannot apply another tab's commits:", e);
    }
  };
  return () => {
    off();
    channel.close();
  };
}
