/**
 * Live queries: the items of a repository (or of another query) that pass a predicate,
 * kept sorted as commits arrive, local or remote.
 *
 * Lifecycle: the first scan runs as a coroutine in slices of `SCAN_SLICE_MS` (yield.ts) and
 * resolves `ready`. Afterwards every item change is queued and applied in a microtask
 * (reading `results`, `count` or `has()` applies queued changes at once), re-evaluating
 * only the touched items and moving them by binary search. Listeners are called once per
 * microtask batch.
 *
 * @module
 */

import { Item } from "../core/item.ts";
import type { ItemEntry } from "../core/item_entry.ts";
import type { OpenRepository } from "../core/open_repository.ts";
import { type ItemPath, type RepoPath, repoPathOf } from "../path.ts";
import {
  checkQueryOptions,
  QueryError,
  type QueryErrorPhase,
  type QueryPredicate,
  type QuerySource,
  type QueryStats,
  type ResultsChange,
  type ResultsListener,
  type SortKeyFunction,
} from "./options.ts";
import { normalizeSortKey, type SortKey } from "./sort_key.ts";
import { type RowRun, SortedRows } from "./sorted_rows.ts";
import { scanCandidates } from "./scan.ts";
import type { Schema } from "../schema/schema.ts";
import type { DefsOf } from "../schema/typed.ts";

/**
 * Options of `db.query()`. With `schema` a schema object from `defineSchema`, the
 * predicate's and key function's items are typed by it (and so are the results).
 */
export interface QueryOptions<Ctx = undefined, S extends Schema = Schema> {
  /** A repository path (`/type/repo`) or another query (chaining). */
  readonly source: string | Query<unknown, Schema>;
  /**
   * Only items of this schema's namespace (a namespace such as `"todo"`, or a schema).
   * Items this replica cannot read (a schema version not registered here, see
   * `Item.isReadable`) are never results.
   */
  readonly schema?: string | S;
  /** Only items for which this returns true (all items when absent). */
  readonly predicate?: QueryPredicate<Ctx, DefsOf<S>>;
  /**
   * Order: a field name (its value is the key) or a key function. Without it, results
   * are ordered by path. Equal keys are always ordered by path.
   */
  readonly sortBy?: string | SortKeyFunction<Ctx, DefsOf<S>>;
  /** Largest key first (equal keys still ordered by path, ascending). */
  readonly descending?: boolean;
  /** Only the first `limit` results of the full order. */
  readonly limit?: number;
  /** Passed to `predicate` and `sortBy`. */
  readonly ctx?: Ctx;
  /** Names the query in error messages (default: from its source). */
  readonly name?: string;
  /** Called when the predicate, the sort key or a listener throws. */
  readonly onError?: (error: QueryError) => void;
}

/** Constructs a query (set by the class: its constructor is private). */
let newQuery: <Ctx, S extends Schema>(
  db: QuerySource,
  options: QueryOptions<Ctx, S>,
) => Query<Ctx, S>;

/** A live query over `options.source`, reading from `db` (see `Database.query`). */
export function openQuery<Ctx, S extends Schema = Schema>(
  db: QuerySource,
  options: QueryOptions<Ctx, S>,
): Query<Ctx, S> {
  return newQuery(db, options);
}

const NO_MATCH: unique symbol = Symbol("no match");
type Evaluation = SortKey | typeof NO_MATCH;
type DeltaListener = (paths: readonly ItemPath[]) => void;

const Notify = { None: 0, Initial: 1, Changes: 2 } as const;
type Notify = typeof Notify[keyof typeof Notify];

/**
 * A live query. Create it with `db.query()`; close it when done.
 *
 * @example
 * ```ts ignore
 * const open = db.query({
 *   source: "/todo/home",
 *   schema: "todo",
 *   predicate: (item) => item.get("done") === false,
 *   sortBy: "text",
 * });
 * await open.ready;
 * const off = open.onResultsChanged(() => render(open.results));
 * off();
 * open.close();
 * ```
 */
export class Query<Ctx = undefined, S extends Schema = Schema> {
  readonly #db: QuerySource;
  readonly #base: Query<unknown> | undefined;
  readonly #repoPath: RepoPath | undefined;
  // Bound to ctx, so that Ctx appears in no field and Query<C> is a Query<unknown>.
  readonly #predicate: ((item: Item) => boolean) | undefined;
  readonly #keyFn: ((item: Item) => SortKey) | undefined;
  readonly #ns: string | undefined;
  readonly #limit: number;
  readonly #name: string;
  readonly #rows: SortedRows;
  readonly #listeners = new Set<ResultsListener>();
  readonly #errorListeners = new Set<(error: QueryError) => void>();
  readonly #downstream = new Set<DeltaListener>();
  #pending = new Set<ItemPath>();
  #changed = new Set<ItemPath>();
  #notify: Notify = Notify.None;
  #scheduled = false;
  #scanning = true;
  #closed = false;
  #unsubscribe: (() => void) | undefined;
  #error: QueryError | undefined;
  #visible: readonly Item[] | null = null;
  #predicateCalls = 0;
  #sortKeyCalls = 0;
  /** Resolves when the first scan is done (or the query was closed). Never rejects. */
  readonly ready: Promise<void>;

  static {
    newQuery = (db, options) => new Query(db, options);
  }

  /** Queries come from `db.query()`. */
  private constructor(db: QuerySource, options: QueryOptions<Ctx, S>) {
    checkQueryOptions(options);
    const { source, limit, schema } = options;
    // Typed items are the same objects: only their static type differs.
    const sortBy = options.sortBy as string | SortKeyFunction<Ctx> | undefined;
    const predicate = options.predicate as QueryPredicate<Ctx> | undefined;
    const ctx = options.ctx as Ctx;
    if (typeof sortBy === "string") {
      this.#keyFn = (item) => normalizeSortKey(item.get(sortBy));
    } else if (sortBy) {
      this.#keyFn = (item) => normalizeSortKey(sortBy(item, ctx));
    }
    this.#db = db;
    this.#predicate = predicate && ((item) => predicate(item, ctx));
    this.#ns = typeof schema === "string" ? schema : schema?.ns;
    this.#limit = limit ?? Infinity;
    this.#rows = new SortedRows(options.descending === true);
    if (options.onError) this.#errorListeners.add(options.onError);
    if (source instanceof Query) {
      this.#base = source as Query<unknown>;
      this.#name = options.name ?? `(${this.#base.name})`;
      this.#unsubscribe = this.#base.#addDownstream((paths) => {
        for (const p of paths) this.#enqueue(p);
      });
    } else if (typeof source === "string") {
      this.#repoPath = repoPathOf(source);
      this.#name = options.name ?? this.#repoPath;
      if (db.isOpen(this.#repoPath)) {
        this.#subscribe(db.repository(this.#repoPath));
      }
    } else {
      throw new TypeError(
        "Query source must be a repository path or a query",
      );
    }
    this.ready = this.#run();
  }

  /** The query's name in error messages. */
  get name(): string {
    return this.#name;
  }

  /** The results in order (at most `limit`). The array is a snapshot: it never changes. */
  get results(): readonly Item<DefsOf<S>>[] {
    this.#sync();
    if (this.#limit === Infinity) return this.#rows.items();
    return this.#visible ??= this.#rows.firstItems(this.#limit);
  }

  /** Number of results. */
  get count(): number {
    this.#sync();
    return Math.min(this.#rows.size, this.#limit);
  }

  /** True when the item at `path` is a result. */
  has(path: string): boolean {
    this.#sync();
    return this.#visibleHas(path as ItemPath);
  }

  /** The last error thrown by the predicate, the sort key or a listener. */
  get error(): QueryError | undefined {
    return this.#error;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Work counters. */
  get stats(): QueryStats {
    return {
      predicateCalls: this.#predicateCalls,
      sortKeyCalls: this.#sortKeyCalls,
      comparisons: this.#rows.comparisons,
    };
  }

  /** Listeners of this query: results listeners plus queries chained on it. */
  get listenerCount(): number {
    return this.#listeners.size + this.#downstream.size;
  }

  /**
   * Calls `listener` once per batch of result changes, and once when the first scan
   * ends. Returns an unsubscribe function.
   */
  onResultsChanged(listener: ResultsListener): () => void {
    if (this.#closed) return () => {};
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Calls `listener` with every {@link QueryError}; returns an unsubscribe function. */
  onError(listener: (error: QueryError) => void): () => void {
    if (this.#closed) return () => {};
    this.#errorListeners.add(listener);
    return () => void this.#errorListeners.delete(listener);
  }

  /** Stops the query: it drops every listener and ignores further changes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#listeners.clear();
    this.#errorListeners.clear();
    this.#downstream.clear();
    this.#pending.clear();
    this.#changed.clear();
  }

  /** Closes the query (`using q = db.query(...)`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #subscribe(repo: OpenRepository): void {
    if (this.#unsubscribe || this.#closed) return;
    this.#unsubscribe = repo.onChange((c) => this.#enqueue(c.path));
  }

  #addDownstream(listener: DeltaListener): () => void {
    if (this.#closed) return () => {};
    this.#downstream.add(listener);
    return () => void this.#downstream.delete(listener);
  }

  #visibleHas(path: ItemPath): boolean {
    if (!this.#rows.has(path)) return false;
    return this.#limit === Infinity || this.#rows.indexOf(path) < this.#limit;
  }

  // --- first scan -------------------------------------------------------------

  async #run(): Promise<void> {
    try {
      let run: RowRun | undefined;
      if (this.#base) {
        await this.#base.ready;
        if (this.#closed) return;
        const ns = this.#ns;
        run = await scanCandidates(this.#base.results, this.#rows, {
          toItem: (item) =>
            !item.isReadable || (ns && item.schema.ns !== ns)
              ? undefined
              : item,
          evaluate: (item) => this.#match(item),
          noMatch: NO_MATCH,
          stopped: () => this.#closed,
        });
      } else {
        const path = this.#repoPath!;
        if (!this.#db.isOpen(path)) await this.#db.open(path);
        if (this.#closed) return;
        const repo = this.#db.repository(path);
        this.#subscribe(repo);
        run = await scanCandidates(repo.items.entries(), this.#rows, {
          toItem: (e) => this.#liveItem(repo, e),
          evaluate: (item) => this.#match(item),
          noMatch: NO_MATCH,
          stopped: () => this.#closed || repo.closed,
        });
      }
      if (!run || this.#closed) return;
      this.#rows.reset(run);
      this.#scanning = false;
      this.#notify = Notify.Initial;
      this.#process();
      this.#schedule();
    } catch (e) {
      this.#fail("scan", undefined, e);
    }
  }

  /** The item of an entry when it is live and of the query's schema (scan fast path). */
  #liveItem(repo: OpenRepository, e: ItemEntry): Item | undefined {
    const v = repo.items.valueOf(e);
    if (
      !v || v.deleted || v.unreadable !== undefined ||
      (this.#ns && v.schema.ns !== this.#ns)
    ) {
      return undefined;
    }
    return e.handle instanceof Item ? e.handle : this.#db.item(e.path);
  }

  // --- evaluation -------------------------------------------------------------

  /** The sort key of a matching item, or NO_MATCH. Never throws. */
  #test(item: Item): Evaluation {
    if (
      item.isDeleted || !item.isReadable ||
      (this.#ns && item.schema.ns !== this.#ns)
    ) {
      return NO_MATCH;
    }
    return this.#match(item);
  }

  /** Like #test for an item known to be live and of the query's schema. */
  #match(item: Item): Evaluation {
    if (this.#predicate) {
      this.#predicateCalls++;
      try {
        if (!this.#predicate(item)) return NO_MATCH;
      } catch (e) {
        this.#fail("predicate", item.path, e);
        return NO_MATCH;
      }
    }
    if (!this.#keyFn) return undefined;
    this.#sortKeyCalls++;
    try {
      return this.#keyFn(item);
    } catch (e) {
      this.#fail("sortBy", item.path, e);
      return NO_MATCH;
    }
  }

  #candidate(path: ItemPath): Item | undefined {
    if (this.#base && !this.#base.#visibleHas(path)) return undefined;
    return this.#db.item(path);
  }

  // --- incremental updates -------------------------------------------------------

  #enqueue(path: ItemPath): void {
    if (this.#closed) return;
    this.#pending.add(path);
    if (!this.#scanning) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Applies queued changes of this query and of the queries it is built on. */
  #sync(): void {
    if (this.#closed) return;
    if (this.#base) this.#base.#sync();
    this.#process();
  }

  #process(): void {
    if (this.#scanning || this.#closed || this.#pending.size === 0) return;
    const pending = this.#pending;
    this.#pending = new Set();
    const changed = new Set<ItemPath>();
    for (const path of pending) this.#apply(path, changed);
    if (changed.size === 0) return;
    this.#visible = null;
    for (const p of changed) this.#changed.add(p);
    if (this.#notify === Notify.None) this.#notify = Notify.Changes;
    const paths = [...changed];
    for (const d of [...this.#downstream]) d(paths);
    this.#schedule();
  }

  /** Re-evaluates one item; adds the paths whose visible state changed. */
  #apply(path: ItemPath, changed: Set<ItemPath>): void {
    let item: Item | undefined;
    try {
      item = this.#candidate(path);
    } catch {
      item = undefined; // its repository was closed
    }
    const key = item ? this.#test(item) : NO_MATCH;
    this.#rows.place(
      path,
      key === NO_MATCH ? undefined : { item: item!, key },
      this.#limit,
      changed,
    );
  }

  #flush(): void {
    this.#process();
    if (this.#closed || this.#notify === Notify.None) return;
    const initial = this.#notify === Notify.Initial;
    const change: ResultsChange = {
      initial,
      paths: initial ? [] : [...this.#changed],
    };
    this.#notify = Notify.None;
    this.#changed.clear();
    for (const l of [...this.#listeners]) {
      try {
        l(change);
      } catch (e) {
        this.#fail("listener", undefined, e);
      }
    }
  }

  #fail(phase: QueryErrorPhase, path: ItemPath | undefined, cause: unknown) {
    const error = new QueryError(this.#name, phase, path, cause);
    this.#error = error;
    if (this.#errorListeners.size === 0) console.error("capra:", error);
    for (const l of [...this.#errorListeners]) {
      try {
        l(error);
      } catch (e) {
        console.error("capra: query onError listener threw:", e);
      }
    }
  }
}
