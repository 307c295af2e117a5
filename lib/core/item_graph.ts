/**
 * The commit graph of one item: its commits by id, its heads, and the deterministic
 * value of those heads. Commits whose parents (or delta base) have not arrived yet wait
 * aside and join the graph once complete, so arrival order never changes the result.
 *
 * @module
 */

import {
  type Commit,
  type CommitId,
  compareCommitOrder,
  type FullBody,
} from "../commit/commit.ts";
import { applyDelta } from "../commit/delta.ts";
import type { SchemaRegistry } from "../schema/schema.ts";
import type { ItemState } from "../merge/merge.ts";
import { HeadMerger } from "./head_merge.ts";
import { decodeItemState } from "./item_state.ts";
import { ancestorsOf } from "./merge_base.ts";

export { ancestorsOf } from "./merge_base.ts";

/** One commit in an item's graph. */
export interface CommitNode {
  readonly commit: Commit;
  /** Ed25519 signature over the id; null while a local commit is being signed. */
  sig: Uint8Array | null;
  /** Full raw data (cached once computed). */
  full?: FullBody;
  /** Typed, upgraded state (cached once computed). */
  state?: ItemState;
  /** Offset of the commit's record payload in the repository log, once stored. */
  at?: number;
}

/** A Map allocated on first write (most items never need one). */
class LazyMap<K, V> {
  #m: Map<K, V> | null = null;
  get(k: K): V | undefined {
    return this.#m?.get(k);
  }
  set(k: K, v: V): void {
    (this.#m ??= new Map()).set(k, v);
  }
  delete(k: K): void {
    this.#m?.delete(k);
  }
  values(): Iterable<V> {
    return this.#m?.values() ?? [];
  }
}

/** A commit the graph refused, and why. */
export interface RejectedCommit {
  readonly node: CommitNode;
  readonly reason: string;
}

/** The id of the full snapshot a commit's body is relative to (itself when full). */
export function fullBaseOf(c: Commit): CommitId {
  return c.body.kind === "full" ? c.id : c.body.base;
}

const NO_PRUNED: ReadonlySet<CommitId> = new Set();

/** What adding a commit to a graph did. */
export interface AddedToGraph {
  /** Commits that became complete: the one added and any that were waiting for it. */
  readonly completed: CommitNode[];
  /** Commits refused: a timestamp not after a parent's, or depending on such a commit. */
  readonly rejected: RejectedCommit[];
}

/**
 * Per-item commit graph. `nodes` and `heads` hold complete commits only (every parent
 * and delta base present, or collected by garbage collection); a commit whose dependency
 * has not arrived waits aside, outside `nodes`, until it completes or is dropped.
 */
export class ItemGraph {
  /** The complete commits by id. */
  readonly nodes: Map<CommitId, CommitNode> = new Map();
  /** Complete commits that no other complete commit names as parent, in (ts, id) order. */
  heads: CommitNode[] = [];
  /** Commits waiting for a missing dependency, by id. */
  readonly #pending = new LazyMap<CommitId, CommitNode>();
  #pendingCount = 0;
  /** Waiting commits by the dependency they wait for. */
  readonly #waiting = new LazyMap<CommitId, CommitNode[]>();
  readonly #deltasOnBase = new LazyMap<CommitId, number>();
  readonly #merger: HeadMerger<CommitNode>;

  constructor(
    private readonly registry: SchemaRegistry,
    /** Parents removed by garbage collection: treated as present. */
    private readonly pruned: ReadonlySet<CommitId> = NO_PRUNED,
  ) {
    this.#merger = new HeadMerger({
      lookup: (id) => this.nodes.get(id),
      stateOf: (n) => this.stateOf(n),
    });
  }

  /** True when the graph holds the commit (complete or waiting). */
  has(id: CommitId): boolean {
    return this.nodes.has(id) || this.#pending.get(id) !== undefined;
  }

  /** True when the commit waits for a missing dependency. */
  isWaiting(id: CommitId): boolean {
    return this.#pending.get(id) !== undefined;
  }

  /** A commit waiting for a missing dependency, by id. */
  waitingNode(id: CommitId): CommitNode | undefined {
    return this.#pending.get(id);
  }

  /** Number of commits waiting for missing dependencies. */
  get waitingCount(): number {
    return this.#pendingCount;
  }

  /** The commits waiting for missing dependencies. */
  waitingNodes(): CommitNode[] {
    return [...this.#pending.values()];
  }

  /** How many deltas use `base` as their full snapshot. */
  deltasOn(base: CommitId): number {
    return this.#deltasOnBase.get(base) ?? 0;
  }

  /**
   * Adds commits known to be complete whose ancestors are not loaded (a checkpoint named
   * them as heads or as the snapshots of heads): no dependency or timestamp checks, since
   * they passed them when first stored. Heads are recomputed over every complete commit.
   */
  addLoaded(nodes: readonly CommitNode[]): void {
    for (const n of nodes) {
      const c = n.commit;
      if (this.nodes.has(c.id)) continue;
      this.nodes.set(c.id, n);
      if (c.body.kind === "delta") {
        this.#deltasOnBase.set(c.body.base, this.deltasOn(c.body.base) + 1);
      }
    }
    const named = new Set<CommitId>();
    for (const n of this.nodes.values()) {
      for (const a of ancestorsOf(n.commit)) named.add(a);
    }
    this.heads = [...this.nodes.values()].filter((n) => !named.has(n.commit.id))
      .sort((a, b) => compareCommitOrder(a.commit, b.commit));
    this.#merger.clear();
  }

  /**
   * Adds a commit. Returns the commits that became complete (this one and any that were
   * waiting for it; none when it waits or was already held) and those refused because
   * their timestamp is not after their parents' (or they depend on one that was).
   */
  add(node: CommitNode): AddedToGraph {
    const id = node.commit.id;
    const done: CommitNode[] = [];
    const rejected: RejectedCommit[] = [];
    if (this.has(id)) return { completed: done, rejected };
    // A collected parent arriving changes the ancestry memoized merges walked.
    if (this.pruned.has(id)) this.#merger.clear();
    const queue = [node];
    while (queue.length) {
      const n = queue.pop()!;
      const c = n.commit;
      const missing = this.#missingDependency(c);
      if (missing) {
        if (this.#pending.get(c.id) === undefined) {
          this.#pending.set(c.id, n);
          this.#pendingCount++;
        }
        const list = this.#waiting.get(missing) ?? [];
        list.push(n);
        this.#waiting.set(missing, list);
        continue;
      }
      this.#unpend(c.id);
      const early = c.parents.find((p) =>
        (this.nodes.get(p)?.commit.ts ?? -1) >= c.ts
      );
      if (early) {
        this.#dropWaiters(c.id, rejected);
        rejected.push({
          node: n,
          reason:
            `commit ${c.id} of ${c.key} has a timestamp not after its parent ${early}`,
        });
        continue;
      }
      this.nodes.set(c.id, n);
      this.#link(n);
      done.push(n);
      const waiters = this.#waiting.get(c.id);
      if (waiters) {
        this.#waiting.delete(c.id);
        queue.push(...waiters);
      }
    }
    return { completed: done, rejected };
  }

  /**
   * Drops a waiting commit and every commit waiting for it (memory bounds: they were
   * never complete, so nothing else refers to them). Returns the ids dropped.
   */
  dropWaiting(id: CommitId): CommitId[] {
    const n = this.#pending.get(id);
    if (!n) return [];
    const missing = this.#missingDependency(n.commit);
    if (missing) {
      const list = this.#waiting.get(missing)?.filter((w) => w !== n) ?? [];
      if (list.length) this.#waiting.set(missing, list);
      else this.#waiting.delete(missing);
    }
    this.#unpend(id);
    const rejected: RejectedCommit[] = [];
    this.#dropWaiters(id, rejected);
    return [id, ...rejected.map((r) => r.node.commit.id)];
  }

  #unpend(id: CommitId): void {
    if (this.#pending.get(id) === undefined) return;
    this.#pending.delete(id);
    this.#pendingCount--;
  }

  #dropWaiters(id: CommitId, rejected: RejectedCommit[]): void {
    const waiters = this.#waiting.get(id);
    if (!waiters) return;
    this.#waiting.delete(id);
    for (const w of waiters) {
      this.#unpend(w.commit.id);
      rejected.push({ node: w, reason: `it depends on rejected commit ${id}` });
      this.#dropWaiters(w.commit.id, rejected);
    }
  }

  #missingDependency(c: Commit): CommitId | undefined {
    for (const p of c.parents) {
      if (!this.nodes.has(p) && !this.pruned.has(p)) return p;
    }
    if (c.body.kind === "delta") {
      const b = c.body.base;
      if (!this.nodes.has(b)) return b;
    }
    return undefined;
  }

  #link(n: CommitNode): void {
    const c = n.commit;
    if (c.body.kind === "delta") {
      this.#deltasOnBase.set(c.body.base, this.deltasOn(c.body.base) + 1);
    }
    const parents = new Set<string>(ancestorsOf(c));
    const heads = this.heads.filter((h) => !parents.has(h.commit.id));
    heads.push(n);
    heads.sort((a, b) => compareCommitOrder(a.commit, b.commit));
    this.heads = heads;
  }

  /** Full raw data of a complete commit. */
  fullOf(n: CommitNode): FullBody {
    if (n.full) return n.full;
    const body = n.commit.body;
    if (body.kind === "full") return n.full = body;
    const base = this.nodes.get(body.base);
    if (!base || base.commit.body.kind !== "full") {
      throw new Error(
        `Commit ${n.commit.id} of ${n.commit.key}: delta base ${body.base} is missing or not a full snapshot`,
      );
    }
    return n.full = applyDelta(
      this.registry.get(n.commit.schema),
      base.commit.body,
      body,
    );
  }

  /** Typed state of a commit, upgraded to the newest registered schema version. */
  stateOf(n: CommitNode): ItemState {
    if (n.state) return n.state;
    const c = n.commit;
    return n.state = decodeItemState(
      this.registry,
      c.schema,
      this.fullOf(n),
      c.key,
    );
  }

  /**
   * The value of a set of complete commits none of which descends from another (the
   * item's heads, say): the state of one, the merge of several (head_merge.ts).
   */
  valueOf(heads: readonly CommitNode[]): ItemState | undefined {
    return this.#merger.valueOf(heads);
  }

  /** The item's value: the state of its single head, or the merge of its heads. */
  value(): ItemState | undefined {
    return this.#merger.valueOf(this.heads);
  }
}
