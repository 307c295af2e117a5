/**
 * Where a received commit goes once ingest.ts has checked it: into its item's graph, the
 * sync index and the log (with its session's record first, so the log verifies on its
 * own), and then to the item's listeners. Commits another tab of the same database already
 * stored are applied in memory only.
 *
 * A commit whose parent or delta base has not arrived waits: it is held in memory in its
 * item's graph, verified, but outside everything that makes it visible. It is not stored
 * (the peer that sent it still holds it and, since this replica does not list it, offers
 * it again), not counted accepted, not in the sync index or the commit-id set offered to
 * peers, and not forwarded. When its dependency arrives it joins like any new commit:
 * stored, indexed, reported accepted with the batch that completed it, and heard by the
 * listeners; when it is refused then (a timestamp not after its parent's), nothing of it
 * was ever indexed, so nothing needs undoing. At most `MAX_WAITING_COMMITS` wait per
 * repository (the oldest are forgotten first: they come again); they are dropped on close
 * and handed over when compaction replaces the repository.
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

export { MAX_WAITING_COMMITS } from "./commit_index.ts";

/** What adding received commits did. */
export interface AddedCommits {
  /** Commits stored now: complete ones, with earlier waiting commits they completed. */
  readonly accepted: CommitId[];
  /** Commits of the batch waiting for a missing dependency (held in memory). */
  readonly waiting: CommitId[];
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
  const { index, history } = deps;
  const known = index.map();
  const touched = new Set<ItemEntry>();
  const accepted: CommitId[] = [];
  const waiting: CommitId[] = [];
  const rejected: { id: CommitId; reason: string }[] = [];
  for (const { node, key, idBytes, record } of commits) {
    const c = node.commit;
    if (known.has(c.id)) continue;
    const e = deps.entryFor(key);
    const g = history.fullGraphOf(e);
    if (g.isWaiting(c.id)) {
      waiting.push(c.id);
      continue;
    }
    if (record) records.set(node, record);
    if (!persist) storedElsewhere.add(node);
    const result = g.add(node);
    for (const r of result.rejected) {
      rejected.push({ id: r.node.commit.id, reason: r.reason });
      index.waitingDone(r.node.commit.id);
    }
    for (const n of result.completed) {
      store(deps, e, n, n === node ? idBytes : undefined);
      accepted.push(n.commit.id);
    }
    if (result.completed.length) {
      e.value = null;
      touched.add(e);
    } else if (g.isWaiting(c.id)) {
      waiting.push(c.id);
      for (const [id, entry] of index.waitingAdded(c.id, e)) {
        entry.graph?.dropWaiting(id).forEach((d) => index.waitingDone(d));
      }
    }
  }
  for (const e of touched) deps.events.emit(e, false);
  return { accepted, waiting, rejected };
}

/** Stored forms of received commits, kept while they wait (no copy is made). */
const records = new WeakMap<CommitNode, Uint8Array>();
/** Received commits another tab of this database already stored. */
const storedElsewhere = new WeakSet<CommitNode>();

/** Adds a complete commit to the sync index and the log. */
function store(
  deps: ReceivedCommitDeps,
  e: ItemEntry,
  n: CommitNode,
  idBytes: Uint8Array | undefined,
): void {
  const { index, writer } = deps;
  const c = n.commit;
  index.waitingDone(c.id);
  index.added(c.id, e);
  if (storedElsewhere.has(n)) {
    // Whoever stored the commit stored its session record before it.
    writer.sessionStored(c.session);
    writer.offsetsUnknown();
  } else {
    if (!writer.hasSession(c.session)) {
      const session = deps.sessionFor(c.session);
      if (session) writer.recordSession(session);
    }
    writer.appendCommit(n, records.get(n));
  }
  records.delete(n);
  index.signed(idBytes ?? commitIdBytes(c.id));
}
