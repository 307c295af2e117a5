/**
 * A live query as an external store for `useSyncExternalStore`: an immutable snapshot
 * (results, ready, error) replaced once per batch of result changes, so a component
 * re-renders only when what it shows changed. The query runs while a component is
 * subscribed; a handle created by a render React threw away (StrictMode, a suspended
 * render) closes itself after {@link ORPHAN_QUERY_MS}.
 *
 * @module
 */

import type { Database } from "../../lib/database/database.ts";
import type { Item } from "../../lib/core/item.ts";
import type { Query } from "../../lib/query/query.ts";
import type { QueryError } from "../../lib/query/options.ts";
import type { QueryOptions } from "../../lib/query/query.ts";

/** A query no component subscribed to within this time is closed. */
export const ORPHAN_QUERY_MS = 1000;

/** What `useQuery` returns. */
export interface QueryView<I = Item> {
  /** The results in order (a snapshot: replaced, never changed). */
  readonly items: readonly I[];
  /** False until the first scan is done. */
  readonly ready: boolean;
  /** The last error of the predicate, sort key or a listener (see {@link QueryError}). */
  readonly error: QueryError | undefined;
  /** The query itself (chain other queries on it). */
  readonly query: Query<unknown>;
}

/** One hook call's live query. */
export class QueryHandle<Ctx> {
  readonly #db: Database;
  readonly #options: QueryOptions<Ctx>;
  readonly #listeners = new Set<() => void>();
  #query: Query<Ctx> | null = null;
  #stop: (() => void) | null = null;
  #snapshot!: QueryView;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(db: Database, options: QueryOptions<Ctx>) {
    this.#db = db;
    this.#options = options;
    this.#start();
    this.#closeTimer = setTimeout(() => this.#closeIfUnused(), ORPHAN_QUERY_MS);
  }

  #start(): void {
    const q = this.#db.query(this.#options);
    this.#query = q;
    this.#snapshot = this.#view(q, false);
    const update = () => {
      if (this.#query !== q) return;
      this.#snapshot = this.#view(q, this.#snapshot.ready);
      for (const l of [...this.#listeners]) l();
    };
    const off = q.onResultsChanged(update);
    const offError = q.onError(update);
    this.#stop = () => {
      off();
      offError();
      q.close();
    };
    q.ready.then(() => {
      if (this.#query !== q || this.#snapshot.ready) return;
      this.#snapshot = this.#view(q, true);
      for (const l of [...this.#listeners]) l();
    });
  }

  #view(q: Query<Ctx>, ready: boolean): QueryView {
    return {
      items: q.results,
      ready,
      error: q.error,
      query: q as Query<unknown>,
    };
  }

  /** The current snapshot (stable until the results change). */
  readonly getSnapshot = (): QueryView => this.#snapshot;

  /** useSyncExternalStore's subscribe: (re)starts the query if it was closed. */
  readonly subscribe = (listener: () => void): () => void => {
    clearTimeout(this.#closeTimer);
    this.#listeners.add(listener);
    if (!this.#query && !this.#db.closed) {
      this.#start();
      listener(); // a fresh snapshot
    }
    return () => {
      this.#listeners.delete(listener);
      // StrictMode unsubscribes and subscribes again at once: wait a tick.
      clearTimeout(this.#closeTimer);
      this.#closeTimer = setTimeout(() => this.#closeIfUnused(), 0);
    };
  };

  #closeIfUnused(): void {
    if (this.#listeners.size || !this.#query) return;
    this.#stop?.();
    this.#stop = null;
    this.#query = null;
  }
}
