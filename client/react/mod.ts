/**
 * React bindings for Capra (`@capra/capra/react`, React 19 as a peer dependency): put a
 * database (and optionally its {@link BrowserSync}) in a {@link CapraProvider}, then
 * read it with hooks built on `useSyncExternalStore`. Each hook re-renders its
 * component only when what it returns changed: `useItem` when that item changes,
 * `useQuery` when the query's results do (membership, order or a result's value), and
 * `useSyncStatus` when the sync state does.
 *
 * @example
 * ```tsx ignore
 * import { createRoot } from "react-dom/client";
 * import { openBrowserDatabase } from "@capra/capra/client";
 * import { CapraProvider, useQuery } from "@capra/capra/react";
 *
 * function Todos() {
 *   const { items } = useQuery({ source: "/todo/home", sortBy: "text" });
 *   return <ul>{items.map((i) => <li key={i.key}>{String(i.get("text"))}</li>)}</ul>;
 * }
 * const db = await openBrowserDatabase({ name: "todos", schemas: [todoSchema] });
 * createRoot(document.body).render(<CapraProvider db={db}><Todos /></CapraProvider>);
 * ```
 *
 * @module
 */

// @ts-types="@types/react"
import {
  createContext,
  createElement,
  type ReactNode,
  useContext,
  useMemo,
  useSyncExternalStore,
} from "react";
import type { Database } from "../../lib/database/database.ts";
import type { Item } from "../../lib/core/item.ts";
import type { QueryOptions } from "../../lib/query/query.ts";
import type { Schema } from "../../lib/schema/schema.ts";
import type { DefsOf } from "../../lib/schema/typed.ts";
import type { BrowserSync, SyncState } from "../browser_sync.ts";
import { ItemWatch } from "./item_watch.ts";
import { QueryHandle, type QueryView } from "./query_handle.ts";

export { ORPHAN_QUERY_MS, type QueryView } from "./query_handle.ts";

interface CapraContextValue {
  readonly db: Database;
  readonly sync: BrowserSync | null;
  readonly items: ItemWatch;
}

const CapraContext = createContext<CapraContextValue | null>(null);

/** Props of {@link CapraProvider}. */
export interface CapraProviderProps {
  /** The database the hooks below read. */
  readonly db: Database;
  /** Its sync, for {@link useSyncStatus}. */
  readonly sync?: BrowserSync;
  /** Receives errors of background work (opening a repository for `useItem`). */
  readonly onError?: (error: unknown) => void;
  readonly children?: ReactNode;
}

/** Makes a database (and its sync) available to the hooks of its children. */
export function CapraProvider(props: CapraProviderProps): ReactNode {
  const { db, sync, onError } = props;
  const value = useMemo<CapraContextValue>(() => ({
    db,
    sync: sync ?? null,
    items: new ItemWatch(
      db,
      onError ?? ((e) => console.error("capra react:", e)),
    ),
  }), [db, sync, onError]);
  return createElement(CapraContext.Provider, { value }, props.children);
}

function useCapra(hook: string): CapraContextValue {
  const v = useContext(CapraContext);
  if (!v) {
    throw new Error(
      `${hook} must be called inside <CapraProvider db={…}>: wrap your app in it`,
    );
  }
  return v;
}

/** The provider's database. */
export function useDatabase(): Database {
  return useCapra("useDatabase").db;
}

const noSubscribe = () => () => {};

/**
 * The item at `path` (`/type/repo/item`), kept current: the component re-renders when
 * this item changes (here, in another tab, or on a peer), and only then. Undefined
 * while the item does not exist or its repository is still opening (it is opened on
 * first use). Pass null for no item. With a `schema` from `defineSchema` the item is
 * typed by it (undefined when the item follows another schema).
 */
export function useItem<S extends Schema>(
  path: string | null | undefined,
  schema: S,
): Item<DefsOf<S>> | undefined;
export function useItem(path: string | null | undefined): Item | undefined;
export function useItem(
  path: string | null | undefined,
  schema?: Schema,
): Item | undefined {
  const { db, items } = useCapra("useItem");
  const subscribe = useMemo(
    () =>
      path ? (wake: () => void) => items.subscribe(path, wake) : noSubscribe,
    [items, path],
  );
  useSyncExternalStore(
    subscribe,
    () => path ? items.version(path) : 0,
    () => 0,
  );
  if (!path || db.closed) return undefined;
  try {
    const item = db.item(path);
    return schema && item?.schema.ns !== schema.ns ? undefined : item;
  } catch {
    return undefined; // its repository is not open yet
  }
}

/**
 * A live query ({@link QueryOptions}: `source`, `schema`, `predicate`, `sortBy`,
 * `descending`, `limit`, `ctx`): its results, whether the first scan is done, and its
 * last error. The component re-renders once per batch of changes to the results, never
 * for changes that leave them as they were. The query is rebuilt when `source`,
 * `schema`, a `sortBy` field name, `descending`, `limit` or `ctx` change, or an entry
 * of `deps`; `predicate` and key functions are taken from the render that built it, so
 * give them their inputs through `ctx` (or list those inputs in `deps`).
 *
 * @example
 * ```tsx ignore
 * const { items, ready } = useQuery({
 *   source: "/note/mine",
 *   predicate: (n, q) => String(n.get("title")).includes(q),
 *   ctx: search,
 *   sortBy: "updated",
 *   descending: true,
 * });
 * ```
 */
export function useQuery<Ctx = undefined, S extends Schema = Schema>(
  options: QueryOptions<Ctx, S>,
  deps: readonly unknown[] = [],
): QueryView<Item<DefsOf<S>>> {
  const { db } = useCapra("useQuery");
  const { source, schema, sortBy, descending, limit, ctx } = options;
  const handle = useMemo(
    () => new QueryHandle(db, options as unknown as QueryOptions<Ctx>),
    // The options object is new on every render: only these parts rebuild it.
    [
      db,
      source,
      schema,
      typeof sortBy === "string" ? sortBy : null,
      descending,
      limit,
      ctx,
      ...deps,
    ],
  );
  // Typed items are the same objects: only their static type differs.
  return useSyncExternalStore(
    handle.subscribe,
    handle.getSnapshot,
    handle.getSnapshot,
  ) as QueryView<Item<DefsOf<S>>>;
}

const NO_SYNC = (_: () => void) => () => {};

/**
 * The provider's sync state ({@link SyncState}: online, network, pending commits,
 * transport, …), re-rendering on every change; null without a `sync` in the provider.
 */
export function useSyncStatus(): SyncState | null {
  const { sync } = useCapra("useSyncStatus");
  const subscribe = useMemo(
    () =>
      sync
        ? (wake: () => void) => {
          sync.addEventListener("statechange", wake);
          return () => sync.removeEventListener("statechange", wake);
        }
        : NO_SYNC,
    [sync],
  );
  const get = () => sync?.state ?? null;
  return useSyncExternalStore(subscribe, get, get);
}
