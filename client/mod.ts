/**
 * Capra in the browser: a {@link Database} on IndexedDB whose session key is a
 * non-extractable CryptoKey, several tabs sharing it safely (one writer per commit, one
 * leader tab talking to the server: see tab_channel.ts), and a {@link BrowserSync} that
 * keeps repositories in sync with a server.
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

import { Database, type DatabaseOptions } from "../lib/database/database.ts";
import { IdbStorage } from "./idb_storage.ts";
import { browserKeyPair } from "./session_key.ts";
import { CryptoWorkerPool } from "./crypto_worker.ts";
import { WorkerSigningKey, WorkerVerifier } from "./offthread_crypto.ts";
import { deleteIdb, TabGroup } from "./tab_channel.ts";

export { Database } from "../lib/database/database.ts";
export { Item } from "../lib/core/item.ts";
export type { Repository } from "../lib/core/repository.ts";
export type { ItemChange } from "../lib/core/item_entry.ts";
export type { CommitInfo } from "../lib/core/item_history.ts";
export { Query } from "../lib/query/query.ts";
export type { Schema } from "../lib/schema/schema.ts";
export { TrustedSessions } from "../lib/core/session.ts";
export type { SessionRecord } from "../lib/core/session.ts";
export { decodeBase64Url, encodeBase64Url } from "../lib/encoding/base64url.ts";
export {
  type CreateData,
  defineSchema,
  type FieldsOf,
  type FieldTypeValues,
  type FieldTypeWrites,
  type ReadValue,
  type UpdateData,
  type WriteValue,
} from "../lib/schema/typed.ts";
export {
  isOrderKey,
  ORDER_KEY_DIGITS,
  ORDER_KEY_JITTER_DIGITS,
  orderKeyBetween,
  orderKeyOfNumber,
  type OrderKeyOptions,
  orderKeyProblem,
  orderKeysBetween,
} from "../lib/order/order_key.ts";
export {
  orderField,
  type OrderFieldDef,
  orderKeyAt,
  orderKeyForMove,
} from "../lib/order/list_position.ts";
export { BrowserSync } from "./browser_sync.ts";
export type { TabMessage } from "./tab_channel.ts";
export type {
  BrowserSyncOptions,
  NetworkState,
  SyncState,
  SyncStatus,
} from "./browser_sync.ts";
export type { RevokedReport } from "./sync_state.ts";
export { passkeysAvailable, passkeySignIn, passkeySignUp } from "./passkeys.ts";
export {
  Account,
  type AuthConfig,
  authConfig,
  type Device,
  inviteInfo,
  type Me,
  type Membership,
} from "../lib/sync/account.ts";
export type { SignInCredentials } from "../lib/sync/server_session.ts";
export { SyncError } from "../lib/sync/sync_round.ts";

/** Options of {@link openBrowserDatabase}. */
export interface BrowserDatabaseOptions
  extends Omit<DatabaseOptions, "storage" | "signer"> {
  /** IndexedDB database name (one replica per name and origin). */
  readonly name: string;
  /**
   * Coordinate with the other tabs of this origin that open the same database (default
   * true): they see each other's commits at once and one of them syncs for all.
   */
  readonly linkTabs?: boolean;
  /**
   * Called when another tab clears this database (logout): this tab's database is
   * already closed and its data dropped; reload or leave then.
   */
  readonly onClearedElsewhere?: () => void;
  /**
   * Web Workers that sign and verify signatures off the page's main thread (default:
   * one per core, at most 4). `false` computes them on the page, in slices that yield
   * to the event loop. A `verifier` given in these options replaces the workers'.
   */
  readonly cryptoWorkers?: number | false;
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
  const workers = options.cryptoWorkers;
  if (
    workers !== undefined && workers !== false &&
    !(Number.isSafeInteger(workers) && workers >= 1)
  ) {
    throw new RangeError(
      `Invalid cryptoWorkers ${
        String(workers)
      }: expected a positive integer or false`,
    );
  }
  const storage = await IdbStorage.open(options.name);
  storage.onClosedElsewhere = options.onClearedElsewhere ?? null;
  let db: Database;
  const {
    linkTabs: link,
    onClearedElsewhere: _,
    cryptoWorkers: __,
    ...dbOptions
  } = options;
  let pool: CryptoWorkerPool | null = null;
  try {
    const pair = await browserKeyPair(storage);
    pool = workers === false
      ? null
      : CryptoWorkerPool.start(pair.privateKey, workers);
    const signer = new WorkerSigningKey(pair.publicKey, pair.privateKey, pool);
    const verifier = options.verifier ?? new WorkerVerifier(pool);
    db = await Database.open({ ...dbOptions, storage, signer, verifier });
    storage.attach(db);
    if (options.verifier && pool) {
      // The workers sign only: stop them with the database.
      const owned = pool;
      const close = db.close.bind(db);
      db.close = async (repo?: string) => {
        await close(repo);
        if (repo === undefined) owned.close();
      };
    }
  } catch (e) {
    pool?.close();
    await storage.close();
    throw e;
  }
  if (link !== false) {
    const tabs = new TabGroup(db, storage, options.onClearedElsewhere);
    const close = db.close.bind(db);
    db.close = async (repo?: string) => {
      if (repo === undefined) tabs.close();
      await close(repo);
    };
  }
  return db;
}

/**
 * Logout / clear: deletes the browser database in every tab. Other tabs of the origin
 * drop their data and session and get `onClearedElsewhere`; this tab's `db` is closed
 * (pending writes are dropped, not written). Resolves once IndexedDB holds nothing.
 */
export async function clearBrowserDatabase(db: Database): Promise<void> {
  const tabs = TabGroup.of(db);
  if (!tabs) {
    throw new Error(
      "clearBrowserDatabase needs a database opened by openBrowserDatabase; " +
        "otherwise close it and call deleteBrowserDatabase(name)",
    );
  }
  await tabs.clearEverywhere();
}

/**
 * Deletes a browser database by name (logout / clear): close it in this tab first.
 * Other tabs holding it open are asked to close it and get `onClearedElsewhere`.
 */
export function deleteBrowserDatabase(name: string): Promise<void> {
  return deleteIdb(name);
}
