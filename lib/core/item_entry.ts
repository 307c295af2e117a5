/**
 * The per-item bookkeeping of a repository: where the item's undecoded records lie in the
 * log, its history left undecoded by a checkpoint, its commit graph once resolved, its
 * cached value and its listeners. One entry per item key, created when the log is indexed
 * or when the item is first written.
 *
 * @module
 */

import type { CommitId } from "../commit/commit.ts";
import type { ItemState } from "../merge/merge.ts";
import type { ItemPath, RepoPath } from "../path.ts";
import type { ItemGraph } from "./item_graph.ts";

/** What changed in a repository. */
export interface ItemChange {
  /** `/type/repo/item` */
  readonly path: ItemPath;
  /** The item key (last path segment). */
  readonly key: string;
  /** true for local writes, false for commits from peers */
  readonly local: boolean;
}

/** Called after items change. */
export type ChangeListener = (change: ItemChange) => void;

/** The part of an item's history a checkpoint left undecoded. */
export interface LazyHistory {
  /** [start, end) pairs of the records reads do not need, decoded on demand. */
  readonly records: Uint32Array | Float64Array;
  /** Id prefixes the checkpoint gave for the records it named (until decoded). */
  named: Map<number, string> | null;
  /** Memo of delta counting: a snapshot id and how many of `records` are deltas on it. */
  base: CommitId | null;
  deltas: number;
}

/** Per-item bookkeeping. */
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
  /** The item's handle (an `Item`), created on first use. */
  handle: unknown = null;
  #path: ItemPath | null = null;
  constructor(readonly key: string, readonly repo: RepoPath) {}
  /** `/type/repo/item`, built on first use (most entries never need it). */
  get path(): ItemPath {
    return this.#path ??= `${this.repo}/${this.key}` as ItemPath;
  }
}

/** Commit records of an entry (decoded or not). */
export function recordCount(e: ItemEntry): number {
  const lazy = e.hist ? e.hist.records.length / 2 : 0;
  if (e.graph) return e.graph.nodes.size + lazy;
  return (e.start >= 0 ? 1 : 0) + (e.more ? e.more.length / 2 : 0) + lazy;
}

/** Offsets as compact typed arrays (4 bytes each while the log is below 4 GiB). */
export function offsetArray(offsets: number[]): Uint32Array | Float64Array {
  let max = 0;
  for (const x of offsets) if (x > max) max = x;
  return max < 2 ** 32 ? Uint32Array.from(offsets) : Float64Array.from(offsets);
}
