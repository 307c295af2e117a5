/**
 * Where a received commit goes once ingest.ts has checked it: into its item's graph, the
 * sync index and the log (with its session's record first, so the log verifies on its
 * own), and then to the item's listeners. Commits another tab of the same database already
 * stored are applied in memory only.
 *
 * @module
 */

import { type CommitId, commitIdBytes } from "../commit/commit.ts";
import type { SessionId } from "../crypto/keys.ts";
import type { ChangeEvents } from "./change_events.ts";
import type { CommitIndex } from "./commit_index.ts";
import type { ItemEntry } from "./item_entry.ts";
import type { CommitNode } from "./item_graph.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { LogWriter } from "./log_writer.ts";
import type { SessionRecord } from "./session.ts";

/** A verified commit from a peer, ready to be added. */
export interface ReceivedCommit {
  readonly node: CommitNode;
  /** The item key (last path segment). */
  readonly key: string;
  /** The binary id, when the caller has it. */
  readonly idBytes?: Uint8Array;
  /** The record's stored form (`[kind][sig][commit]`), when the caller has it. */
  readonly record?: Uint8Array;
}

/** What adding received commits did. */
export interface AddedCommits {
  readonly accepted: CommitId[];
  /** Commits the item graph refused (e.g. a delta on a missing snapshot). */
  readonly rejected: { id: CommitId; reason: string }[];
}

/** What applying received commits needs from its repository. */
export interface ReceivedCommitDeps {
  readonly index: CommitIndex;
  readonly history: HistoryLoader;
  readonly writer: LogWriter;
  readonly events: ChangeEvents;
  /** The entry of a key, created when new. */
  entryFor(key: string): ItemEntry;
  /** The record of a session the log does not hold yet (trusted or seen). */
  sessionFor(id: SessionId): SessionRecord | undefined;
}

/**
 * Adds verified commits from a peer to their items; `persist` false when they are already
 * in the storage (written by another tab).
 */
export function addReceivedCommits(
  deps: ReceivedCommitDeps,
  commits: readonly ReceivedCommit[],
  persist: boolean,
): AddedCommits {
  const { index, history, writer } = deps;
  const known = index.map();
  const touched = new Set<ItemEntry>();
  const accepted: CommitId[] = [];
  const rejected: { id: CommitId; reason: string }[] = [];
  for (const { node, key, idBytes, record } of commits) {
    const c = node.commit;
    if (known.has(c.id)) continue;
    const e = deps.entryFor(key);
    const g = history.fullGraphOf(e);
    const result = g.add(node);
    for (const r of result.rejected) {
      rejected.push({ id: r.node.commit.id, reason: r.reason });
      index.removed(r.node.commit.id);
    }
    if (!g.has(c.id)) continue;
    index.added(c.id, e);
    if (!persist) {
      // Whoever stored the commit stored its session record before it.
      writer.sessionStored(c.session);
    } else if (!writer.hasSession(c.session)) {
      const session = deps.sessionFor(c.session);
      if (session) writer.recordSession(session);
    }
    if (persist) writer.appendCommit(node, record);
    else writer.offsetsUnknown();
    index.signed(idBytes ?? commitIdBytes(c.id));
    accepted.push(c.id);
    if (result.completed.length) {
      e.value = null;
      touched.add(e);
    }
  }
  for (const e of touched) deps.events.emit(e, false);
  return { accepted, rejected };
}
