/**
 * Capra in the browser: a {@link Database} on IndexedDB whose session key is a
 * non-extractable CryptoKey, tabs kept consistent over a BroadcastChannel, and a
 * {@link BrowserSync} that keeps repositories in sync with a server.
 *
 * @example
 * ```ts ignore
 * import { BrowserSync, openBrowserDatabase } from "./client/mod.ts";
 *
 * const db = await openBrowserDatabase({ name: "todos" });
 * await db.open("/todo/home");
 * const sync = new BrowserSync(db, { serverUrl: location.origin });
 * sync.watch("/todo/home");
 * ```
 *
 * @module
 */

import { Database, type DatabaseOptions } from "../lib/core/database.ts";
import { IdbStorage } from "./idb_storage.ts";
import { browserSigningKey } from "./session_key.ts";
import { linkTabs } from "./tab_channel.ts";

export { Database } from "../lib/core/database.ts";
export { Item } from "../lib/core/item.ts";
export { Repository } from "../lib/core/repository.ts";
export type { CommitInfo, ItemChange } from "../lib/core/repository.ts";
export { Query } from "../lib/query/query.ts";
export type { Schema } from "../lib/schema/schema.ts";
export { TrustedSessions } from "../lib/core/session.ts";
export type { SessionRecord } from "../lib/core/session.ts";
export { decodeBase64Url, encodeBase64Url } from "../lib/encoding/base64url.ts";
export { IdbStorage } from "./idb_storage.ts";
export { BrowserSync } from "./browser_sync.ts";
export type {
  BrowserSyncOptions,
  SyncState,
  SyncStatus,
} from "./browser_sync.ts";

/** Options of {@link openBrowserDatabase}. */
export interface BrowserDatabaseOptions
  extends Omit<DatabaseOptions, "storage" | "signer"> {
  /** IndexedDB database name (one replica per name and origin). */
  readonly name: string;
  /** Share commits with other tabs of this origin (default true). */
  readonly linkTabs?: boolean;
  /** Called when another tab deletes this database (logout): reload or leave then. */
  readonly onClearedElsewhere?: () => void;
}

/**
 * Opens (creating on first use) a database kept in IndexedDB. Its data and its session
 * key survive reloads; the private key is never extractable.
 */
export async function openBrowserDatabase(
  options: BrowserDatabaseOptions,
): Promise<Database> {
  if (typeof options?.name !== "string" || options.name === "") {
    throw new TypeError("openBrowserDatabase needs a non-empty { name }");
  }
  const storage = await IdbStorage.open(options.name);
  storage.onClosedElsewhere = options.onClearedElsewhere ?? null;
  let db: Database;
  try {
    const signer = await browserSigningKey(storage);
    db = await Database.open({ ...options, storage, signer });
  } catch (e) {
    await storage.close();
    throw e;
  }
  if (options.linkTabs !== false) {
    const unlink = linkTabs(db, options.name);
    const close = db.close.bind(db);
    db.close = async (repo?: string) => {
      if (repo === undefined) unlink();
      await close(repo);
    };
  }
  return db;
}

/**
 * Deletes a browser database (logout / clear): close it in this tab first; other tabs
 * close their connections on their own and get `onClearedElsewhere`.
 */
export function deleteBrowserDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    // "blocked" needs no handling: other tabs close on "versionchange" and the
    // deletion then completes.
  });
}
