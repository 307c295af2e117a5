/**
 * The local write pipeline: a write records the item's new state at once (reads see it,
 * listeners hear of it); at the end of the tick every changed item becomes one commit
 * (delta-compressed against the last full snapshot, stamped by the hybrid clock, parented
 * on every head), and the commits are signed in batches and appended to the log in order.
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
import type { Packable } from "../encoding/msgpack.ts";
import type { ItemState } from "../merge/merge.ts";
import { encodeFieldValue } from "../schema/field_types.ts";
import { schemaIdOf } from "../schema/schema.ts";
import type { ChangeEvents } from "./change_events.ts";
import type { CommitIndex } from "./commit_index.ts";
import type { ItemEntry } from "./item_entry.ts";
import { type CommitNode, fullBaseOf, type ItemGraph } from "./item_graph.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { LogWriter } from "./log_writer.ts";
import type { SessionRecord } from "./session.ts";

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
  /** Build commits in slices of `sliceMs`, calling `pause` between them. */
  readonly slices?: {
    readonly sliceMs: number;
    pause(): Promise<void>;
  };
}

/** Commits built between two clock reads when building in slices. */
const BUILDS_PER_CHECK = 32;
/** Writes of one tick up to this many get their commits at its end; more, in slices. */
const BUILD_AT_ONCE = 64;

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
  #signing: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  #inFlight = 0;

  constructor(private readonly deps: LocalWriteDeps) {}

  /** True while writes are not yet committed, or commits not yet signed and appended. */
  get pending(): boolean {
    return this.#dirty.size > 0 || this.#backlog.size > 0 ||
      this.#early.length > 0 || this.#inFlight > 0;
  }

  /** Records a local change to an entry; the commit follows this tick. */
  write(e: ItemEntry, state: ItemState): void {
    if (this.#backlog.delete(e)) this.#early.push(this.#build(e));
    e.value = state;
    e.dirty = true;
    this.#dirty.add(e);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#endOfTick());
    }
    this.deps.events.emit(e, true);
  }

  /** Turns every pending local change into commits now (one per item). */
  commitPending(): void {
    this.#scheduled = false;
    const built = this.#takeEarly();
    for (const e of this.#backlog) built.push(this.#build(e));
    this.#backlog.clear();
    for (const e of this.#dirty) built.push(this.#build(e));
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
        built.push(this.#build(e));
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

  /** Resolves once every commit built so far is signed and appended; throws a failure. */
  async settled(): Promise<void> {
    await this.#signing;
    if (this.#failure) throw this.#failure;
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
   * Builds the backlog's commits for about `sliceMs` and sends them to be signed; true
   * when some are left.
   */
  #buildSlice(): boolean {
    const built = this.#takeEarly();
    const start = performance.now(), budget = this.deps.slices!.sliceMs;
    let n = 0;
    for (const e of this.#backlog) {
      this.#backlog.delete(e);
      built.push(this.#build(e));
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

  #build(e: ItemEntry): CommitNode {
    e.dirty = false;
    return this.#buildCommit(e);
  }

  #send(built: CommitNode[]): void {
    if (!built.length) return;
    this.#inFlight++;
    this.#signing = this.#signing.then(() => this.#signAndAppend(built)).catch(
      (err) => {
        this.#failure = err instanceof Error ? err : new Error(String(err));
      },
    ).finally(() => this.#inFlight--);
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
    const node: CommitNode = { commit, sig: null, full, state };
    g.add(node);
    this.deps.index.added(commit.id, e);
    return node;
  }

  async #signAndAppend(nodes: CommitNode[]): Promise<void> {
    const { signer, writer, index } = this.deps;
    writer.recordSession(this.deps.ownSession);
    for (let i = 0; i < nodes.length; i += SIGNING_CHUNK) {
      const chunk = nodes.slice(i, i + SIGNING_CHUNK);
      const sigs = await Promise.all(
        chunk.map((n) => signer.sign(commitIdBytes(n.commit.id))),
      );
      for (let j = 0; j < chunk.length; j++) {
        const n = chunk[j];
        n.sig = sigs[j];
        writer.appendCommit(n);
        index.signed(commitIdBytes(n.commit.id));
      }
      this.deps.stored(chunk);
    }
  }
}
