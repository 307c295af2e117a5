/**
 * The local write pipeline: a write records the item's new state at once (reads see it,
 * listeners hear of it); at the end of the tick every changed item becomes one commit
 * (delta-compressed against the last full snapshot, stamped by the hybrid clock, parented
 * on every head), and the commits are signed in batches and appended to the log in order.
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
}

/** Pending local writes of one repository and their signing. */
export class LocalWrites {
  readonly #dirty = new Set<ItemEntry>();
  #scheduled = false;
  #signing: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  #inFlight = 0;

  constructor(private readonly deps: LocalWriteDeps) {}

  /** True while writes are not yet committed, or commits not yet signed and appended. */
  get pending(): boolean {
    return this.#dirty.size > 0 || this.#inFlight > 0;
  }

  /** Records a local change to an entry; the commit follows this tick. */
  write(e: ItemEntry, state: ItemState): void {
    e.value = state;
    e.dirty = true;
    this.#dirty.add(e);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.commitPending());
    }
    this.deps.events.emit(e, true);
  }

  /** Turns pending local changes into commits (one per item). */
  commitPending(): void {
    this.#scheduled = false;
    if (this.#dirty.size === 0) return;
    const built: CommitNode[] = [];
    for (const e of this.#dirty) {
      e.dirty = false;
      built.push(this.#buildCommit(e));
    }
    this.#dirty.clear();
    this.#inFlight++;
    this.#signing = this.#signing.then(() => this.#signAndAppend(built)).catch(
      (err) => {
        this.#failure = err instanceof Error ? err : new Error(String(err));
      },
    ).finally(() => this.#inFlight--);
  }

  /** Resolves once every commit built so far is signed and appended; throws a failure. */
  async settled(): Promise<void> {
    await this.#signing;
    if (this.#failure) throw this.#failure;
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
