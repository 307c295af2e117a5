/**
 * The database: the object that wires the core (a storage, a signing key, schemas, the
 * open repositories and their items), live queries and sync together. Platform neutral:
 * mod.ts opens it on files, the browser client on IndexedDB, tests in memory.
 *
 * @module
 */

import {
  type SignatureVerifier,
  webCryptoVerifier,
} from "../crypto/verifier.ts";
import type { SessionId, SigningKey } from "../crypto/keys.ts";
import { HybridClock, type WallClock } from "../commit/clock.ts";
import { type Schema, SchemaRegistry } from "../schema/schema.ts";
import type { SchemaMismatch } from "../schema/schema_reports.ts";
import { parsePath, type RepoPath, repoPathOf } from "../path.ts";
import type { CreateData, DefsOf } from "../schema/typed.ts";
import type { RecoveryReport, Storage } from "../storage/storage.ts";
import type { RepoContext } from "../core/context.ts";
import type { Item, RawItem } from "../core/item.ts";
import type { CommitInfo } from "../core/item_history.ts";
import { Items } from "../core/items.ts";
import { OpenRepositories } from "../core/open_repositories.ts";
import type { OpenRepository } from "../core/open_repository.ts";
import type { CommitsListener, Repository } from "../core/repository.ts";
import type { ResidencyOptions } from "../core/residency.ts";
import {
  type CompactionResult,
  Compactor,
  type FollowOptions,
} from "../core/compaction.ts";
import { loadOrCreateReplicaKey } from "../core/replica_key.ts";
import {
  type SessionRecord,
  type SessionTrust,
  TrustedSessions,
} from "../core/session.ts";
import { openQuery, type Query, type QueryOptions } from "../query/query.ts";
import type { QuerySource } from "../query/options.ts";
import { SCAN_SLICE_MS, yieldToEventLoop } from "../query/yield.ts";
import { syncFollowingHorizon } from "../sync/horizon_sync.ts";
import type {
  SyncHooks,
  SyncStats,
  SyncTransport,
} from "../sync/sync_round.ts";

/** Options of {@link Database.open}. */
export interface DatabaseOptions extends ResidencyOptions {
  /** Where repositories and the replica's key live. */
  readonly storage: Storage;
  /**
   * Shortest retention window garbage collection accepts (ms). Keep it at least the
   * session lifetime, so a peer whose history was collected has an expired session.
   */
  readonly minRetentionMs?: number;
  /** Schemas to register at once. */
  readonly schemas?: readonly Schema[];
  /** Wall clock in ms (tests inject one). */
  readonly clock?: WallClock;
  /** Which peers' sessions to accept commits from (default: only explicitly trusted). */
  readonly trust?: SessionTrust;
  /** Receives errors thrown by listeners and background work. */
  readonly onError?: (error: unknown) => void;
  /** Random bytes (tests inject a seeded source). */
  readonly random?: (bytes: Uint8Array) => void;
  /**
   * The replica's key pair, when the caller keeps it (the browser client keeps a
   * non-extractable CryptoKey in IndexedDB); otherwise it lives in storage metadata.
   */
  readonly signer?: SigningKey;
  /**
   * Checks received commits' signatures (default Web Crypto; the Deno entry passes a
   * worker pool). `release()`, when present, is called when the database closes.
   */
  readonly verifier?: SignatureVerifier & { release?(): void };
}

/** An open database. */
export class Database {
  readonly #storage: Storage;
  readonly #ctx: RepoContext<OpenRepository>;
  readonly #repos: OpenRepositories;
  readonly #compactor: Compactor;
  readonly #items: Items;
  readonly #querySource: QuerySource;
  readonly #commitListeners = new Set<CommitsListener>();
  readonly #releaseVerifier: (() => void) | undefined;
  readonly #onError: (error: unknown) => void;
  #closed = false;
  /** Schemas known to this database. */
  readonly schemas: SchemaRegistry;
  /** Sessions trusted when no trust policy was given. */
  readonly trusted: TrustedSessions | undefined;

  private constructor(options: DatabaseOptions, signer: SigningKey) {
    this.#storage = options.storage;
    this.#releaseVerifier = options.verifier?.release?.bind(options.verifier);
    this.schemas = new SchemaRegistry();
    for (const s of options.schemas ?? []) this.schemas.register(s);
    this.#onError = options.onError ?? ((e) => console.error("capra:", e));
    this.schemas.reports.reportErrorsTo((e) => this.#onError(e));
    const random = options.random ??
      ((b) => void crypto.getRandomValues(b as Uint8Array<ArrayBuffer>));
    const wall = options.clock ?? Date.now;
    this.trusted = options.trust ? undefined : new TrustedSessions();
    const ownSession: SessionRecord = {
      id: signer.sessionId,
      publicKey: signer.publicKey,
    };
    this.#ctx = {
      registry: this.schemas,
      clock: new HybridClock(wall),
      signer,
      ownSession,
      trust: options.trust ?? this.trusted!,
      knownSessions: new Map([[ownSession.id, ownSession]]),
      verifier: options.verifier ?? webCryptoVerifier,
      slices: { sliceMs: SCAN_SLICE_MS, pause: yieldToEventLoop },
      now: wall,
      checkOpen: () => {
        if (this.#closed) throw new Error("Database is closed");
      },
      reportError: (e) => this.#onError(e),
      safeCall: (fn, arg) => {
        try {
          fn(arg);
        } catch (e) {
          this.#onError(e);
        }
      },
      reopen: (path) => this.#repos.reopen(path),
      onCommitsStored: (repo, nodes) => {
        for (const l of this.#commitListeners) {
          try {
            l(repo, nodes);
          } catch (e) {
            this.#onError(e);
          }
        }
      },
    };
    this.#repos = new OpenRepositories(this.#storage, this.#ctx, options, {
      sliceMs: SCAN_SLICE_MS,
      pause: yieldToEventLoop,
    });
    this.#compactor = new Compactor(
      this.#storage,
      this.#repos,
      wall,
      options.minRetentionMs,
    );
    this.#items = new Items(
      this.#repos,
      this.schemas,
      random,
      () => this.#closed,
    );
    this.#querySource = {
      isOpen: (path) => this.#repos.isOpen(path),
      open: (path) => this.#open(path),
      repository: (path) => this.#repos.repository(path),
      item: (path) => this.#items.item(path),
    };
  }

  /**
   * Opens a database on a storage. The replica's Ed25519 key pair is created on first
   * open and kept in the storage's metadata (a 0600 file on disk).
   */
  static async open(options: DatabaseOptions): Promise<Database> {
    const signer = options.signer ??
      await loadOrCreateReplicaKey(options.storage);
    return new Database(options, signer);
  }

  /** Repairs made while opening repository logs. */
  get recoveries(): RecoveryReport[] {
    return this.#repos.recoveries;
  }

  /** This replica's session id (derived from its public key). */
  get sessionId(): SessionId {
    return this.#ctx.signer.sessionId;
  }

  /** This replica's session record (public key only; never the private key). */
  get session(): SessionRecord {
    return this.#ctx.ownSession;
  }

  /** Registers a schema version. */
  registerSchema(schema: Schema): void {
    this.schemas.register(schema);
  }

  /**
   * Schema ids whose field set differs between this replica and a writer of data it read
   * or received (another replica registered other fields under the same `ns/version`),
   * each listed once. Nothing is lost meanwhile: fields this replica does not know are
   * carried through writes and merges unchanged. Each is also reported to `onError` as a
   * `SchemaMismatchError`.
   */
  get schemaMismatches(): readonly SchemaMismatch[] {
    return this.schemas.reports.mismatches;
  }

  /** Calls `listener` for every new schema mismatch; returns an unsubscribe function. */
  onSchemaMismatch(listener: (mismatch: SchemaMismatch) => void): () => void {
    return this.schemas.reports.onMismatch(listener);
  }

  // --- repositories -------------------------------------------------------------------

  /** Opens a repository (idempotent; concurrent calls share one open). */
  async open(repo: string): Promise<Repository> {
    return await this.#open(repo);
  }

  async #open(repo: string): Promise<OpenRepository> {
    this.#ctx.checkOpen();
    return await this.#repos.open(repoPathOf(repo));
  }

  /**
   * Runs `fn` on the repository `repo` (opened if needed) while keeping it open: it is not
   * closed automatically meanwhile, and compactions and explicit closes of it wait for
   * `fn` to end; a repository closing automatically when this starts is reopened. What a
   * server does with a received message goes through here, so an idle close or a GC pass
   * never makes it fail halfway. `fn` must not wait for a compaction or close of `repo`.
   *
   * @example
   * ```ts ignore
   * const result = await db.withRepository("/todo/home", (r) => r.ingest(records));
   * ```
   */
  async withRepository<T>(
    repo: string,
    fn: (repository: Repository) => Promise<T>,
  ): Promise<T> {
    this.#ctx.checkOpen();
    return await this.#repos.use(repoPathOf(repo), fn);
  }

  /**
   * Closes `repo` as an idle sweep would, unless something pins it (live queries,
   * listeners, unsaved writes) or uses it: its items and `open` reopen it on next use.
   * For passes that opened a repository only to look at it, so it does not stay resident.
   */
  async release(repo: string): Promise<void> {
    this.#ctx.checkOpen();
    await this.#repos.release(repoPathOf(repo));
  }

  /** Number of open repositories. */
  get openRepositoryCount(): number {
    return this.#repos.size;
  }

  /** True when a repository is open. */
  isOpen(repo: string): boolean {
    return this.#repos.isOpen(repoPathOf(repo));
  }

  /** An open repository; throws a clear error when it is not open. */
  repository(repo: string): Repository {
    this.#ctx.checkOpen();
    return this.#repos.repository(repoPathOf(repo));
  }

  /** Repositories present in storage. */
  listRepositories(): Promise<RepoPath[]> {
    this.#ctx.checkOpen();
    return this.#storage.listRepos();
  }

  /** Paths of the repositories open now. */
  openRepositories(): RepoPath[] {
    return this.#repos.paths();
  }

  /**
   * Listens to repositories being opened (by `open`, or by use after an automatic
   * close); returns an unsubscribe. A sync client follows them this way.
   */
  onOpen(listener: (repo: RepoPath) => void): () => void {
    return this.#repos.onOpen(listener);
  }

  /** Listens to signed local commits as they are stored; returns an unsubscribe. */
  onCommits(listener: CommitsListener): () => void {
    this.#commitListeners.add(listener);
    return () => void this.#commitListeners.delete(listener);
  }

  /** Runs the idle sweep and the memory budget now (the timer does it periodically). */
  sweep(): Promise<void> {
    return this.#repos.sweep();
  }

  // --- items ----------------------------------------------------------------------------

  /**
   * Creates an item at `path` (`/type/repo/item`, or `/type/repo` for a random key) with
   * `schema` (a registered name, `"ns/version"`, or a schema object). Validates every
   * field first; nothing is written when any check fails. With a schema object from
   * `defineSchema`, `data` is type-checked against its fields and the item is typed.
   */
  create<S extends Schema>(
    path: string,
    schema: S,
    data: CreateData<DefsOf<S>>,
  ): Item<DefsOf<S>>;
  create(path: string, schema: string, data?: Record<string, unknown>): Item;
  create(
    path: string,
    schema: string | Schema,
    data: Record<string, unknown> = {},
  ): Item {
    return this.#items.create(path, schema, data);
  }

  /**
   * The item at `path`, or undefined when absent (its repository must be open). With
   * `schema`, the item is typed by it: a TypeError when the item follows another one.
   */
  item<S extends Schema>(path: string, schema: S): Item<DefsOf<S>> | undefined;
  item(path: string): Item | undefined;
  item(path: string, schema?: Schema): Item | undefined {
    const item = this.#items.item(path);
    if (item && schema) checkItemSchema(item, schema);
    return item;
  }

  /**
   * The stored data of the item at `path`, raw, with its schema id (undefined when
   * absent); also for an item this replica cannot read, e.g. one written under a newer
   * schema version that is not registered here (see `Item.isReadable`).
   */
  rawItem(path: string): RawItem | undefined {
    return this.#items.rawItem(path);
  }

  /** Opens the item's repository if needed and returns the item (or undefined). */
  load<S extends Schema>(
    path: string,
    schema: S,
  ): Promise<Item<DefsOf<S>> | undefined>;
  load(path: string): Promise<Item | undefined>;
  async load(path: string, schema?: Schema): Promise<Item | undefined> {
    await this.open(parsePath(path).repoPath);
    return schema ? this.item(path, schema) : this.item(path);
  }

  /** Keys of a repository's items (open repository). */
  keys(repo: string, options?: { includeDeleted?: boolean }): string[] {
    return this.repository(repo).keys(options);
  }

  /** Number of live items of a repository (open repository). */
  count(repo: string): number {
    return this.repository(repo).count();
  }

  /** The commit history of an item, oldest first. */
  history(path: string): CommitInfo[] {
    return this.#items.history(path);
  }

  /**
   * A live query over a repository (opened if needed) or over another query. See
   * {@link Query}: results stay sorted and current as local and remote commits arrive.
   *
   * @example
   * ```ts ignore
   * const q = db.query({ source: "/todo/home", predicate: (i) => !i.get("done") });
   * await q.ready;
   * console.log(q.count);
   * q.close();
   * ```
   */
  query<Ctx = undefined, S extends Schema = Schema>(
    options: QueryOptions<Ctx, S>,
  ): Query<Ctx, S> {
    this.#ctx.checkOpen();
    return openQuery(this.#querySource, options);
  }

  // --- garbage collection -----------------------------------------------------------

  /**
   * Garbage-collects a repository's history: commits older than `retainMs` are removed
   * per item unless the current value needs them, and the file is rewritten atomically.
   * Values, queries and sync are unchanged; items reopen the repository on next use.
   */
  async compact(
    repo: string,
    options: { retainMs: number },
  ): Promise<CompactionResult> {
    this.#ctx.checkOpen();
    return await this.#compactor.compact(repo, options);
  }

  /**
   * Follows a sync peer's garbage collection: when the peer's horizon (an HLC timestamp)
   * is later than this repository's, compacts to it, so both hold the same history and
   * reconcile in one round again. The horizon is clamped to the local minimum retention,
   * or to the retention the peer announced (`options.retentionMs`) when that is shorter
   * (a peer cannot make this replica forget more recent history than it keeps itself);
   * `options.keep` names commits to keep anyway (those the peer holds). Storages that
   * cannot rewrite logs collect in place. Returns null when nothing was done.
   */
  async followHorizon(
    repo: string,
    peerHorizon: number,
    options?: FollowOptions,
  ): Promise<CompactionResult | null> {
    this.#ctx.checkOpen();
    return await this.#compactor.followHorizon(repo, peerHorizon, options);
  }

  // --- sync -------------------------------------------------------------------------------

  /** Trusts a peer's session so its commits are accepted (without a sync server). */
  trustSession(session: SessionRecord | Uint8Array): SessionRecord {
    if (!this.trusted) {
      throw new Error(
        "This database uses a custom trust policy: add sessions there",
      );
    }
    return this.trusted.add(session);
  }

  /**
   * Reconciles one repository with a peer through `transport` (HTTP rounds, an in-memory
   * pair, …) and returns when both hold the same commits. When the peer collected
   * history this replica still holds, this replica follows its horizon; local edits the
   * peer cannot take because they build on history it collected are re-applied on its
   * current state as new commits (`SyncStats.reapplied` says which, and what they
   * overwrote).
   */
  async syncWith(
    repo: string,
    transport: SyncTransport,
    hooks?: SyncHooks,
  ): Promise<SyncStats> {
    const r = await this.#open(repo);
    this.#ctx.verifier.prepare?.(); // a sync may bring a large batch to verify
    return await syncFollowingHorizon(
      {
        open: (path) => this.#open(path),
        wouldFollow: (path, h, retentionMs) =>
          this.#compactor.wouldFollow(path as RepoPath, h, retentionMs),
        followHorizon: (path, h, options) =>
          this.followHorizon(path, h, options),
      },
      r,
      transport,
      hooks,
    );
  }

  /** Signs bytes with this replica's session key (signed sync requests). */
  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.#ctx.signer.sign(message);
  }

  // --- durability and closing -------------------------------------------------------

  /** Resolves when every write made before the call is durable (fsync). */
  async flush(): Promise<void> {
    this.#ctx.checkOpen();
    await this.#repos.flush();
  }

  /** Flushes and closes one repository, or (without argument) the whole database. */
  async close(repo?: string): Promise<void> {
    if (repo !== undefined) {
      await this.#repos.close(repoPathOf(repo));
      return;
    }
    if (this.#closed) return;
    const errors = await this.#repos.closeAll();
    this.#closed = true;
    this.#releaseVerifier?.();
    await this.#storage.close();
    if (errors.length) throw errors[0];
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }
}

/** Throws a TypeError when `item` does not follow `schema`'s namespace. */
function checkItemSchema(item: Item, schema: Schema): void {
  if (item.schema.ns !== schema.ns) {
    throw new TypeError(
      `Item ${item.path} follows schema "${item.schema.ns}/${item.schema.version}", not "${schema.ns}"`,
    );
  }
}
