/**
 * An open repository `/type/repo` in memory: the object behind the {@link Repository}
 * interface. It wires the parts that each do one job:
 *
 * - log_index.ts, checkpoint.ts: indexing the log on open (item keys only) and the
 *   checkpoints that keep old history undecoded;
 * - log_bytes.ts, lazy_history.ts: which log bytes stay in memory, and decoding item
 *   graphs on demand;
 * - item_table.ts: the item entries and their values;
 * - local_writes.ts: where a local write goes (one commit per item per tick, signed in
 *   batches, appended);
 * - ingest.ts, received_commits.ts: where a received commit goes (checked, verified,
 *   added, appended);
 * - commit_index.ts: the sync index (commit id → item, the commit-id set);
 * - gc_state.ts, change_events.ts: what garbage collection left, and the listeners that
 *   move to the successor when compaction replaced this repository.
 *
 * @module
 */

import type { Commit, CommitId } from "../commit/commit.ts";
import type { ItemState } from "../merge/merge.ts";
import type { RepoPath } from "../path.ts";
import type { ItemData, Schema } from "../schema/schema.ts";
import type { RepoLog } from "../storage/storage.ts";
import type { IdSet } from "../idset/id_set.ts";
import type { RepoContext } from "./context.ts";
import { ChangeEvents } from "./change_events.ts";
import {
  applyCheckpoint,
  CHECKPOINT_MIN_RECORDS,
  planCheckpoint,
} from "./checkpoint.ts";
import { CommitIndex } from "./commit_index.ts";
import { GcState } from "./gc_state.ts";
import {
  type IngestOptions,
  ingestRecords,
  type IngestResult,
  type WriteCheck,
} from "./ingest.ts";
import type { ChangeListener, ItemEntry } from "./item_entry.ts";
import { type CommitInfo, historyOf } from "./item_history.ts";
import { ItemTable } from "./item_table.ts";
import { HistoryLoader } from "./lazy_history.ts";
import { LogBytes } from "./log_bytes.ts";
import { indexLog, type LogIndex } from "./log_index.ts";
import { LogWriter } from "./log_writer.ts";
import { LocalWrites } from "./local_writes.ts";
import {
  type AddedCommits,
  addReceivedCommits,
  type ReceivedCommit,
} from "./received_commits.ts";
import { encodeCheckpointRecord, RecordKind } from "./records.ts";
import {
  type PeerHoldings,
  reapplyRefusedEdits,
  type RefusedEditsResult,
} from "./refused_edits.ts";
import type { CloseReason, Repository, RepositoryStats } from "./repository.ts";

/** An open repository of items. */
export class OpenRepository implements Repository {
  readonly #bytes: LogBytes;
  readonly #writer: LogWriter;
  /** What garbage collection left (horizon, pruned and collected ids). */
  readonly gc: GcState;
  /** Decodes item graphs from the log on demand. */
  readonly graphs: HistoryLoader;
  /** The item entries and their values. */
  readonly items: ItemTable;
  readonly #index: CommitIndex;
  readonly #events: ChangeEvents;
  readonly #writes: LocalWrites;
  #closed = false;
  #successor: OpenRepository | null = null;
  /** Records the last checkpoint left undecoded at open. */
  #lazyAtOpen = 0;
  /** Why the repository was closed: explicitly, or automatically (idle, memory budget). */
  closeReason: CloseReason | null = null;
  /** Set by every access; cleared by the database's idle sweep. */
  touched = true;
  /** Use order for the memory budget (larger = more recent). */
  lastUsed = 0;

  /** Indexes `log` (see log_index.ts); use the database's `open()`. */
  constructor(
    readonly ctx: RepoContext<OpenRepository>,
    readonly path: RepoPath,
    log: RepoLog,
    /** The log's index, when the caller made it (in slices); else made here. */
    indexed?: LogIndex,
  ) {
    const found = indexed ?? indexLog(log, path);
    for (const s of found.sessions) ctx.knownSessions.set(s.id, s);
    this.#bytes = new LogBytes(log, log.data, found.size);
    this.#writer = new LogWriter(
      log,
      found.size,
      found.sinceCheckpoint,
      found.sessions.map((s) => s.id),
    );
    this.gc = new GcState(
      this.#writer,
      found.horizon,
      found.pruned,
      found.collected,
    );
    this.graphs = new HistoryLoader(
      this.#bytes,
      ctx.registry,
      this.gc.pruned,
      (e, g) => this.#index.historyLoaded(e, g),
    );
    this.items = new ItemTable(
      path,
      found.entries,
      this.#bytes,
      this.graphs,
      ctx.registry,
    );
    this.#index = new CommitIndex(
      this.graphs,
      () => this.items.entries(),
      this.gc.collected,
      () => this.checkOpen(),
    );
    this.#events = new ChangeEvents(ctx.safeCall);
    this.#writes = new LocalWrites({
      clock: ctx.clock,
      signer: ctx.signer,
      ownSession: ctx.ownSession,
      history: this.graphs,
      writer: this.#writer,
      index: this.#index,
      events: this.#events,
      stored: (nodes) => ctx.onCommitsStored(this, nodes),
      ...(ctx.slices ? { slices: ctx.slices } : {}),
      reportError: (error) => ctx.reportError(error),
    });
    if (found.checkpoint) {
      // An unreadable checkpoint (-1) leaves everything to be decoded.
      const lazy = applyCheckpoint(
        found.checkpoint,
        found.checkpointAt,
        found.entries.values(),
      );
      if (lazy > 0) this.#lazyAtOpen = lazy;
    }
    if (this.#lazyAtOpen > 0) {
      this.#bytes.keepOnlyRecordsOf(found.entries.values());
    }
  }

  /** Commits older than this timestamp were garbage-collected and are refused. */
  get horizon(): number {
    return this.gc.horizon;
  }

  /** Memory-use counters (tests and tools check that history stays on disk). */
  stats(): RepositoryStats {
    const { decodedCommits, lazyCommits } = this.items.usage();
    return {
      items: this.items.size,
      decodedCommits,
      lazyCommits,
      logBytesInMemory: this.#bytes.bytesInMemory,
      storageReads: this.#bytes.storageReads,
    };
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws when this repository or its database is closed; marks it used. */
  checkOpen(): void {
    this.touched = true;
    if (this.#closed) {
      throw new Error(
        `Repository ${this.path} is closed: open it again with db.open()`,
      );
    }
    this.ctx.checkOpen();
  }

  // --- items (item_table.ts; the entries and values are `items`) --------------------

  /** Keys of the items in this repository (deleted items only when asked). */
  keys(options: { includeDeleted?: boolean } = {}): string[] {
    this.checkOpen();
    return this.items.keys(options.includeDeleted === true);
  }

  /** Number of items that are not deleted. */
  count(): number {
    this.checkOpen();
    return this.items.count();
  }

  /** History of an item, oldest first. */
  history(key: string): CommitInfo[] {
    this.checkOpen();
    const e = this.items.entry(key);
    return e ? historyOf(this.graphs.fullGraphOf(e)) : [];
  }

  /**
   * The state commit `id` of an item recorded (upgraded to the newest schema version),
   * or undefined when the item has no such commit.
   */
  stateAt(key: string, id: string): ItemState | undefined {
    this.checkOpen();
    const e = this.items.entry(key);
    if (!e) return undefined;
    const g = this.graphs.fullGraphOf(e);
    const n = g.nodes.get(id as CommitId);
    return n ? g.stateOf(n) : undefined;
  }

  /** Typed data of a new item, for local creation. */
  static stateFor(schema: Schema, data: ItemData): ItemState {
    return { schema, data, deleted: false };
  }

  // --- local writes (local_writes.ts) -----------------------------------------------

  /** Records a local change to an entry; the commit follows this tick. */
  writeLocal(e: ItemEntry, state: ItemState): void {
    this.checkOpen();
    this.#writes.write(e, state);
  }

  /**
   * Turns pending local changes into commits now (one per item): those of `entry` only,
   * when given.
   */
  commitPending(entry?: ItemEntry): void {
    if (entry) this.#writes.commitPendingOf([entry]);
    else this.#writes.commitPending();
  }

  /** Appends one record to the log. */
  appendRecord(kind: RecordKind, body: Uint8Array): void {
    this.#writer.appendRecord(kind, body);
  }

  // --- received commits (ingest.ts, received_commits.ts) ----------------------------

  /**
   * Ingests commit records from a peer: each is decoded, checked against its id, its
   * session's signature and the clock; accepted ones are stored and merged.
   */
  ingest(
    records: readonly Uint8Array[],
    mayWrite?: WriteCheck,
    options?: IngestOptions,
  ): Promise<IngestResult> {
    this.checkOpen();
    return ingestRecords(this, records, mayWrite, options);
  }

  /**
   * Adds verified commits from a peer to their items; `persist` false when they are
   * already in the storage (written by another tab).
   */
  addRemote(commits: readonly ReceivedCommit[], persist = true): AddedCommits {
    // Local writes to these items get their commits first (the others keep their slices).
    this.#writes.commitPendingOf(commits.map((c) => this.items.entry(c.key)));
    return addReceivedCommits(
      {
        index: this.#index,
        history: this.graphs,
        writer: this.#writer,
        events: this.#events,
        entryFor: (key) => this.items.ensureEntry(key),
        sessionFor: (id) =>
          this.ctx.trust.lookup(id, this.ctx.now()) ??
            this.ctx.knownSessions.get(id) ??
            (id === this.ctx.ownSession.id ? this.ctx.ownSession : undefined),
      },
      commits,
      persist,
    );
  }

  // --- the sync index (commit_index.ts) ---------------------------------------------

  /** Index of every commit id (built on first use; sync and ingest need it). */
  commitIndex(): Map<CommitId, ItemEntry> {
    return this.#index.map();
  }

  /** The signature of a received commit waiting for a dependency (undefined: none). */
  waitingSignature(id: CommitId): Uint8Array | null | undefined {
    return this.#index.waitingSignature(id);
  }

  /** A commit of this repository by id (decoded on demand). */
  commitOf(id: CommitId): Commit | undefined {
    return this.#index.commitOf(id);
  }

  /** The stored record payload (`[kind][sig][commit]`) of a signed commit. */
  commitRecord(id: CommitId): Uint8Array | undefined {
    return this.#index.commitRecord(id);
  }

  /** Ids of every signed commit offered to peers (those collected in place excepted). */
  commitIds(): CommitId[] {
    return this.#index.commitIds();
  }

  /** The set of signed commit ids, for reconciliation (built on first use). */
  syncSet(): IdSet {
    return this.#index.syncSet();
  }

  // --- garbage collection (gc_state.ts) ---------------------------------------------

  /**
   * Takes a peer's word that `ids` were garbage-collected there, for commits about to be
   * ingested that name them as parents (a peer that compacted its history sends its kept
   * commits with their pruned parents). Only ids this repository does not hold are taken;
   * they are persisted in a horizon record so a reopen knows them too, and commits naming
   * them are then complete. Returns how many were new.
   */
  admitPruned(ids: Iterable<CommitId>): number {
    this.checkOpen();
    return this.gc.admitPruned(ids, this.#index.map());
  }

  /**
   * Re-applies the local edits a sync peer refused because it collected the history
   * they build on, and collects what the peer collected (see refused_edits.ts).
   */
  reapplyRefused(peer: PeerHoldings): Promise<RefusedEditsResult> {
    return reapplyRefusedEdits(this, peer);
  }

  /**
   * Garbage collection for storages that cannot rewrite their log (IndexedDB): `dropped`
   * stay on disk and in memory (values do not change) but count as collected from now on:
   * they are left out of the commit ids offered to peers, so this replica reconciles with
   * peers that collected them. Persisted as a horizon record.
   */
  collectInPlace(cutoff: number, dropped: readonly CommitId[]): void {
    this.checkOpen();
    if (this.gc.collectInPlace(cutoff, dropped)) {
      this.#index.invalidateSyncSet();
    }
  }

  // --- listeners and the successor (change_events.ts) -------------------------------

  /** Listens to every item change; returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    return this.#events.onChange(listener);
  }

  /** Number of repository-wide change listeners (lets tests check that none leak). */
  get listenerCount(): number {
    return this.#events.listenerCount;
  }

  /** Item listener bookkeeping (pins the repository). */
  itemListenerAdded(delta: 1 | -1): void {
    this.#events.itemListenerAdded(delta);
  }

  /**
   * True while something depends on the repository staying in memory: change listeners
   * (live queries, item listeners) or writes not yet committed. Pinned repositories are
   * never closed automatically.
   */
  get pinned(): boolean {
    return this.#events.listened || this.#writes.pending;
  }

  /** The repository that replaced this one (after compaction), or itself. */
  get current(): OpenRepository {
    return this.#successor ? this.#successor.current : this;
  }

  /**
   * Takes over the listeners of the repository this one replaces (garbage collection
   * rewrote the log), so live queries and item listeners keep working.
   */
  adopt(old: OpenRepository): void {
    old.#successor = this;
    this.#events.adopt(
      old.#events,
      old.items.entries(),
      (key) => this.items.entry(key) ?? this.items.ensureEntry(key),
    );
    // Received commits waiting for a dependency lived in memory only: they wait here.
    const waiting: ReceivedCommit[] = [];
    for (const e of old.items.entries()) {
      for (const node of e.graph?.waitingNodes() ?? []) {
        waiting.push({ node, key: e.key });
      }
    }
    if (waiting.length) this.addRemote(waiting);
  }

  // --- memory, durability, closing --------------------------------------------------

  /**
   * Rough bytes of memory held: the log bytes read at open plus per-item and per-commit
   * bookkeeping. Used by the database's memory budget.
   */
  estimatedBytes(): number {
    return this.#bytes.bytesInMemory + this.items.usage().bookkeepingBytes;
  }

  /** Resolves when every earlier write of this repository is durable. */
  async flush(): Promise<void> {
    await this.#writes.commitPendingSliced();
    await this.#writes.settled();
    await this.#writer.flush();
  }

  /**
   * Flushes and closes the log. Writes made while the flush runs are flushed too: the
   * repository is marked closed only once nothing is pending.
   */
  async close(reason: CloseReason = "explicit"): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    // A compacted log is replaced whole: no checkpoint for it.
    if (reason !== "compacted") this.#maybeCheckpoint();
    do {
      await this.flush();
    } while (this.#writes.pending);
    this.#closed = true;
    this.closeReason = reason;
    await this.#writer.close();
  }

  /** Appends a checkpoint when it would spare the next open from decoding many commits. */
  #maybeCheckpoint(): void {
    const writer = this.#writer;
    if (
      writer.sinceCheckpoint < CHECKPOINT_MIN_RECORDS || !writer.offsetsKnown
    ) return;
    const named = planCheckpoint(
      this.items.entries(),
      (e) => this.graphs.graphOf(e),
      this.#lazyAtOpen,
    );
    if (!named) return;
    writer.appendRecord(RecordKind.Checkpoint, encodeCheckpointRecord(named));
    writer.sinceCheckpoint = 0;
  }
}

/**
 * The open repository behind a {@link Repository} that a database handed out. Throws a
 * TypeError for any other object.
 */
export function openRepositoryOf(repo: Repository): OpenRepository {
  if (repo instanceof OpenRepository) return repo;
  throw new TypeError(
    `Expected a repository opened by a Capra database, got ${
      repo === null || typeof repo !== "object"
        ? String(repo)
        : (repo as object).constructor?.name ?? "an object"
    }`,
  );
}
