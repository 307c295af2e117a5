/**
 * A repository `/type/repo`: the unit of loading, sync and access control. It indexes
 * its log on open without decoding history (only item keys are read), resolves an item's
 * commit graph on first access, groups local writes into one commit per item per tick,
 * signs them in batches, and ingests verified commits from peers.
 *
 * History is loaded lazily. When a repository closes after long item histories grew, it
 * appends a checkpoint record naming, per item, the records reads need (heads and the
 * snapshots they are deltas of). The next open decodes only those; the item's other
 * records before the checkpoint are kept as byte offsets (typed arrays), the needed
 * records are copied into one compact buffer and the log's bytes are released. Older
 * commits are read from storage when something needs them: `history()`, a merge of
 * several heads, a later commit whose parent is old, sync and ingest (the commit index),
 * compaction.
 *
 * @module
 */

import {
  buildCommit,
  type Commit,
  type CommitId,
  commitIdBytes,
  compareCommitOrder,
  decodeCommit,
  decodeStoredBody,
  type FullBody,
  peekItemKey,
} from "../commit/commit.ts";
import { MsgpackReader } from "../encoding/msgpack.ts";
import { chooseBody } from "../commit/delta.ts";
import { encodeFieldValue } from "../schema/field_types.ts";
import { type ItemData, type Schema, schemaIdOf } from "../schema/schema.ts";
import type { ItemState } from "../merge/merge.ts";
import { type ItemPath, joinItemPath, type RepoPath } from "../path.ts";
import type { RepoLog } from "../storage/storage.ts";
import { encodeFrame } from "../storage/frames.ts";
import {
  type CommitNode,
  fullBaseOf,
  ItemGraph,
  typedState,
} from "./item_graph.ts";
import { decodeSessionRecord, encodeSessionRecord } from "./session.ts";
import type { RepoContext } from "./context.ts";
import {
  CHECKPOINT_ID_PREFIX,
  decodeCheckpointRecord,
  decodeHorizonRecord,
  encodeCheckpointRecord,
  encodeHorizonRecord,
  RecordKind,
} from "./records.ts";
import {
  type IngestOptions,
  ingestRecords,
  type IngestResult,
  type WriteCheck,
} from "./ingest.ts";
import type { Packable } from "../encoding/msgpack.ts";
import { IdSet } from "../idset/id_set.ts";

/** What changed in a repository. */
export interface ItemChange {
  readonly path: ItemPath;
  readonly key: string;
  /** true for local writes, false for commits from peers */
  readonly local: boolean;
}

/** Called after items change. */
export type ChangeListener = (change: ItemChange) => void;

/** Summary of one commit of an item's history. */
export interface CommitInfo {
  readonly id: CommitId;
  readonly parents: readonly CommitId[];
  readonly session: string;
  /** Hybrid logical timestamp */
  readonly ts: number;
  readonly time: Date;
  readonly schema: string;
  readonly kind: "full" | "delta";
  /** The full snapshot a delta is relative to. */
  readonly base?: CommitId;
  readonly deleted: boolean;
  readonly signed: boolean;
  readonly head: boolean;
}

/**
 * A checkpoint is written on close once this many commit records were stored since the
 * last one, and only if it leaves at least this many more records undecoded at next open.
 */
export const CHECKPOINT_MIN_RECORDS = 1024;
/** Items with fewer records are not decoded on close just to write a checkpoint. */
const CHECKPOINT_MIN_HISTORY = 4;

/** Memory-use counters of a repository (see {@link Repository.stats}). */
export interface RepositoryStats {
  readonly items: number;
  /** Commits decoded and held in memory (in item graphs). */
  readonly decodedCommits: number;
  /** Stored commits known only by their offsets (history not loaded). */
  readonly lazyCommits: number;
  /** Log bytes held in memory (the whole log, or only the records reads need). */
  readonly logBytesInMemory: number;
  /** Records read back from storage on demand since open. */
  readonly storageReads: number;
}

/** @internal The part of an item's history a checkpoint left undecoded. */
export interface LazyHistory {
  /** [start, end) pairs of the records reads do not need, decoded on demand. */
  readonly records: Uint32Array | Float64Array;
  /** Id prefixes the checkpoint gave for the records it named (until decoded). */
  named: Map<number, string> | null;
  /** Memo of delta counting: a snapshot id and how many of `records` are deltas on it. */
  base: CommitId | null;
  deltas: number;
}

/** @internal Per-item bookkeeping. */
export class ItemEntry {
  /** First undecoded record payload [start, end) in the open-time log (-1: none). */
  start = -1;
  end = -1;
  /** Further undecoded [start, end) pairs. */
  more: number[] | null = null;
  /** History not loaded (null: none, or loaded). */
  hist: LazyHistory | null = null;
  graph: ItemGraph | null = null;
  /** Current value; null when it must be recomputed from the graph. */
  value: ItemState | undefined | null = null;
  dirty = false;
  listeners: Set<ChangeListener> | null = null;
  handle: unknown = null;
  #path: ItemPath | null = null;
  constructor(readonly key: string, readonly repo: RepoPath) {}
  /** `/type/repo/item`, built on first use (most entries never need it). */
  get path(): ItemPath {
    return this.#path ??= `${this.repo}/${this.key}` as ItemPath;
  }
}

/** A repository of items. */
export class Repository {
  readonly #entries = new Map<string, ItemEntry>();
  readonly #listeners = new Set<ChangeListener>();
  readonly #dirty = new Set<ItemEntry>();
  #commitScheduled = false;
  #signing: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  /** Sessions whose record this log holds (so the log verifies on its own). */
  readonly #recordedSessions = new Set<string>();
  #index: Map<CommitId, ItemEntry> | null = null;
  #idSet: IdSet | null = null;
  #closed = false;
  #signingInFlight = 0;
  /** Commits removed by garbage collection that kept commits name as parents. */
  readonly #pruned = new Set<CommitId>();
  /** Commits collected in place: still in the log, no longer offered to peers. */
  readonly #collected = new Set<CommitId>();
  /** Commits older than this timestamp were garbage-collected and are refused. */
  horizon = 0;
  #itemListeners = 0;
  /** Why the repository was closed: explicitly, or automatically (idle, memory budget). */
  closeReason: "explicit" | "idle" | "budget" | "compacted" | null = null;
  /** @internal Set by every access; cleared by the database's idle sweep. */
  touched = true;
  /** The open-time log bytes, while held (null: released; see #hot). */
  #data: Uint8Array | null = null;
  /** Copies of the records reads need, once `#data` was released. */
  #hot: Uint8Array | null = null;
  /** Sorted log offsets of the records in `#hot`, and their positions in it. */
  #hotStarts: Float64Array | null = null;
  #hotPos: Float64Array | null = null;
  /** Set by `#at`: buffer index = log offset - #shift. */
  #shift = 0;
  /** Payload offset of the last checkpoint record (-1: none). */
  #checkpointAt = -1;
  /** Commit records stored after the last checkpoint. */
  #sinceCheckpoint = 0;
  /** Records the last checkpoint left undecoded at open. */
  #lazyAtOpen = 0;
  /** Log offset where the next appended frame starts (-1: unknown, no checkpoints). */
  #appendAt = 0;
  /** Size of the log at open. */
  #openSize = 0;
  #storageReads = 0;
  /** @internal Use order for the memory budget (larger = more recent). */
  lastUsed = 0;

  /** @internal use Database.open() */
  constructor(
    readonly ctx: RepoContext,
    readonly path: RepoPath,
    readonly log: RepoLog,
  ) {
    const data = log.data, frames = log.frames;
    let checkpoint: Uint8Array | null = null;
    for (let i = 0; i < frames.length; i += 2) {
      const start = frames[i], end = frames[i + 1];
      const kind = data[start];
      if (kind === RecordKind.Commit && end - start > 65) {
        const key = peekItemKey(data, start + 65, end);
        if (key === undefined) continue; // checksummed but undecodable: `verify` reports it
        this.#sinceCheckpoint++;
        const e = this.#entries.get(key);
        if (!e) {
          const created = new ItemEntry(key, path);
          created.start = start;
          created.end = end;
          this.#entries.set(key, created);
        } else (e.more ??= []).push(start, end);
      } else if (kind === RecordKind.Checkpoint) {
        this.#checkpointAt = start;
        checkpoint = data.subarray(start + 1, end);
        this.#sinceCheckpoint = 0;
      } else if (kind === RecordKind.Horizon) {
        try {
          const h = decodeHorizonRecord(data.subarray(start + 1, end));
          this.horizon = Math.max(this.horizon, h.ts);
          const into = h.inPlace ? this.#collected : this.#pruned;
          for (const id of h.pruned) into.add(id);
        } catch { /* reported by `verify` */ }
      } else if (kind === RecordKind.Session) {
        try {
          const s = decodeSessionRecord(data.subarray(start + 1, end));
          ctx.knownSessions.set(s.id, s);
          this.#recordedSessions.add(s.id);
        } catch { /* reported by `verify` */ }
      }
    }
    this.#appendAt = this.#openSize = frames.length
      ? frames[frames.length - 1]
      : 0;
    this.#data = data;
    if (checkpoint) this.#applyCheckpoint(checkpoint);
    if (this.#lazyAtOpen > 0) this.#keepOnlyNeededBytes();
  }

  /**
   * Splits the records of long histories per the last checkpoint: those it names stay
   * to be decoded, the item's other records before it become lazy history.
   */
  #applyCheckpoint(body: Uint8Array): void {
    let named: Map<number, string>;
    try {
      named = decodeCheckpointRecord(body).named;
    } catch {
      this.#checkpointAt = -1; // unreadable: decode everything
      return;
    }
    const at = this.#checkpointAt;
    for (const e of this.#entries.values()) {
      if (e.more === null || e.start > at) continue;
      const all = [e.start, e.end, ...e.more];
      let covered = 0;
      for (let i = 0; i < all.length; i += 2) if (all[i] < at) covered++;
      if (covered < 2) continue;
      const keep: number[] = [], lazy: number[] = [];
      let mine: Map<number, string> | null = null;
      for (let i = 0; i < all.length; i += 2) {
        const start = all[i];
        const prefix = start < at ? named.get(start) : undefined;
        if (start < at && prefix === undefined) lazy.push(start, all[i + 1]);
        else {
          keep.push(start, all[i + 1]);
          if (prefix !== undefined) (mine ??= new Map()).set(start, prefix);
        }
      }
      if (mine === null) continue; // nothing named for this item: decode it whole
      e.start = keep[0];
      e.end = keep[1];
      e.more = keep.length > 2 ? keep.slice(2) : null;
      e.hist = {
        records: offsetArray(lazy),
        named: mine,
        base: null,
        deltas: 0,
      };
      this.#lazyAtOpen += lazy.length / 2;
    }
  }

  /**
   * When reads need only a small part of the log, copies that part into one buffer and
   * releases the log's bytes; the rest is read from storage on demand.
   */
  #keepOnlyNeededBytes(): void {
    const log = this.log, data = this.#data!;
    if (!log.read || !log.releaseData) return;
    const pairs: number[] = [];
    let bytes = 0;
    for (const e of this.#entries.values()) {
      if (e.start < 0) continue;
      pairs.push(e.start, e.end);
      bytes += e.end - e.start;
      const more = e.more;
      if (more) {
        for (let i = 0; i < more.length; i += 2) {
          pairs.push(more[i], more[i + 1]);
          bytes += more[i + 1] - more[i];
        }
      }
    }
    if (bytes * 2 > data.length) return;
    const n = pairs.length / 2;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      pairs[2 * a] - pairs[2 * b]
    );
    const hot = new Uint8Array(bytes);
    const starts = new Float64Array(n), pos = new Float64Array(n);
    let o = 0;
    for (let k = 0; k < n; k++) {
      const i = order[k], start = pairs[2 * i], end = pairs[2 * i + 1];
      hot.set(data.subarray(start, end), o);
      starts[k] = start;
      pos[k] = o;
      o += end - start;
    }
    this.#hot = hot;
    this.#hotStarts = starts;
    this.#hotPos = pos;
    this.#data = null;
    log.releaseData();
  }

  /**
   * A buffer holding the log bytes `[start, end)` of one record: the log itself, the
   * compact copy, or a read from storage. Sets `#shift` (buffer index = offset - shift).
   */
  #at(start: number, end: number): Uint8Array {
    if (this.#data) {
      this.#shift = 0;
      return this.#data;
    }
    const starts = this.#hotStarts;
    if (starts) {
      let lo = 0, hi = starts.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1, v = starts[mid];
        if (v === start) {
          this.#shift = start - this.#hotPos![mid];
          return this.#hot!;
        }
        if (v < start) lo = mid + 1;
        else hi = mid - 1;
      }
    }
    this.#storageReads++;
    this.#shift = start;
    return this.log.read!(start, end);
  }

  /** Decodes the commit record stored at `[start, end)` (undefined when undecodable). */
  #decodeRecord(start: number, end: number): CommitNode | undefined {
    const buf = this.#at(start, end), o = start - this.#shift;
    let commit: Commit;
    try {
      commit = decodeCommit(buf.subarray(o + 65, o + end - start));
    } catch {
      return undefined; // reported by `verify`
    }
    return { commit, sig: buf.subarray(o + 1, o + 65), at: start };
  }

  /** Memory-use counters (tests and tools check that history stays on disk). */
  stats(): RepositoryStats {
    let decoded = 0, lazy = 0;
    for (const e of this.#entries.values()) {
      if (e.graph) decoded += e.graph.nodes.size;
      if (e.hist) lazy += e.hist.records.length / 2;
    }
    return {
      items: this.#entries.size,
      decodedCommits: decoded,
      lazyCommits: lazy,
      logBytesInMemory: (this.#data?.length ?? 0) + (this.#hot?.length ?? 0),
      storageReads: this.#storageReads,
    };
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal */
  checkOpen(): void {
    this.touched = true;
    if (this.#closed) {
      throw new Error(
        `Repository ${this.path} is closed: open it again with db.open()`,
      );
    }
    this.ctx.checkOpen();
  }

  /** @internal The entry of an item key, or undefined. */
  entry(key: string): ItemEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * @internal Builds (once) and returns the commit graph of an entry. With lazy history
   * the graph holds what reads need (heads and their snapshots, later commits); use
   * {@link Repository.fullGraphOf} for every commit.
   */
  graphOf(e: ItemEntry): ItemGraph {
    if (e.graph) return e.graph;
    const g = new ItemGraph(this.ctx.registry, this.#pruned);
    const loaded: CommitNode[] = [];
    const later: CommitNode[] = [];
    const named = e.hist?.named;
    let trusted = true;
    const locs = e.start < 0 ? [] : [e.start, e.end, ...(e.more ?? [])];
    for (let i = 0; i < locs.length; i += 2) {
      const prefix = named?.get(locs[i]);
      const node = this.#decodeRecord(locs[i], locs[i + 1]);
      if (!node) {
        if (prefix !== undefined) trusted = false;
        continue;
      }
      if (prefix !== undefined && node.commit.id.startsWith(prefix)) {
        loaded.push(node);
      } else {
        if (prefix !== undefined) trusted = false;
        later.push(node);
      }
    }
    e.start = e.end = -1;
    e.more = null;
    if (e.hist) e.hist.named = null;
    if (!trusted) {
      // The checkpoint does not match the log (damage): load the history whole.
      for (const n of [...loaded, ...later]) g.add(n);
      e.graph = g;
      return this.fullGraphOf(e);
    }
    // Records the checkpoint named were complete: their ancestors are lazy history.
    if (loaded.length) g.addLoaded(loaded);
    for (const n of later) g.add(n);
    e.graph = g;
    // A later commit whose parents are not loaded (an old ancestor, say): load it all.
    if (e.hist && g.waitingCount > 0) return this.fullGraphOf(e);
    return g;
  }

  /** @internal The commit graph of an entry with its whole history loaded. */
  fullGraphOf(e: ItemEntry): ItemGraph {
    const partial = e.graph ?? this.graphOf(e);
    if (!e.hist) return partial;
    const lazy = e.hist.records;
    e.hist = null;
    const g = new ItemGraph(this.ctx.registry, this.#pruned);
    for (let i = 0; i < lazy.length; i += 2) {
      const node = this.#decodeRecord(lazy[i], lazy[i + 1]);
      if (node) g.add(node);
    }
    for (const n of partial.nodes.values()) g.add(n);
    e.graph = g;
    if (this.#index) {
      for (const id of g.nodes.keys()) {
        this.#index.set(id, e);
      }
    }
    return g;
  }

  /** @internal The current value of an entry (undefined when it has no commits). */
  valueOf(e: ItemEntry): ItemState | undefined {
    if (e.value !== null) return e.value;
    if (
      e.graph === null && e.start >= 0 && e.more === null && e.hist === null
    ) {
      // One stored commit: its state is the value; no graph or id needed yet.
      try {
        const buf = this.#at(e.start, e.end), o = e.start - this.#shift;
        const { schema, body } = decodeStoredBody(
          buf,
          o + 65,
          o + e.end - e.start,
        );
        if (body.kind === "full") {
          return e.value = typedState(this.ctx.registry, schema, body);
        }
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
      }
    }
    let g = this.graphOf(e);
    // Several heads merge over their common ancestor, which may be old history.
    if (g.heads.length > 1 && e.hist) g = this.fullGraphOf(e);
    return e.value = g.value();
  }

  #isLive(e: ItemEntry): boolean {
    // Fast path: an unresolved single-commit item stores its deleted flag as the last byte.
    if (
      e.value === null && e.graph === null && e.more === null &&
      e.start >= 0 && e.hist === null
    ) {
      const buf = this.#at(e.start, e.end);
      return buf[e.end - 1 - this.#shift] === 0xc2;
    }
    const v = this.valueOf(e);
    return v !== undefined && !v.deleted;
  }

  /** Keys of the items in this repository (deleted items only when asked). */
  keys(options: { includeDeleted?: boolean } = {}): string[] {
    this.checkOpen();
    const out: string[] = [];
    for (const e of this.#entries.values()) {
      if (
        options.includeDeleted ? this.valueOf(e) !== undefined : this.#isLive(e)
      ) {
        out.push(e.key);
      }
    }
    return out;
  }

  /** Number of items that are not deleted. */
  count(): number {
    this.checkOpen();
    let n = 0;
    for (const e of this.#entries.values()) if (this.#isLive(e)) n++;
    return n;
  }

  /** @internal Every entry in insertion order; entries added while iterating are visited. */
  entries(): Iterable<ItemEntry> {
    return this.#entries.values();
  }

  /** Number of repository-wide change listeners (lets tests check that none leak). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * True while something depends on the repository staying in memory: change listeners
   * (live queries, item listeners) or writes not yet committed. Pinned repositories are
   * never closed automatically.
   */
  get pinned(): boolean {
    return this.#listeners.size > 0 || this.#itemListeners > 0 ||
      this.#dirty.size > 0 || this.#signingInFlight > 0;
  }

  /** @internal Item listener bookkeeping (pins the repository). */
  itemListenerAdded(delta: 1 | -1): void {
    this.#itemListeners += delta;
  }

  /**
   * Rough bytes of memory held: the log bytes read at open plus per-item and per-commit
   * bookkeeping. Used by the database's memory budget.
   */
  estimatedBytes(): number {
    let n = (this.#data?.length ?? 0) + (this.#hot?.length ?? 0) +
      this.#entries.size * 160;
    for (const e of this.#entries.values()) {
      if (e.graph) n += e.graph.nodes.size * 400;
      if (e.hist) n += e.hist.records.byteLength;
    }
    return n;
  }

  /** Listens to every item change; returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    // After a compaction the listener lives on in the successor repository.
    return () => void this.current.#listeners.delete(listener);
  }

  #successor: Repository | null = null;

  /** @internal The repository that replaced this one (after compaction), or itself. */
  get current(): Repository {
    return this.#successor ? this.#successor.current : this;
  }

  /**
   * @internal Takes over the listeners of the repository this one replaces (garbage
   * collection rewrote the log), so live queries and item listeners keep working.
   */
  adopt(old: Repository): void {
    old.#successor = this;
    for (const l of old.#listeners) this.#listeners.add(l);
    old.#listeners.clear();
    for (const e of old.#entries.values()) {
      if (!e.listeners) continue;
      const mine = this.#entries.get(e.key) ?? this.ensureEntry(e.key);
      mine.listeners ??= new Set();
      for (const l of e.listeners) mine.listeners.add(l);
      e.listeners = null;
    }
    this.#itemListeners += old.#itemListeners;
    old.#itemListeners = 0;
  }

  /** @internal */
  emit(e: ItemEntry, local: boolean): void {
    const change: ItemChange = { path: e.path, key: e.key, local };
    for (const l of [...(e.listeners ?? [])]) this.ctx.safeCall(l, change);
    for (const l of [...this.#listeners]) this.ctx.safeCall(l, change);
  }

  /** @internal Creates or returns the entry for a key. */
  ensureEntry(key: string): ItemEntry {
    let e = this.#entries.get(key);
    if (!e) {
      joinItemPath(this.path, key); // validates the key
      e = new ItemEntry(key, this.path);
      e.graph = new ItemGraph(this.ctx.registry, this.#pruned);
      this.#entries.set(key, e);
    }
    return e;
  }

  /** @internal Records a local change to an entry; the commit follows this tick. */
  writeLocal(e: ItemEntry, state: ItemState): void {
    this.checkOpen();
    e.value = state;
    e.dirty = true;
    this.#dirty.add(e);
    if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      queueMicrotask(() => this.commitPending());
    }
    this.emit(e, true);
  }

  /** @internal Turns pending local changes into commits (one per item). */
  commitPending(): void {
    this.#commitScheduled = false;
    if (this.#dirty.size === 0) return;
    const built: CommitNode[] = [];
    for (const e of this.#dirty) {
      e.dirty = false;
      built.push(this.#buildLocalCommit(e));
    }
    this.#dirty.clear();
    this.#signingInFlight++;
    this.#signing = this.#signing.then(() => this.#signAndAppend(built)).catch(
      (err) => {
        this.#failure = err instanceof Error ? err : new Error(String(err));
      },
    ).finally(() => this.#signingInFlight--);
  }

  /** A timestamp after every head of the item (the clock may be behind stored history). */
  #nextTimestamp(g: ItemGraph): number {
    for (const h of g.heads) this.ctx.clock.advance(h.commit.ts);
    return this.ctx.clock.now();
  }

  #buildLocalCommit(e: ItemEntry): CommitNode {
    const g = this.graphOf(e);
    const state = e.value!;
    const schema = state.schema;
    const data: Record<string, Packable> = {};
    for (const [name, value] of Object.entries(state.data)) {
      const def = schema.fields[name];
      if (def) data[name] = encodeFieldValue(def.type, value);
    }
    const full: FullBody = { kind: "full", data, deleted: state.deleted };
    let base: CommitNode | undefined;
    for (const h of g.heads) {
      const b = g.nodes.get(fullBaseOf(h.commit));
      if (b && (!base || compareCommitOrder(b.commit, base.commit) > 0)) {
        base = b;
      }
    }
    const body = chooseBody(
      schema,
      full,
      base && base.commit.body.kind === "full"
        ? {
          id: base.commit.id,
          body: base.commit.body,
          schema: base.commit.schema,
        }
        : undefined,
      base ? this.#deltasOn(e, g, base) : 0,
    );
    const commit = buildCommit({
      key: e.path,
      parents: g.heads.map((h) => h.commit.id),
      session: this.ctx.signer.sessionId,
      ts: this.#nextTimestamp(g),
      schema: schemaIdOf(schema),
      body,
    });
    const node: CommitNode = { commit, sig: null, full, state };
    g.add(node);
    this.#index?.set(commit.id, e);
    return node;
  }

  /**
   * How many deltas use `base` as their snapshot: those in the graph plus those in lazy
   * history, which are stored after the snapshot (only those records are peeked).
   */
  #deltasOn(e: ItemEntry, g: ItemGraph, base: CommitNode): number {
    const id = base.commit.id;
    const hist = e.hist;
    if (!hist) return g.deltasOn(id);
    const lazy = hist.records;
    if (hist.base !== id) {
      const want = commitIdBytes(id);
      const from = base.at ?? -1;
      let n = 0;
      for (let i = 0; i < lazy.length; i += 2) {
        const start = lazy[i], end = lazy[i + 1];
        if (start <= from) continue;
        const buf = this.#at(start, end), o = start - this.#shift;
        if (deltaBaseIs(buf, o + 65, o + end - start, want)) n++;
      }
      hist.base = id;
      hist.deltas = n;
    }
    return g.deltasOn(id) + hist.deltas;
  }

  /** Appends one frame; returns the log offset of its payload (-1: unknown). */
  #append(frame: Uint8Array, payloadLength: number): number {
    this.log.append(frame);
    if (this.#appendAt < 0) return -1;
    const at = this.#appendAt + frame.length - payloadLength;
    this.#appendAt += frame.length;
    return at;
  }

  /** Appends a signed commit's record. */
  #appendCommit(n: CommitNode, record?: Uint8Array): void {
    const payload = record ?? commitPayload(n);
    const at = this.#append(encodeFrame(payload), payload.length);
    if (at >= 0) n.at = at;
    this.#sinceCheckpoint++;
  }

  /** Commit records of an entry (decoded or not). */
  #recordCount(e: ItemEntry): number {
    const lazy = e.hist ? e.hist.records.length / 2 : 0;
    if (e.graph) return e.graph.nodes.size + lazy;
    return (e.start >= 0 ? 1 : 0) + (e.more ? e.more.length / 2 : 0) + lazy;
  }

  async #signAndAppend(nodes: CommitNode[]): Promise<void> {
    const CHUNK = 2048;
    if (!this.#recordedSessions.has(this.ctx.ownSession.id)) {
      this.#appendRecord(
        RecordKind.Session,
        encodeSessionRecord(this.ctx.ownSession),
      );
      this.#recordedSessions.add(this.ctx.ownSession.id);
    }
    for (let i = 0; i < nodes.length; i += CHUNK) {
      const chunk = nodes.slice(i, i + CHUNK);
      const sigs = await Promise.all(
        chunk.map((n) => this.ctx.signer.sign(commitIdBytes(n.commit.id))),
      );
      for (let j = 0; j < chunk.length; j++) {
        const n = chunk[j];
        n.sig = sigs[j];
        this.#appendCommit(n);
        this.#idSet?.add(commitIdBytes(n.commit.id));
      }
      this.ctx.onCommitsStored(this, chunk);
    }
  }

  /** @internal Appends one record to the log. */
  appendRecord(kind: RecordKind, body: Uint8Array): void {
    this.#appendRecord(kind, body);
  }

  #appendRecord(kind: RecordKind, body: Uint8Array): void {
    const payload = new Uint8Array(body.length + 1);
    payload[0] = kind;
    payload.set(body, 1);
    this.#append(encodeFrame(payload), payload.length);
  }

  /** @internal Index of every commit id (built on first use; sync and ingest need it). */
  commitIndex(): Map<CommitId, ItemEntry> {
    if (this.#index) return this.#index;
    const index = new Map<CommitId, ItemEntry>();
    this.#loadAllHistory();
    for (const e of this.#entries.values()) {
      for (const id of this.fullGraphOf(e).nodes.keys()) index.set(id, e);
    }
    return this.#index = index;
  }

  /** @internal A commit of this repository by id (decoded on demand). */
  commitOf(id: CommitId): Commit | undefined {
    const e = this.commitIndex().get(id);
    return e && this.graphOf(e).nodes.get(id)?.commit;
  }

  /** @internal The stored record payload (`[kind][sig][commit]`) of a signed commit. */
  commitRecord(id: CommitId): Uint8Array | undefined {
    const e = this.commitIndex().get(id);
    const n = e?.graph?.nodes.get(id);
    return n?.sig ? commitPayload(n) : undefined;
  }

  /** @internal The set of signed commit ids, for reconciliation (built on first use). */
  syncSet(): IdSet {
    if (this.#idSet) return this.#idSet;
    const set = new IdSet();
    for (const id of this.commitIds()) set.add(commitIdBytes(id));
    return this.#idSet = set;
  }

  /**
   * Commit ids of every signed commit in this repository (those collected in place by
   * {@link Repository.collectInPlace} excepted: they are no longer offered to peers).
   */
  commitIds(): CommitId[] {
    this.checkOpen();
    const out: CommitId[] = [];
    const collected = this.#collected;
    for (const [id, e] of this.commitIndex()) {
      if (e.graph!.nodes.get(id)?.sig && !collected.has(id)) out.push(id);
    }
    return out;
  }

  /**
   * @internal Garbage collection for storages that cannot rewrite their log (IndexedDB):
   * `dropped` stay on disk and in memory (values do not change) but count as collected
   * from now on: they are left out of the commit ids offered to peers, so this replica
   * reconciles with peers that collected them. Persisted as a horizon record.
   */
  collectInPlace(cutoff: number, dropped: readonly CommitId[]): void {
    this.checkOpen();
    if (!dropped.length) return;
    for (const id of dropped) this.#collected.add(id);
    this.horizon = Math.max(this.horizon, cutoff);
    this.#idSet = null;
    this.#appendRecord(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: this.horizon, pruned: dropped, inPlace: true }),
    );
  }

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
   * @internal Adds verified remote commits to their items; `persist` false when they are
   * already in the storage (written by another tab).
   */
  addRemote(
    nodes: {
      node: CommitNode;
      key: string;
      /** The binary id, when the caller has it. */
      idBytes?: Uint8Array;
      /** The record's stored form (`[kind][sig][commit]`), when the caller has it. */
      record?: Uint8Array;
    }[],
    persist = true,
  ): {
    accepted: CommitId[];
    rejected: { id: CommitId; reason: string }[];
  } {
    this.commitPending();
    const index = this.commitIndex();
    const touched = new Set<ItemEntry>();
    const accepted: CommitId[] = [];
    const rejected: { id: CommitId; reason: string }[] = [];
    for (const { node, key, idBytes, record } of nodes) {
      const c = node.commit;
      if (index.has(c.id)) continue;
      const e = this.ensureEntry(key);
      const g = this.fullGraphOf(e);
      const result = g.add(node);
      for (const r of result.rejected) {
        rejected.push({ id: r.node.commit.id, reason: r.reason });
        index.delete(r.node.commit.id);
      }
      if (!g.has(c.id)) continue;
      index.set(c.id, e);
      if (!persist) {
        // Whoever stored the commit stored its session record before it.
        this.#recordedSessions.add(c.session);
      } else if (!this.#recordedSessions.has(c.session)) {
        const session = this.ctx.trust.lookup(c.session, this.ctx.now()) ??
          this.ctx.knownSessions.get(c.session);
        if (session) {
          this.#appendRecord(RecordKind.Session, encodeSessionRecord(session));
          this.#recordedSessions.add(c.session);
        }
      }
      if (persist) this.#appendCommit(node, record);
      // Another writer appends to this log: offsets of later records are unknown.
      else this.#appendAt = -1;
      this.#idSet?.add(idBytes ?? commitIdBytes(c.id));
      accepted.push(c.id);
      if (result.completed.length) {
        e.value = null;
        touched.add(e);
      }
    }
    for (const e of touched) this.emit(e, false);
    return { accepted, rejected };
  }

  /** History of an item, oldest first. */
  history(key: string): CommitInfo[] {
    this.checkOpen();
    const e = this.#entries.get(key);
    if (!e) return [];
    const g = this.fullGraphOf(e);
    const heads = new Set(g.heads);
    return [...g.nodes.values()]
      .sort((a, b) => compareCommitOrder(a.commit, b.commit))
      .map((n) => {
        const c = n.commit;
        return {
          id: c.id,
          parents: c.parents,
          session: c.session,
          ts: c.ts,
          time: new Date(Math.floor(c.ts / 1024)),
          schema: c.schema,
          kind: c.body.kind,
          ...(c.body.kind === "delta" ? { base: c.body.base } : {}),
          deleted: c.body.deleted,
          signed: n.sig !== null,
          head: heads.has(n),
        };
      });
  }

  /** Resolves when every earlier write of this repository is durable. */
  async flush(): Promise<void> {
    this.commitPending();
    await this.#signing;
    if (this.#failure) throw this.#failure;
    await this.log.flush();
  }

  /**
   * @internal Flushes and closes the log. Writes made while the flush runs are flushed
   * too: the repository is marked closed only once nothing is pending.
   */
  async close(
    reason: "explicit" | "idle" | "budget" | "compacted" = "explicit",
  ): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    // A compacted log is replaced whole: no checkpoint for it.
    if (reason !== "compacted") this.#maybeCheckpoint();
    do {
      await this.flush();
    } while (this.#dirty.size > 0 || this.#signingInFlight > 0);
    this.#closed = true;
    this.closeReason = reason;
    await this.log.close();
  }

  /**
   * Appends a checkpoint when it would spare the next open from decoding many commits:
   * per item with history, the offsets (and id prefixes) of its heads and of the
   * snapshots they are deltas of. Items with short histories that were never read are
   * not decoded for it (they are decoded whole at next open).
   */
  #maybeCheckpoint(): void {
    if (
      this.#sinceCheckpoint < CHECKPOINT_MIN_RECORDS || this.#appendAt < 0
    ) return;
    const named = new Map<number, string>();
    let lazy = 0;
    for (const e of this.#entries.values()) {
      const records = this.#recordCount(e);
      if (records < 2) continue;
      if (
        e.graph === null && e.hist === null &&
        records < CHECKPOINT_MIN_HISTORY
      ) continue;
      const g = this.graphOf(e);
      if (g.waitingCount > 0) continue; // decoded whole at next open
      const need = new Map<number, string>();
      let known = true;
      for (const h of g.heads) {
        for (const n of [h, g.nodes.get(fullBaseOf(h.commit))]) {
          if (!n) continue;
          if (n.at === undefined) known = false;
          else need.set(n.at, n.commit.id.slice(0, CHECKPOINT_ID_PREFIX));
        }
      }
      if (!known || need.size === 0) continue;
      for (const [at, prefix] of need) named.set(at, prefix);
      lazy += this.#recordCount(e) - need.size;
    }
    if (lazy - this.#lazyAtOpen < CHECKPOINT_MIN_RECORDS) return;
    this.#appendRecord(RecordKind.Checkpoint, encodeCheckpointRecord(named));
    this.#sinceCheckpoint = 0;
  }

  /**
   * @internal Takes a peer's word that `ids` were garbage-collected there, for commits
   * about to be ingested that name them as parents (a peer that compacted its history
   * sends its kept commits with their pruned parents). Only ids this repository does not
   * hold are taken; they are persisted in a horizon record so a reopen knows them too,
   * and commits naming them are then complete. Returns how many were new.
   */
  admitPruned(ids: Iterable<CommitId>): number {
    this.checkOpen();
    const index = this.commitIndex();
    const fresh: CommitId[] = [];
    for (const id of ids) {
      if (!this.#pruned.has(id) && !index.has(id)) fresh.push(id);
    }
    if (!fresh.length) return 0;
    for (const id of fresh) this.#pruned.add(id);
    this.#appendRecord(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: this.horizon, pruned: fresh }),
    );
    return fresh.length;
  }

  /** @internal Ids pruned by garbage collection (frontier parents of kept commits). */
  get pruned(): ReadonlySet<CommitId> {
    return this.#pruned;
  }

  /** @internal Ids collected in place (still stored, no longer offered to peers). */
  get collected(): ReadonlySet<CommitId> {
    return this.#collected;
  }

  /** @internal Every item entry, resolved (compaction reads all graphs). */
  allGraphs(): ItemGraph[] {
    this.#loadAllHistory();
    return [...this.#entries.values()].map((e) => this.fullGraphOf(e));
  }

  /**
   * Loads every item's whole history, reading the log back from storage in one read
   * (not one read per record) when its bytes were released.
   */
  #loadAllHistory(): void {
    let lazy = false;
    for (const e of this.#entries.values()) if (e.hist) lazy = true;
    if (!lazy) return;
    const held = this.#data;
    if (!held) {
      this.#storageReads++;
      this.#data = this.log.read!(0, this.#openSize);
    }
    try {
      for (const e of this.#entries.values()) this.fullGraphOf(e);
    } finally {
      this.#data = held;
    }
  }

  /** @internal Resolves every item (tests, tools). */
  get size(): number {
    return this.#entries.size;
  }

  /** @internal Typed data of a new item, for local creation. */
  static stateFor(schema: Schema, data: ItemData): ItemState {
    return { schema, data, deleted: false };
  }
}

/** The stored payload of a signed commit node. */
export function commitPayload(n: CommitNode): Uint8Array {
  const bytes = n.commit.bytes;
  const out = new Uint8Array(65 + bytes.length);
  out[0] = RecordKind.Commit;
  out.set(n.sig!, 1);
  out.set(bytes, 65);
  return out;
}

/** Offsets as compact typed arrays (4 bytes each while the log is below 4 GiB). */
function offsetArray(offsets: number[]): Uint32Array | Float64Array {
  let max = 0;
  for (const x of offsets) if (x > max) max = x;
  return max < 2 ** 32 ? Uint32Array.from(offsets) : Float64Array.from(offsets);
}

/** True when the commit bytes `[start, end)` are a delta on the snapshot `base`. */
function deltaBaseIs(
  bytes: Uint8Array,
  start: number,
  end: number,
  base: Uint8Array,
): boolean {
  try {
    const r = new MsgpackReader(bytes, start, end);
    if (r.readArrayHeader() !== 7) return false;
    for (let i = 0; i < 6; i++) r.skipValue();
    if (r.readArrayHeader() !== 5 || r.readNumber() !== 1) return false;
    const b = r.readBinary();
    if (b.length !== base.length) return false;
    for (let i = 0; i < b.length; i++) if (b[i] !== base[i]) return false;
    return true;
  } catch {
    return false;
  }
}
