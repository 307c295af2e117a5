/**
 * Lowest common ancestors in an item's commit graph: the common ancestors of two sets of
 * commits that are not ancestors of another common ancestor. Several heads are merged
 * over them (head_merge.ts), and garbage collection keeps them (compaction_plan.ts).
 *
 * The walk paints ancestors from both sides in descending `(ts, id)` order, as git's
 * merge-base does, and stops as soon as every commit still queued lies below a common
 * ancestor already found: its cost is the history newer than the answer, not the whole
 * graph. A commit's timestamp is always greater than its parents' (ingest and local
 * writes enforce it), so when a commit is taken from the queue every descendant the walk
 * can reach was taken before it, and the answer is exact.
 *
 * @module
 */

import {
  type Commit,
  type CommitId,
  compareCommitOrder,
} from "../commit/commit.ts";

/** A commit of a graph, as the walk needs it. */
export interface GraphCommit {
  readonly commit: Commit;
}

/**
 * The direct ancestry links of a commit: its parents and, for a delta, its base snapshot
 * (always an ancestor; after garbage collection it may be the only kept link).
 */
export function ancestorsOf(c: Commit): readonly CommitId[] {
  return c.body.kind === "delta" ? [...c.parents, c.body.base] : c.parents;
}

const FROM_A = 1, FROM_B = 2, BOTH = 3, BELOW_COMMON = 4;

/** A max-heap of commits by `(ts, id)`. */
class NewestFirst<N extends GraphCommit> {
  readonly #items: N[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(n: N): void {
    const a = this.#items;
    let i = a.length;
    a.push(n);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (compareCommitOrder(a[up].commit, n.commit) >= 0) break;
      a[i] = a[up];
      i = up;
    }
    a[i] = n;
  }

  pop(): N {
    const a = this.#items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length &&
          compareCommitOrder(a[r].commit, a[l].commit) > 0
        ? r
        : l;
      if (compareCommitOrder(a[c].commit, last.commit) <= 0) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = last;
    return top;
  }
}

/**
 * The lowest common ancestors of commit sets `a` and `b` (each side is the union of its
 * commits' ancestries, the commits included), newest first. Commits the graph does not
 * hold (collected, or not loaded) end the walk along their branch. Empty when the sides
 * share no commit.
 *
 * @example
 * ```ts ignore
 * // r ← x1, r ← x2, {x1, x2} ← a, {x1, x2} ← b (a criss-cross):
 * lowestCommonAncestors((id) => graph.nodes.get(id), [a], [b]); // [x2, x1] (newest first)
 * ```
 */
export function lowestCommonAncestors<N extends GraphCommit>(
  lookup: (id: CommitId) => N | undefined,
  a: readonly N[],
  b: readonly N[],
): N[] {
  const flags = new Map<CommitId, number>();
  const queue = new NewestFirst<N>();
  /** Queued commits not below a common ancestor: while there are none, nothing new. */
  let open = 0;
  const mark = (n: N, f: number) => {
    const id = n.commit.id;
    const before = flags.get(id);
    const now = (before ?? 0) | f;
    if (now === before) return;
    flags.set(id, now);
    if (before === undefined) {
      queue.push(n);
      if (!(now & BELOW_COMMON)) open++;
    } else if (before >= 0 && !(before & BELOW_COMMON) && now & BELOW_COMMON) {
      open--;
    }
  };
  for (const n of a) mark(n, FROM_A);
  for (const n of b) mark(n, FROM_B);
  const found: N[] = [];
  while (open > 0 && queue.size > 0) {
    const n = queue.pop();
    const id = n.commit.id;
    let f = flags.get(id)!;
    flags.set(id, -1); // taken: later marks (impossible by the timestamp order) are ignored
    if (!(f & BELOW_COMMON)) {
      open--;
      if ((f & BOTH) === BOTH) {
        found.push(n);
        f |= BELOW_COMMON;
      }
    }
    for (const p of ancestorsOf(n.commit)) {
      const pn = lookup(p);
      if (pn && flags.get(p) !== -1) mark(pn, f);
    }
  }
  return found;
}
