/**
 * What a live query reads from (its source) and what it calls: predicates, sort keys,
 * listeners, and its errors.
 *
 * @module
 */

import type { Item } from "../core/item.ts";
import type { OpenRepository } from "../core/open_repository.ts";
import type { ItemPath, RepoPath } from "../path.ts";
import type { SortKey } from "./sort_key.ts";
import type { FieldDefs, UntypedDefs } from "../schema/typed.ts";

/** What a query reads from its database: the open repositories and their items. */
export interface QuerySource {
  /** True when the repository is open. */
  isOpen(repo: RepoPath): boolean;
  /** Opens the repository. */
  open(repo: RepoPath): Promise<OpenRepository>;
  /** The open repository (throws when it is not open). */
  repository(repo: RepoPath): OpenRepository;
  /** The item at `path`, or undefined. */
  item(path: string): Item | undefined;
}

/** Decides whether an item is a result. `ctx` is the query's `ctx` option. */
export type QueryPredicate<Ctx, D extends FieldDefs = UntypedDefs> = (
  item: Item<D>,
  ctx: Ctx,
) => boolean;

/**
 * The sort key of an item. A key function (not a comparator): it is called once per item
 * evaluation and its key is cached, so keeping results sorted costs O(log n) key
 * comparisons per change and no further calls of your code.
 */
export type SortKeyFunction<Ctx, D extends FieldDefs = UntypedDefs> = (
  item: Item<D>,
  ctx: Ctx,
) => SortKey;

/** What a results notification describes. */
export interface ResultsChange {
  /** True for the notification that ends the first scan. */
  readonly initial: boolean;
  /** Paths whose membership, position or value changed (empty when `initial`). */
  readonly paths: readonly ItemPath[];
}

/** Called once per batch of changes to a query's results. */
export type ResultsListener = (change: ResultsChange) => void;

/** Counters of a query's work (tests and profiling read them). */
export interface QueryStats {
  /** Predicate calls. */
  readonly predicateCalls: number;
  /** Sort key computations (field reads or key function calls). */
  readonly sortKeyCalls: number;
  /** Comparisons of rows. */
  readonly comparisons: number;
}

/** Which user code failed. */
export type QueryErrorPhase = "predicate" | "sortBy" | "listener" | "scan";

/**
 * A failure of code a query calls. The query keeps running: an item whose predicate or
 * key throws is left out of the results.
 */
export class QueryError extends Error {
  /** The item being evaluated, if any. */
  readonly path: ItemPath | undefined;
  /** Which function threw. */
  readonly phase: QueryErrorPhase;

  constructor(
    query: string,
    phase: QueryErrorPhase,
    path: ItemPath | undefined,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `Query ${query}: ${phase} threw${path ? ` on ${path}` : ""}: ${why}`,
      { cause },
    );
    this.name = "QueryError";
    this.path = path;
    this.phase = phase;
  }
}

/**
 * Throws a TypeError or RangeError describing the first invalid query option.
 *
 * @example
 * ```ts ignore
 * checkQueryOptions({ source: "/todo/home", limit: -1 }); // RangeError
 * ```
 */
export function checkQueryOptions(
  options: {
    readonly predicate?: unknown;
    readonly sortBy?: unknown;
    readonly limit?: number;
  },
): void {
  const { predicate, sortBy, limit } = options;
  if (predicate !== undefined && typeof predicate !== "function") {
    throw new TypeError("Query predicate must be a function");
  }
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new RangeError(
      `Query limit must be a non-negative integer, got ${limit}`,
    );
  }
  if (
    sortBy !== undefined && typeof sortBy !== "string" &&
    typeof sortBy !== "function"
  ) {
    throw new TypeError("Query sortBy must be a field name or a function");
  }
}
