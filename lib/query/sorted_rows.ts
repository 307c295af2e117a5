/**
 * The sorted result rows of a query: parallel arrays of items, sort keys and paths kept
 * in order by binary-search insertion and removal, so one change costs O(log n)
 * comparisons (plus one array move), never a re-sort.
 *
 * @module
 */

import type { Item } from "../core/item.ts";
import type { ItemPath } from "../path.ts";
import { compareSortKeys, type SortKey } from "./sort_key.ts";

/** A sorted run of rows (the scan builds runs per slice, then merges them). */
export interface RowRun {
  items: Item[];
  keys: SortKey[];
  paths: ItemPath[];
}

/** An empty run. */
export function emptyRun(): RowRun {
  return { items: [], keys: [], paths: [] };
}

/**
 * Result rows in query order: by sort key (descending when asked), equal keys by path.
 *
 * @example
 * ```ts ignore
 * const rows = new SortedRows(false);
 * rows.insert(item, item.get("n"));
 * rows.remove(item.path);
 * ```
 */
export class SortedRows {
  #items: Item[] = [];
  #keys: SortKey[] = [];
  #paths: ItemPath[] = [];
  /** True once `#items` was handed out: the next change copies it first. */
  #shared = false;
  readonly #keyByPath = new Map<ItemPath, SortKey>();
  readonly #descending: boolean;
  /** Comparisons made so far (tests and stats read it). */
  comparisons = 0;

  constructor(descending: boolean) {
    this.#descending = descending;
  }

  /** Number of rows. */
  get size(): number {
    return this.#paths.length;
  }

  /** True when a path is a row. */
  has(path: ItemPath): boolean {
    return this.#keyByPath.has(path);
  }

  /** The stored sort key of a row. */
  keyOf(path: ItemPath): SortKey {
    return this.#keyByPath.get(path);
  }

  /** The path at a position. */
  pathAt(index: number): ItemPath {
    return this.#paths[index];
  }

  /** Query order of two rows. */
  compare(ka: SortKey, pa: ItemPath, kb: SortKey, pb: ItemPath): number {
    this.comparisons++;
    const ta = typeof ka;
    // Fast path: keys are normalized, so two strings or two numbers compare directly.
    const c = ta === typeof kb && (ta === "string" || ta === "number")
      ? (ka! < kb! ? -1 : ka! > kb! ? 1 : 0)
      : compareSortKeys(ka, kb);
    if (c !== 0) return this.#descending ? -c : c;
    return pa < pb ? -1 : pa > pb ? 1 : 0;
  }

  /** First position whose row is not before (key, path). */
  #lowerBound(key: SortKey, path: ItemPath): number {
    let lo = 0, hi = this.#paths.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(this.#keys[mid], this.#paths[mid], key, path) < 0) {
        lo = mid + 1;
      } else hi = mid;
    }
    return lo;
  }

  /** The position of a row, or -1. */
  indexOf(path: ItemPath): number {
    if (!this.#keyByPath.has(path)) return -1;
    const i = this.#lowerBound(this.#keyByPath.get(path), path);
    return this.#paths[i] === path ? i : -1;
  }

  #ownItems(): Item[] {
    if (this.#shared) {
      this.#items = this.#items.slice();
      this.#shared = false;
    }
    return this.#items;
  }

  /** Inserts a row (which must not be present); returns its position. */
  insert(item: Item, key: SortKey): number {
    const path = item.path;
    const i = this.#lowerBound(key, path);
    this.#ownItems().splice(i, 0, item);
    this.#keys.splice(i, 0, key);
    this.#paths.splice(i, 0, path);
    this.#keyByPath.set(path, key);
    return i;
  }

  /** Removes a row; returns the position it had, or -1 when absent. */
  remove(path: ItemPath): number {
    const i = this.indexOf(path);
    if (i < 0) return -1;
    this.#ownItems().splice(i, 1);
    this.#keys.splice(i, 1);
    this.#paths.splice(i, 1);
    this.#keyByPath.delete(path);
    return i;
  }

  /**
   * Moves `path` to where `row` belongs (removes it when `row` is undefined) and adds to
   * `changed` the paths whose place among the first `limit` rows changed: the path
   * itself, and the row pushed out of or pulled into the first `limit`. A row whose key
   * did not change counts as changed when visible (its value changed).
   */
  place(
    path: ItemPath,
    row: { readonly item: Item; readonly key: SortKey } | undefined,
    limit: number,
    changed: Set<ItemPath>,
  ): void {
    if (this.has(path)) {
      if (row && compareSortKeys(this.keyOf(path), row.key) === 0) {
        // Same place; the value changed, which chained queries must see.
        if (limit === Infinity || this.indexOf(path) < limit) changed.add(path);
        return;
      }
      const i = this.remove(path);
      if (i < limit) {
        changed.add(path);
        if (this.size >= limit) changed.add(this.pathAt(limit - 1));
      }
    }
    if (!row) return;
    const j = this.insert(row.item, row.key);
    if (j < limit) {
      changed.add(path);
      if (this.size > limit) changed.add(this.pathAt(limit));
    }
  }

  /** The items in order. The array never changes afterwards (copy on write). */
  items(): readonly Item[] {
    this.#shared = true;
    return this.#items;
  }

  /** A copy of the first `n` items. */
  firstItems(n: number): Item[] {
    return this.#items.slice(0, n);
  }

  /** Replaces every row with a sorted run. */
  reset(run: RowRun): void {
    this.#items = run.items;
    this.#keys = run.keys;
    this.#paths = run.paths;
    this.#shared = false;
    this.#keyByPath.clear();
    for (let i = 0; i < run.paths.length; i++) {
      this.#keyByPath.set(run.paths[i], run.keys[i]);
    }
  }

  /** Sorts an unsorted run in place (natively; used for one scan slice). */
  sortRun(run: RowRun): RowRun {
    const order = run.paths.map((_, i) => i);
    const { keys, paths, items } = run;
    order.sort((a, b) => this.compare(keys[a], paths[a], keys[b], paths[b]));
    return {
      items: order.map((i) => items[i]),
      keys: order.map((i) => keys[i]),
      paths: order.map((i) => paths[i]),
    };
  }

  /** Merges two sorted runs into one. */
  mergeRuns(a: RowRun, b: RowRun): RowRun {
    const out = emptyRun();
    let i = 0, j = 0;
    while (i < a.paths.length && j < b.paths.length) {
      const fromA =
        this.compare(a.keys[i], a.paths[i], b.keys[j], b.paths[j]) <= 0;
      const src = fromA ? a : b, k = fromA ? i++ : j++;
      out.items.push(src.items[k]);
      out.keys.push(src.keys[k]);
      out.paths.push(src.paths[k]);
    }
    for (const [src, from] of [[a, i], [b, j]] as const) {
      for (let k = from; k < src.paths.length; k++) {
        out.items.push(src.items[k]);
        out.keys.push(src.keys[k]);
        out.paths.push(src.paths[k]);
      }
    }
    return out;
  }
}
