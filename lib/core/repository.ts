/**
 * A repository `/type/repo`: the unit of loading, sync and access control. It indexes
 * its log on open without decoding history (only item keys are read), resolves an item's
 * commit graph on first access, groups local writes into one commit per item per tick,
 * signs them in batches, and ingests verified commits from peers.
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
import { decodeHorizonRecord, RecordKind } from "./records.ts";
import { ingestRecords, type IngestResult, type WriteCheck } from "./ingest.ts";
import type { Packable } from "../encoding/msgpack.ts";
import { IdSet } from "../sync/id_set.ts";

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

/** @internal Per-item bookkeeping. */
export class ItemEntry {
  /** First unresolved record payload [start, end) in the log's open-time bytes (-1: none). */
  start = -1;
  end = -1;
  /** Further unresolved [start, end) pairs. */
  more: number[] | null = null;
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
  /** Commits older than this timestamp were garbage-collected and are refused. */
  horizon = 0;
  #itemListeners = 0;
  /** Why the repository was closed: explicitly, or automatically (idle, memory budget). */
  closeReason: "explicit" | "idle" | "budget" | "compacted" | null = null;
  /** @internal Set by every access; cleared by the database's idle sweep. */
  touched = true;
  /** @internal Use order for the memory budget (larger = more recent). */
  lastUsed = 0;

  /** @internal use Database.open() */
  constructor(
    readonly ctx: RepoContext,
    readonly path: RepoPath,
    readonly log: RepoLog,
  ) {
    const data = log.data, frames = log.frames;
    for (let i = 0; i < frames.length; i += 2) {
      const start = frames[i], end = frames[i + 1];
      const kind = data[start];
      if (kind === RecordKind.Commit && end - start > 65) {
        const key = peekItemKey(data, start + 65, end);
        if (key === undefined) continue; // checksummed but undecodable: `verify` reports it
        const e = this.#entries.get(key);
        if (!e) {
          const created = new ItemEntry(key, path);
          created.start = start;
          created.end = end;
          this.#entries.set(key, created);
        } else (e.more ??= []).push(start, end);
      } else if (kind === RecordKind.Horizon) {
        try {
          const h = decodeHorizonRecord(data.subarray(start + 1, end));
          this.horizon = Math.max(this.horizon, h.ts);
          for (const id of h.pruned) this.#pruned.add(id);
        } catch { /* reported by `verify` */ }
      } else if (kind === RecordKind.Session) {
        try {
          const s = decodeSessionRecord(data.subarray(start + 1, end));
          ctx.knownSessions.set(s.id, s);
          this.#recordedSessions.add(s.id);
        } catch { /* reported by `verify` */ }
      }
    }
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

  /** @internal Builds (once) and returns the commit graph of an entry. */
  graphOf(e: ItemEntry): ItemGraph {
    if (e.graph) return e.graph;
    const g = new ItemGraph(this.ctx.registry, this.#pruned);
    const data = this.log.data;
    const locs = e.start < 0 ? [] : [e.start, e.end, ...(e.more ?? [])];
    for (let i = 0; i < locs.length; i += 2) {
      const start = locs[i], end = locs[i + 1];
      let commit: Commit;
      try {
        commit = decodeCommit(data.subarray(start + 65, end));
      } catch {
        continue; // reported by `verify`
      }
      g.add({ commit, sig: data.subarray(start + 1, start + 65) });
    }
    e.start = e.end = -1;
    e.more = null;
    e.graph = g;
    return g;
  }

  /** @internal The current value of an entry (undefined when it has no commits). */
  valueOf(e: ItemEntry): ItemState | undefined {
    if (e.value !== null) return e.value;
    if (e.graph === null && e.start >= 0 && e.more === null) {
      // One stored commit: its state is the value; no graph or id needed yet.
      try {
        const { schema, body } = decodeStoredBody(
          this.log.data,
          e.start + 65,
          e.end,
        );
        if (body.kind === "full") {
          return e.value = typedState(this.ctx.registry, schema, body);
        }
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
      }
    }
    return e.value = this.graphOf(e).value();
  }

  #isLive(e: ItemEntry): boolean {
    // Fast path: an unresolved single-commit item stores its deleted flag as the last byte.
    if (
      e.value === null && e.graph === null && e.more === null && e.start >= 0
    ) {
      return this.log.data[e.end - 1] === 0xc2;
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
    let n = this.log.data.length + this.#entries.size * 160;
    for (const e of this.#entries.values()) {
      if (e.graph) n += e.graph.nodes.size * 400;
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
      base ? g.deltasOn(base.commit.id) : 0,
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
        this.log.append(encodeFrame(commitPayload(n)));
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
    this.log.append(encodeFrame(payload));
  }

  /** @internal Index of every commit id (built on first use; sync and ingest need it). */
  commitIndex(): Map<CommitId, ItemEntry> {
    if (this.#index) return this.#index;
    const index = new Map<CommitId, ItemEntry>();
    for (const e of this.#entries.values()) {
      for (const id of this.graphOf(e).nodes.keys()) index.set(id, e);
    }
    return this.#index = index;
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

  /** Commit ids of every signed commit in this repository. */
  commitIds(): CommitId[] {
    this.checkOpen();
    const out: CommitId[] = [];
    for (const [id, e] of this.commitIndex()) {
      if (e.graph!.nodes.get(id)?.sig) out.push(id);
    }
    return out;
  }

  /**
   * Ingests commit records from a peer: each is decoded, checked against its id, its
   * session's signature and the clock; accepted ones are stored and merged.
   */
  ingest(
    records: readonly Uint8Array[],
    mayWrite?: WriteCheck,
  ): Promise<IngestResult> {
    this.checkOpen();
    return ingestRecords(this, records, mayWrite);
  }

  /** @internal Adds verified remote commits to their items. */
  addRemote(nodes: { node: CommitNode; key: string }[]): {
    accepted: CommitId[];
    rejected: { id: CommitId; reason: string }[];
  } {
    this.commitPending();
    const index = this.commitIndex();
    const touched = new Set<ItemEntry>();
    const accepted: CommitId[] = [];
    const rejected: { id: CommitId; reason: string }[] = [];
    for (const { node, key } of nodes) {
      const c = node.commit;
      if (index.has(c.id)) continue;
      const e = this.ensureEntry(key);
      const g = this.graphOf(e);
      const result = g.add(node);
      for (const r of result.rejected) {
        rejected.push({ id: r.node.commit.id, reason: r.reason });
        index.delete(r.node.commit.id);
      }
      if (!g.has(c.id)) continue;
      index.set(c.id, e);
      if (!this.#recordedSessions.has(c.session)) {
        const session = this.ctx.trust.lookup(c.session, this.ctx.now()) ??
          this.ctx.knownSessions.get(c.session);
        if (session) {
          this.#appendRecord(RecordKind.Session, encodeSessionRecord(session));
          this.#recordedSessions.add(c.session);
        }
      }
      this.log.append(encodeFrame(commitPayload(node)));
      this.#idSet?.add(commitIdBytes(c.id));
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
    const g = this.graphOf(e);
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
    do {
      await this.flush();
    } while (this.#dirty.size > 0 || this.#signingInFlight > 0);
    this.#closed = true;
    this.closeReason = reason;
    await this.log.close();
  }

  /** @internal Ids pruned by garbage collection (frontier parents of kept commits). */
  get pruned(): ReadonlySet<CommitId> {
    return this.#pruned;
  }

  /** @internal Every item entry, resolved (compaction reads all graphs). */
  allGraphs(): ItemGraph[] {
    return [...this.#entries.values()].map((e) => this.graphOf(e));
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
