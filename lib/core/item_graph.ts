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
import { type ItemState, mergeHeadStates } from "../merge/merge.ts";
import { decodeItemState } from "./item_state.ts";

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
}

/** A Set allocated on first write. */
class LazySet<K> {
  #s: Set<K> | null = null;
  get size(): number {
    return this.#s?.size ?? 0;
  }
  has(k: K): boolean {
    return this.#s?.has(k) ?? false;
  }
  add(k: K): void {
    (this.#s ??= new Set()).add(k);
  }
  delete(k: K): void {
    this.#s?.delete(k);
  }
}

/** A commit the graph refused, and why. */
export interface RejectedCommit {
  readonly node: CommitNode;
  readonly reason: string;
}

/**
 * The direct ancestry links of a commit: its parents and, for a delta, its base snapshot
 * (always an ancestor; after garbage collection it may be the only kept link).
 */
export function ancestorsOf(c: Commit): readonly CommitId[] {
  return c.body.kind === "delta" ? [...c.parents, c.body.base] : c.parents;
}

/** The id of the full snapshot a commit's body is relative to (itself when full). */
export function fullBaseOf(c: Commit): CommitId {
  return c.body.kind === "full" ? c.id : c.body.base;
}

const NO_PRUNED: ReadonlySet<CommitId> = new Set();

/** Per-item commit graph. */
export class ItemGraph {
  readonly nodes: Map<CommitId, CommitNode> = new Map();
  /** Complete commits that no other complete commit names as parent, in (ts, id) order. */
  heads: CommitNode[] = [];
  /** Commits waiting for a missing dependency, by that dependency. */
  readonly #waiting = new LazyMap<CommitId, CommitNode[]>();
  readonly #incomplete = new LazySet<CommitId>();
  readonly #deltasOnBase = new LazyMap<CommitId, number>();

  constructor(
    private readonly registry: SchemaRegistry,
    /** Parents removed by garbage collection: treated as present. */
    private readonly pruned: ReadonlySet<CommitId> = NO_PRUNED,
  ) {}

  /** True when the graph holds the commit (complete or waiting). */
  has(id: CommitId): boolean {
    return this.nodes.has(id);
  }

  /** Number of commits waiting for missing dependencies. */
  get waitingCount(): number {
    return this.#incomplete.size;
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
    const complete: CommitNode[] = [];
    for (const n of this.nodes.values()) {
      if (this.#incomplete.has(n.commit.id)) continue;
      complete.push(n);
      for (const a of ancestorsOf(n.commit)) named.add(a);
    }
    this.heads = complete.filter((n) => !named.has(n.commit.id)).sort((a, b) =>
      compareCommitOrder(a.commit, b.commit)
    );
  }

  /**
   * Adds a commit. Returns the commits that became complete (this one and any that were
   * waiting for it; none when it waits or was already present) and those refused because
   * their timestamp is not after their parents'.
   */
  add(
    node: CommitNode,
  ): { completed: CommitNode[]; rejected: RejectedCommit[] } {
    const id = node.commit.id;
    const done: CommitNode[] = [];
    const rejected: RejectedCommit[] = [];
    if (this.nodes.has(id)) return { completed: done, rejected };
    this.nodes.set(id, node);
    this.#incomplete.add(id);
    const queue = [node];
    while (queue.length) {
      const n = queue.pop()!;
      const missing = this.#missingDependency(n.commit);
      if (missing) {
        const list = this.#waiting.get(missing) ?? [];
        list.push(n);
        this.#waiting.set(missing, list);
        continue;
      }
      const c = n.commit;
      const early = c.parents.find((p) =>
        (this.nodes.get(p)?.commit.ts ?? -1) >= c.ts
      );
      if (early) {
        this.nodes.delete(c.id);
        this.#incomplete.delete(c.id);
        this.#dropWaiters(c.id, rejected);
        rejected.push({
          node: n,
          reason:
            `commit ${c.id} of ${c.key} has a timestamp not after its parent ${early}`,
        });
        continue;
      }
      this.#incomplete.delete(c.id);
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

  #dropWaiters(id: CommitId, rejected: RejectedCommit[]): void {
    const waiters = this.#waiting.get(id);
    if (!waiters) return;
    this.#waiting.delete(id);
    for (const w of waiters) {
      this.nodes.delete(w.commit.id);
      this.#incomplete.delete(w.commit.id);
      rejected.push({ node: w, reason: `it depends on rejected commit ${id}` });
      this.#dropWaiters(w.commit.id, rejected);
    }
  }

  #missingDependency(c: Commit): CommitId | undefined {
    for (const p of c.parents) {
      if (this.pruned.has(p) && !this.nodes.has(p)) continue;
      if (!this.nodes.has(p) || this.#incomplete.has(p)) return p;
    }
    if (c.body.kind === "delta") {
      const b = c.body.base;
      if (!this.nodes.has(b) || this.#incomplete.has(b)) return b;
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

  /** The common ancestor of the heads with the greatest (ts, id), if any. */
  mergeBase(heads: readonly CommitNode[]): CommitNode | undefined {
    let common: Set<CommitId> | undefined;
    for (const h of heads) {
      const seen = new Set<CommitId>();
      const stack = [h.commit.id];
      while (stack.length) {
        const id = stack.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        const node = this.nodes.get(id);
        if (node) stack.push(...ancestorsOf(node.commit));
      }
      if (common) {
        for (const id of common) if (!seen.has(id)) common.delete(id);
      } else common = seen;
    }
    let best: CommitNode | undefined;
    for (const id of common ?? []) {
      const n = this.nodes.get(id);
      if (n && (!best || compareCommitOrder(n.commit, best.commit) > 0)) {
        best = n;
      }
    }
    return best;
  }

  /** The item's value: the state of its single head, or the merge of its heads. */
  value(): ItemState | undefined {
    const heads = this.heads;
    if (heads.length === 0) return undefined;
    if (heads.length === 1) return this.stateOf(heads[0]);
    const states = heads.map((h) => this.stateOf(h));
    const base = this.mergeBase(heads);
    return mergeHeadStates(states, base ? this.stateOf(base) : undefined);
  }
}
