/**
 * Capra: an embedded + distributed, schema-based document database for local-first apps.
 * Every item has its own signed, append-only commit graph; replicas merge concurrent
 * edits deterministically.
 *
 * @example
 * ```ts
 * import { openDatabase } from "./mod.ts";
 *
 * const db = await openDatabase({ memory: true });
 * db.registerSchema({
 *   ns: "todo",
 *   version: 1,
 *   fields: {
 *     text: { type: "string", required: true },
 *     done: { type: "boolean", default: false },
 *   },
 * });
 * await db.open("/todo/home");
 * const milk = db.create("/todo/home/milk", "todo", { text: "Buy milk" });
 * milk.set("done", true);
 * await db.flush();
 * await db.close();
 * ```
 *
 * @module
 */

import { Database, type DatabaseOptions } from "./lib/database/database.ts";
import { FileStorage } from "./lib/storage/file_storage.ts";
import { MemoryStorage } from "./lib/storage/memory_storage.ts";
import { denoPoolVerifier } from "./lib/crypto/deno_verify_pool.ts";
import type { Storage } from "./lib/storage/storage.ts";

export { Database, type DatabaseOptions } from "./lib/database/database.ts";
export { Item, type RawItem } from "./lib/core/item.ts";
export type { RawFields } from "./lib/merge/merge.ts";
export {
  MAX_COMMIT_RECORD_BYTES,
  MAX_VALUE_BYTES,
} from "./lib/core/write_limits.ts";
export {
  MAX_KEPT_SCHEMA_MISMATCHES,
  type SchemaMismatch,
  SchemaMismatchError,
} from "./lib/schema/schema_reports.ts";
export {
  SCHEMA_FINGERPRINT_FIELD,
  schemaFingerprint,
} from "./lib/schema/fingerprint.ts";
export type {
  CloseReason,
  CommitsListener,
  Repository,
  RepositoryStats,
  StoredCommit,
} from "./lib/core/repository.ts";
export type { IngestOptions, WriteCheck } from "./lib/core/ingest.ts";
export type { ResidencyOptions, SweepTimers } from "./lib/core/residency.ts";
export type { CompactionResult, FollowOptions } from "./lib/core/compaction.ts";
export type { ReappliedEdits } from "./lib/core/refused_edits.ts";
export type { ChangeListener, ItemChange } from "./lib/core/item_entry.ts";
export type { CommitInfo } from "./lib/core/item_history.ts";
export { Query, type QueryOptions } from "./lib/query/query.ts";
export { QueryError } from "./lib/query/options.ts";
export type {
  QueryErrorPhase,
  QueryPredicate,
  QueryStats,
  ResultsChange,
  ResultsListener,
  SortKeyFunction,
} from "./lib/query/options.ts";
export { compareSortKeys, type SortKey } from "./lib/query/sort_key.ts";
export { SCAN_SLICE_MS } from "./lib/query/yield.ts";
export type { IngestResult, RejectedRecord } from "./lib/core/ingest.ts";
export type { SchemaRegistry } from "./lib/schema/schema.ts";
export type { Timestamp, WallClock } from "./lib/commit/clock.ts";
export type { SessionId, SigningKey } from "./lib/crypto/keys.ts";
export type { SignatureVerifier, VerifyJob } from "./lib/crypto/verifier.ts";
export { TrustedSessions } from "./lib/core/session.ts";
export type { SessionRecord, SessionTrust } from "./lib/core/session.ts";
export type {
  FieldDef,
  ItemData,
  MergeFunction,
  Schema,
  SchemaId,
} from "./lib/schema/schema.ts";
export {
  FIELD_TYPES,
  type FieldType,
  type FieldValue,
  type MapValue,
  type SetElement,
} from "./lib/schema/field_types.ts";
export type { ItemPath, RepoPath } from "./lib/path.ts";
export {
  type CreateData,
  defineSchema,
  type FieldsOf,
  type FieldTypeValues,
  type FieldTypeWrites,
  type ReadValue,
  type UpdateData,
  type WriteValue,
} from "./lib/schema/typed.ts";
export {
  isOrderKey,
  ORDER_KEY_DIGITS,
  ORDER_KEY_JITTER_DIGITS,
  orderKeyBetween,
  orderKeyOfNumber,
  type OrderKeyOptions,
  orderKeyProblem,
  orderKeysBetween,
} from "./lib/order/order_key.ts";
export {
  orderField,
  type OrderFieldDef,
  orderKeyAt,
  orderKeyForMove,
} from "./lib/order/list_position.ts";
export { SyncClient, type SyncClientOptions } from "./lib/sync/sync_client.ts";
export type {
  SessionDatabase,
  SyncDatabase,
} from "./lib/sync/sync_database.ts";
export type { WsConnection } from "./lib/sync/ws_transport.ts";
export type { WsError } from "./lib/sync/ws_protocol.ts";
export type {
  FetchLike,
  HttpSyncTransport,
} from "./lib/sync/http_transport.ts";
export {
  SIGNED_HEADERS,
  type SignedFields,
} from "./lib/sync/request_signing.ts";
export type { IdSet } from "./lib/idset/id_set.ts";
export type { IdBound } from "./lib/idset/id_bytes.ts";
export type { Packable } from "./lib/encoding/msgpack.ts";
export type { SyncError as SyncErrorInfo } from "./lib/sync/protocol.ts";
export {
  ServerSession,
  type ServerSessionOptions,
  type SignInCredentials,
} from "./lib/sync/server_session.ts";
export {
  Account,
  type AuthConfig,
  authConfig,
  type Device,
  inviteInfo,
  type Me,
  type Membership,
  passkeyOptions,
} from "./lib/sync/account.ts";
export {
  type AdmitResult,
  type RefusedSession,
  RootSessionTrust,
} from "./lib/sync/root_trust.ts";
export {
  type AccessOp,
  type AccessRequest,
  type AccessRule,
  AccessRules,
  type MembershipLookup,
  type RepoRule,
} from "./lib/sync/rules.ts";
export {
  SyncError,
  type SyncHooks,
  type SyncStats,
  type SyncTransport,
} from "./lib/sync/sync_round.ts";
export type {
  Commit,
  CommitBody,
  CommitContent,
  CommitId,
  DeltaBody,
  FullBody,
  RawData,
} from "./lib/commit/commit.ts";
export type {
  RecoveryReport,
  RepoLog,
  Storage,
} from "./lib/storage/storage.ts";
export { DirectoryLockedError, StorageError } from "./lib/storage/storage.ts";
export type { DamagedRange } from "./lib/storage/frames.ts";
export {
  DEFAULT_MAX_OPEN_FILES,
  defaultMaxOpenFiles,
  FileStorage,
  type FileStorageOptions,
} from "./lib/storage/file_storage.ts";
export type { FileSystem } from "./lib/storage/fs.ts";
export { FaultyFileSystem } from "./lib/storage/faulty_fs.ts";
export { MemoryStorage } from "./lib/storage/memory_storage.ts";

/** Options of {@link openDatabase}. */
export type OpenOptions =
  & Omit<DatabaseOptions, "storage">
  & {
    /**
     * With `dir`: most files open at once over all repositories (default: a quarter
     * of the descriptor limit, 256 under the common 1,024, at most 4,096); idle
     * repositories hold no file handle.
     */
    readonly maxOpenFiles?: number;
  }
  & (
    | { readonly dir: string; readonly memory?: false }
    | { readonly memory: true; readonly dir?: undefined }
    | {
      readonly storage: Storage;
      readonly dir?: undefined;
      readonly memory?: false;
    }
  );

/**
 * Opens a database in a directory (`{ dir }`), in memory (`{ memory: true }`) or on a
 * storage of your own (`{ storage }`).
 */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  let storage: Storage;
  if ("storage" in options && options.storage) storage = options.storage;
  else if (options.memory) storage = new MemoryStorage();
  else if (typeof options.dir === "string" && options.dir !== "") {
    storage = await FileStorage.open(options.dir, {
      ...(options.maxOpenFiles !== undefined
        ? { maxOpenFiles: options.maxOpenFiles }
        : {}),
    });
  } else {
    throw new TypeError(
      "openDatabase needs { dir }, { memory: true } or { storage }",
    );
  }
  // The idle sweep must not keep a process alive on its own.
  const timers = options.timers ?? {
    setInterval: (fn: () => void, ms: number) => {
      const id = setInterval(fn, ms);
      Deno.unrefTimer(id);
      return id;
    },
    clearInterval: (id: unknown) => clearInterval(id as number),
  };
  // Received signatures are checked on a worker pool (node:crypto), cheaper than Web
  // Crypto per signature; it falls back to Web Crypto on its own.
  const verifier = options.verifier ?? denoPoolVerifier();
  try {
    return await Database.open({ ...options, storage, timers, verifier });
  } catch (e) {
    verifier.release?.();
    await storage.close();
    throw e;
  }
}
