/**
 * The local write pipeline: a write records the item's new state at once (reads see it,
 * listeners hear of it); at the end of the tick every changed item becomes one commit
 * (delta-compressed against the last full snapshot, stamped by the hybrid clock, parented
 * on every head), and the commits are signed in batches and appended to the log in order.
 *
 * Nothing here throws asynchronously, and no failure wedges the queue:
 *
 * - every check of a write's value happens at the call ({@link LocalWrites.write}: the
 *   size of the commit it would produce; write_check.ts: each value), so the commit built
 *   at the end of the tick can be encoded;
 * - should building one item's commit fail all the same, that write alone is dropped: its
 *   item returns to its last committed state, the error goes to `onError` and to the next
 *   `flush()`, and the other items' commits go on;
 * - commits that could not be signed or appended stay queued, in order, and every later
 *   flush retries them: a flush throws only while a commit made before it is not stored,
 *   and later writes are never blocked.
 *
 * With `slices` (the database gives them), building the commits of a large tick runs in
 * slices of about `sliceMs` with a yield to the event loop between them, so a page that
 * creates thousands of items per task never gets one long task for their commits. An
 * item written again while its commit of an earlier tick waits gets that commit built
 * first: each tick's state of an item is still one commit.
 *
 * @module
 */

import {
  buildCommit,
  commitIdBytes,
  compareCommitOrder,
  type FullBody,
} from "../commit/commit.ts";
import { chooseBody } from "../commit/delta.ts";
import type { HybridClock } from "../commit/clock.ts";
import type { SigningKey } from "../crypto/keys.ts";
import type { ItemState } from "../merge/merge.ts";
import { schemaIdOf } from "../schema/schema.ts";
import type { ChangeEvents } from "./change_events.ts";
import type { CommitIndex } from "./commit_index.ts";
import type { ItemEntry } from "./item_entry.ts";
import { type CommitNode, fullBaseOf, type ItemGraph } from "./item_graph.ts";
import { encodeItemState } from "./item_state.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { LogWriter } from "./log_writer.ts";
import type { SessionRecord } from "./session.ts";
import { checkBuiltCommitSize, checkCommitSize } from "./write_limits.ts";

/** Local commits are signed and appended in chunks of this many. */
const SIGNING_CHUNK = 2048;

/** What the pipeline needs from its repository. */
export interface LocalWriteDeps {
  readonly clock: HybridClock;
  readonly signer: SigningKey;
  readonly ownSession: SessionRecord;
  readonly history: HistoryLoader;
  readonly writer: LogWriter;
  readonly index: CommitIndex;
  readonly events: ChangeEvents;
  /** Signed commits were appended to the log (sync pushes them). */
  stored(nodes: readonly CommitNode[]): void;
  /** Reports a failure of background work (the database's `onError`). */
  reportError(error: Error): void;
  /** Build commits in slices of `sliceMs`, calling `pause` between them. */
  readonly slices?: {
    readonly sliceMs: number;
    pause(): Promise<void>;
  };
}

/** Commits built between two clock reads when building in slices. */
const BUILDS_PER_CHECK = 32;
/** Signed commits appended between two clock reads when appending in slices. */
const APPENDS_PER_CHECK = 64;
/** Writes of one tick up to this many get their commits at its end; more, in slices. */
const BUILD_AT_ONCE = 64;

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Pending local writes of one repository and their signing. */
export class LocalWrites {
  /** Items written this tick. */
  readonly #dirty = new Set<ItemEntry>();
  /** Items of earlier ticks whose commits are not built yet (building in slices). */
  readonly #backlog = new Set<ItemEntry>();
  /** Commits built ahead of their slice (their item was written again). */
  #early: CommitNode[] = [];
  #scheduled = false;
  #continuing = false;
  /** Built commits not yet signed and appended, oldest first. */
  readonly #unstored: CommitNode[] = [];
  /** Commits built so far, and how many of them are stored (always the oldest). */
  #built = 0;
  #stored = 0;
  /** The chain of store attempts (never rejects). */
  #storing: Promise<void> = Promise.resolve();
  /** Why the last store attempt failed, while commits wait for a retry. */
  #storeError: Error | null = null;
  /** Writes dropped while building their commit, not yet reported to a flush. */
  readonly #dropped: Error[] = [];

  constructor(private readonly deps: LocalWriteDeps) {}

  /** True while writes are not yet committed, or commits not yet signed and appended. */
  get pending(): boolean {
    return this.#dirty.size > 0 || this.#backlog.size > 0 ||
      this.#early.length > 0 || this.#unstored.length > 0;
  }

  /**
   * Records a local change to an entry; the commit follows this tick. Throws a RangeError,
   * recording nothing, when the commit would be too large (write_limits.ts).
   */
  write(e: ItemEntry, state: ItemState): void {
    // The state of an earlier tick gets its own commit first.
    if (this.#backlog.delete(e)) this.#build(e, this.#early);
    checkCommitSize(
      e.path,
      state,
      this.deps.history.graphOf(e).heads.length,
    );
    e.value = state;
    e.dirty = true;
    this.#dirty.add(e);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#endOfTick());
    }
    this.deps.events.emit(e, true);
  }

  /** Turns every pending local change into commits now (one per item). Never throws. */
  commitPending(): void {
    this.#scheduled = false;
    const built = this.#takeEarly();
    for (const e of this.#backlog) this.#build(e, built);
    this.#backlog.clear();
    for (const e of this.#dirty) this.#build(e, built);
    this.#dirty.clear();
    this.#send(built);
  }

  /**
   * Builds now the pending commits of `entries` only (received commits are about to join
   * their graphs), leaving the other items' commits to their slices.
   */
  commitPendingOf(entries: Iterable<ItemEntry | undefined>): void {
    const built = this.#takeEarly();
    for (const e of entries) {
      if (e && (this.#backlog.delete(e) || this.#dirty.delete(e))) {
        this.#build(e, built);
      }
    }
    this.#send(built);
  }

  /**
   * {@link commitPending} in slices (with `slices`): resolves once every write made
   * before the call, and while it ran, has its commit built.
   */
  async commitPendingSliced(): Promise<void> {
    const slices = this.deps.slices;
    if (!slices) return this.commitPending();
    this.#toBacklog();
    while (this.#buildSlice()) {
      await slices.pause();
      this.#toBacklog();
    }
  }

  /**
   * Resolves once every commit built before the call is signed and appended (retrying
   * those a failure left queued). Throws when one of them is still not stored, or when a
   * write was dropped since the last call (each reported once).
   */
  async settled(): Promise<void> {
    const mark = this.#built;
    const dropped = this.#dropped.splice(0);
    if (this.#unstored.length) this.#storeQueued();
    await this.#storing;
    if (this.#stored < mark) {
      throw this.#storeError ?? new Error("Local commits are not stored yet");
    }
    if (dropped.length === 1) throw dropped[0];
    if (dropped.length > 1) {
      throw new AggregateError(
        dropped,
        `${dropped.length} writes were not committed: ${dropped[0].message}`,
      );
    }
  }

  /** A write whose commit could not be built: its item returns to its last commit. */
  #drop(e: ItemEntry, err: Error): void {
    e.value = null; // recomputed from the graph, which the failed build left unchanged
    const error = new Error(
      `Write to ${e.path} was not committed: ${err.message}`,
      { cause: err },
    );
    // Kept for the next flush (bounded: every one also went to onError).
    if (this.#dropped.length < 100) this.#dropped.push(error);
    this.deps.reportError(error);
    this.deps.events.emit(e, true);
  }

  /**
   * The end of a tick with writes: their commits now, or, for many writes, in slices
   * of tasks of their own (the tick's task has done its share of work).
   */
  #endOfTick(): void {
    if (!this.#scheduled) return; // commitPending ran since
    if (!this.deps.slices) return this.commitPending();
    this.#toBacklog();
    if (this.#continuing) return; // the backlog's slices take these too
    if (this.#backlog.size > BUILD_AT_ONCE || this.#buildSlice()) {
      this.#continueLater();
    }
  }

  #continueLater(): void {
    if (this.#continuing) return;
    this.#continuing = true;
    this.deps.slices!.pause().then(() => {
      this.#continuing = false;
      if (this.#buildSlice()) this.#continueLater();
    });
  }

  /** Moves this tick's writes behind the backlog. */
  #toBacklog(): void {
    this.#scheduled = false;
    for (const e of this.#dirty) this.#backlog.add(e);
    this.#dirty.clear();
  }

  /**
   * Builds the backlog's commits for about `sliceMs` and queues them to be signed; true
   * when some are left.
   */
  #buildSlice(): boolean {
    const built = this.#takeEarly();
    const start = performance.now(), budget = this.deps.slices!.sliceMs;
    let n = 0;
    for (const e of this.#backlog) {
      this.#backlog.delete(e);
      this.#build(e, built);
      if (++n % BUILDS_PER_CHECK === 0 && performance.now() - start > budget) {
        break;
      }
    }
    this.#send(built);
    return this.#backlog.size > 0;
  }

  #takeEarly(): CommitNode[] {
    const early = this.#early;
    this.#early = [];
    return early;
  }

  /** Builds the item's commit into `into`; a failure drops that write alone. */
  #build(e: ItemEntry, into: CommitNode[]): void {
    e.dirty = false;
    try {
      into.push(this.#buildCommit(e));
    } catch (err) {
      this.#drop(e, asError(err));
    }
  }

  /** Queues built commits to be signed and appended, in order. */
  #send(built: readonly CommitNode[]): void {
    if (!built.length) return;
    for (const n of built) this.#unstored.push(n); // no spread: a tick may hold 100k
    this.#built += built.length;
    this.#storeQueued();
  }

  #storeQueued(): void {
    this.#storing = this.#storing.then(() => this.#storeAll());
  }

  /** A timestamp after every head of the item (the clock may be behind stored history). */
  #nextTimestamp(g: ItemGraph): number {
    const clock = this.deps.clock;
    for (const h of g.heads) clock.advance(h.commit.ts);
    return clock.now();
  }

  #buildCommit(e: ItemEntry): CommitNode {
    const { history } = this.deps;
    const g = history.graphOf(e);
    const state = e.value!;
    const schema = state.schema;
    const full: FullBody = {
      kind: "full",
      data: encodeItemState(state),
      deleted: state.deleted,
    };
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
      base ? history.deltasOn(e, g, base) : 0,
    );
    const commit = buildCommit({
      key: e.path,
      parents: g.heads.map((h) => h.commit.id),
      session: this.deps.signer.sessionId,
      ts: this.#nextTimestamp(g),
      schema: schemaIdOf(schema),
      body,
    });
    checkBuiltCommitSize(e.path, commit.bytes.length);
    const node: CommitNode = { commit, sig: null, full, state };
    g.add(node);
    this.deps.index.added(commit.id, e);
    return node;
  }

  /** Signs and appends the queued commits in order; on a failure keeps the rest queued. */
  async #storeAll(): Promise<void> {
    const { signer, writer, index } = this.deps;
    while (this.#unstored.length) {
      const chunk = this.#unstored.slice(0, SIGNING_CHUNK);
      const appended: CommitNode[] = [];
      try {
        const sigs = await Promise.all(
          chunk.map((n) => n.sig ?? signer.sign(commitIdBytes(n.commit.id))),
        );
        writer.recordSession(this.deps.ownSession);
        const slices = this.deps.slices;
        let sliceStart = performance.now();
        for (let j = 0; j < chunk.length; j++) {
          if (
            slices && j % APPENDS_PER_CHECK === 0 && j > 0 &&
            performance.now() - sliceStart > slices.sliceMs
          ) {
            // Appending a chunk takes tens of ms on a page: in slices too, in order.
            await slices.pause();
            sliceStart = performance.now();
          }
          const n = chunk[j];
          n.sig = sigs[j];
          writer.appendCommit(n);
          index.signed(commitIdBytes(n.commit.id));
          this.#stored++;
          appended.push(n);
        }
        // Once per chunk (a shift per commit moves a long queue each time).
        this.#unstored.splice(0, appended.length);
      } catch (err) {
        this.#unstored.splice(0, appended.length);
        const e = asError(err);
        this.#storeError = new Error(
          `Cannot store ${this.#unstored.length} local commit(s) (the first of ${
            this.#unstored[0].commit.key
          }): ${e.message}; they stay queued and the next flush retries them`,
          { cause: e },
        );
        this.deps.reportError(this.#storeError);
        return;
      } finally {
        if (appended.length) this.deps.stored(appended);
      }
      this.#storeError = null;
    }
  }
}
