/**
 * The value of several heads of an item, as a pure function of the set of heads.
 *
 * The heads are taken in `(ts, id)` order and folded: each next head joins the merge of
 * those before it. The base of that step is the lowest common ancestor of the heads so
 * far and the next head (merge_base.ts); when there are several, their own merged value
 * is the base (a virtual base, computed the same way, as git's recursive strategy does).
 * Consecutive heads over the same base form one N-way merge (`mergeHeadStates`, the rules
 * of DESIGN.md section 3), so when the heads share nothing newer than one common
 * ancestor (the usual case) the value is exactly the N-way merge over it. When they do
 * share newer commits (a criss-cross: two replicas each merged the same concurrent heads
 * and edited on; or three heads of which two share newer history), those shared changes
 * are part of the base of the step that meets them, so they count once, and a later
 * edit wins over the stale value it replaced.
 *
 * Values of head sets (and of virtual bases) are memoized per graph until the graph's
 * ancestry changes.
 *
 * @module
 */

import { type CommitId, compareCommitOrder } from "../commit/commit.ts";
import { type ItemState, mergeHeadStates } from "../merge/merge.ts";
import { type GraphCommit, lowestCommonAncestors } from "./merge_base.ts";

/** Memoized values kept per graph before the memo is cleared. */
const MAX_MEMOIZED_VALUES = 256;

/** What merging heads needs of a graph. */
export interface MergeSource<N extends GraphCommit> {
  /** A complete commit held by the graph. */
  lookup(id: CommitId): N | undefined;
  /** The typed state of a commit. */
  stateOf(n: N): ItemState;
}

/** One N-way merge in progress: heads over one base. */
interface Step<N> {
  /** The base commits (several: a virtual base), oldest first; null until set. */
  bases: N[] | null;
  baseKey: string;
  states: ItemState[];
}

function keyOf(nodes: readonly GraphCommit[]): string {
  return nodes.map((n) => n.commit.id).sort().join(" ");
}

/** Computes (and memoizes) values of sets of heads of one graph. */
export class HeadMerger<N extends GraphCommit> {
  #memo: Map<string, ItemState> | null = null;

  constructor(private readonly source: MergeSource<N>) {}

  /** Forgets memoized values (the graph's ancestry changed). */
  clear(): void {
    this.#memo = null;
  }

  /**
   * The value of `heads`: commits none of which is an ancestor of another (an item's
   * heads, or the lowest common ancestors of two sides). Undefined when empty.
   */
  valueOf(heads: readonly N[]): ItemState | undefined {
    if (heads.length === 0) return undefined;
    if (heads.length === 1) return this.source.stateOf(heads[0]);
    const key = keyOf(heads);
    const known = this.#memo?.get(key);
    if (known) return known;
    const sorted = [...heads].sort((a, b) =>
      compareCommitOrder(a.commit, b.commit)
    );
    const lookup = (id: CommitId) => this.source.lookup(id);
    const tips: N[] = [sorted[0]];
    let step: Step<N> = {
      bases: null,
      baseKey: "",
      states: [this.source.stateOf(sorted[0])],
    };
    for (let i = 1; i < sorted.length; i++) {
      const next = sorted[i];
      const bases = lowestCommonAncestors(lookup, tips, [next]).reverse();
      const baseKey = keyOf(bases);
      if (step.bases === null) {
        step.bases = bases;
        step.baseKey = baseKey;
      } else if (baseKey !== step.baseKey) {
        // A new base: what was merged so far is one side of the next merge.
        step = { bases, baseKey, states: [this.#merge(step)] };
      }
      step.states.push(this.source.stateOf(next));
      tips.push(next);
    }
    const value = this.#merge(step);
    const memo = this.#memo ??= new Map();
    if (memo.size >= MAX_MEMOIZED_VALUES) memo.clear();
    memo.set(key, value);
    return value;
  }

  /** The N-way merge of a step's states over its (possibly virtual) base. */
  #merge(step: Step<N>): ItemState {
    return mergeHeadStates(step.states, this.valueOf(step.bases ?? []));
  }
}
