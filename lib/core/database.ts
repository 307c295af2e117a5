/**
 * The database: a storage, a signing key, schemas and the open repositories. Platform
 * neutral: mod.ts opens it on files, the browser client on IndexedDB, tests in memory.
 *
 * @module
 */

import {
  type SignatureVerifier,
  webCryptoVerifier,
} from "../crypto/verifier.ts";
import { decode, encode } from "../encoding/msgpack.ts";
import {
  generateSigningKey,
  importSigningKey,
  type SigningKey,
} from "../crypto/keys.ts";
import { HybridClock, type WallClock } from "../commit/clock.ts";
import { type Schema, SchemaRegistry } from "../schema/schema.ts";
import {
  parsePath,
  randomItemKey,
  type RepoPath,
  repoPathOf,
} from "../path.ts";
import type { RecoveryReport, Storage } from "../storage/storage.ts";
import type { RepoContext } from "./context.ts";
import type { CommitNode } from "./item_graph.ts";
import { type CommitInfo, Repository } from "./repository.ts";
import { Item } from "./item.ts";
import {
  type SessionRecord,
  type SessionTrust,
  TrustedSessions,
} from "./session.ts";
import { checkNewItem } from "./write_check.ts";
import { Residency, type ResidencyOptions } from "./residency.ts";
import { compactedLog, type CompactionResult } from "./compaction.ts";
import { Query } from "../query/query.ts";
import type { QueryOptions } from "../query/options.ts";
import {
  type SyncHooks,
  syncRepository,
  type SyncStats,
  type SyncTransport,
} from "../sync/sync_round.ts";

/** Default shortest retention window: one day, the default session lifetime. */
export const DEFAULT_MIN_RETENTION_MS = 24 * 3_600_000;

/** Metadata name of the replica's key pair. */
export const SESSION_KEY_META = "session-key";

/** Options of {@link Database.open}. */
export interface DatabaseOptions extends ResidencyOptions {
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

/** Called with signed local commits as they are stored (the sync layer pushes them). */
export type CommitsListener = (
  repo: Repository,
  records: readonly CommitNode[],
) => void;

/** An open database. */
export class Database {
  readonly #storage: Storage;
  readonly #repos = new Map<RepoPath, Promise<Repository>>();
  readonly #open = new Map<RepoPath, Repository>();
  readonly #openListeners = new Set<(repo: RepoPath) => void>();
  /** The last peer horizon each repository followed (see followHorizon). */
  readonly #followed = new Map<RepoPath, number>();
  readonly #commitListeners = new Set<CommitsListener>();
  readonly #ctx: RepoContext;
  readonly #releaseVerifier: (() => void) | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #random: (bytes: Uint8Array) => void;
  /** Repairs made while opening repository logs. */
  readonly recoveries: RecoveryReport[] = [];
  /** Schemas known to this database. */
  readonly schemas: SchemaRegistry;
  /** Sessions trusted when no trust policy was given. */
  readonly trusted: TrustedSessions | undefined;
  #closed = false;
  /** Repositories closed automatically (idle, budget): reopened on their next use. */
  readonly #autoClosed = new Set<RepoPath>();
  readonly #residency: Residency;
  /** Repositories being compacted: `open` waits for these to end. */
  readonly #compacting = new Map<RepoPath, Promise<void>>();
  readonly #minRetentionMs: number;

  private constructor(options: DatabaseOptions, signer: SigningKey) {
    this.#storage = options.storage;
    this.#releaseVerifier = options.verifier?.release?.bind(options.verifier);
    this.#minRetentionMs = options.minRetentionMs ?? DEFAULT_MIN_RETENTION_MS;
    this.schemas = new SchemaRegistry();
    for (const s of options.schemas ?? []) this.schemas.register(s);
    this.#onError = options.onError ?? ((e) => console.error("capra:", e));
    this.#random = options.random ??
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
      now: wall,
      checkOpen: () => {
        if (this.#closed) throw new Error("Database is closed");
      },
      safeCall: (fn, arg) => {
        try {
          fn(arg);
        } catch (e) {
          this.#onError(e);
        }
      },
      reopen: (path) => this.#reopen(path),
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
    this.#residency = new Residency(
      options,
      () => this.#open.values(),
      (repo, reason) => this.#autoClose(repo, reason),
    );
    this.#residency.start();
  }

  async #autoClose(repo: Repository, reason: "idle" | "budget"): Promise<void> {
    if (this.#open.get(repo.path) !== repo) return;
    await repo.close(reason);
    if (this.#open.get(repo.path) === repo) {
      this.#open.delete(repo.path);
      this.#repos.delete(repo.path);
      this.#autoClosed.add(repo.path);
    }
  }

  /** Reopens, synchronously, a repository that was closed automatically. */
  #reopen(path: RepoPath): Repository {
    this.#ctx.checkOpen();
    if (this.#compacting.has(path)) {
      throw new Error(
        `Repository ${path} is being compacted: use it again once compact() resolves`,
      );
    }
    const current = this.#open.get(path);
    if (current && !current.closed) return current;
    if (
      current?.closeReason === "explicit" ||
      (!current && !this.#autoClosed.has(path))
    ) {
      throw new Error(
        `Repository ${path} is closed: open it again with db.open()`,
      );
    }
    if (!this.#storage.openLogSync) {
      throw new Error(
        `Repository ${path} was closed while idle and this storage cannot reopen it synchronously: await db.open("${path}")`,
      );
    }
    const log = this.#storage.openLogSync(path);
    if (log.recovery) this.recoveries.push(log.recovery);
    const r = new Repository(this.#ctx, path, log);
    this.#open.set(path, r);
    this.#repos.set(path, Promise.resolve(r));
    this.#autoClosed.delete(path);
    this.#announceOpen(path);
    return r;
  }

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
    const path = repoPathOf(repo);
    const retainMs = options?.retainMs;
    if (typeof retainMs !== "number" || !(retainMs >= this.#minRetentionMs)) {
      throw new RangeError(
        `Invalid retention ${
          String(retainMs)
        } ms for ${path}: must be at least ${this.#minRetentionMs} ms (the session lifetime)`,
      );
    }
    return await this.#compactTo(path, (this.#ctx.now() - retainMs) * 1024);
  }

  /**
   * Follows a sync peer's garbage collection: when the peer's horizon (an HLC timestamp)
   * is later than this repository's, compacts to it, so both hold the same history and
   * reconcile in one round again. The horizon is clamped to the local minimum retention
   * (a peer cannot make this replica forget recent history); storages that cannot
   * rewrite logs keep their history. Returns null when nothing was done.
   */
  async followHorizon(
    repo: string,
    peerHorizon: number,
  ): Promise<CompactionResult | null> {
    this.#ctx.checkOpen();
    const path = repoPathOf(repo);
    const cutoff = this.#followCutoff(peerHorizon);
    const r = await this.open(path);
    if (
      !(cutoff > r.horizon) || this.#compacting.has(path) ||
      (this.#followed.get(path) ?? 0) >= cutoff
    ) return null;
    this.#followed.set(path, cutoff);
    if (!this.#storage.replaceLog) {
      // The log cannot be rewritten: collect in place (kept, but no longer offered).
      const plan = compactedLog(r, cutoff);
      if (!plan.dropped) return null;
      r.collectInPlace(cutoff, plan.droppedIds);
      return {
        repo: path,
        keptCommits: plan.kept,
        droppedCommits: plan.dropped,
        bytesAfter: 0,
      };
    }
    const result = await this.#compactTo(path, cutoff);
    return result.droppedCommits ? result : null;
  }

  async #compactTo(
    path: RepoPath,
    cutoff: number,
  ): Promise<CompactionResult> {
    if (!this.#storage.replaceLog) {
      throw new Error(
        `This storage cannot rewrite logs: ${path} cannot be compacted`,
      );
    }
    if (this.#compacting.has(path)) {
      throw new Error(`Repository ${path} is already being compacted`);
    }
    // Marked before the first await: an `open` from now on waits for the new file.
    let done!: () => void;
    this.#compacting.set(path, new Promise<void>((res) => done = res));
    try {
      const r = await this.#openOnce(path);
      // Dry run: when nothing is old enough to drop, leave the file alone.
      const plan = compactedLog(r, cutoff);
      if (plan.dropped === 0) {
        return {
          repo: path,
          keptCommits: plan.kept,
          droppedCommits: 0,
          bytesAfter: plan.frames.reduce((n, f) => n + f.length, 0),
        };
      }
      await r.close("compacted");
      const { frames, kept, dropped } = compactedLog(r, cutoff);
      await this.#storage.replaceLog(path, frames);
      if (this.#open.get(path) === r) {
        this.#open.delete(path);
        this.#repos.delete(path);
      }
      this.#compacting.delete(path);
      // Reopen at once: live queries and item listeners move to the new repository.
      const fresh = await this.#openOnce(path);
      fresh.adopt(r);
      return {
        repo: path,
        keptCommits: kept,
        droppedCommits: dropped,
        bytesAfter: frames.reduce((n, f) => n + f.length, 0),
      };
    } finally {
      this.#compacting.delete(path);
      done();
    }
  }

  /** Runs the idle sweep and the memory budget now (the timer does it periodically). */
  sweep(): Promise<void> {
    return this.#residency.sweep();
  }

  /**
   * Opens a database on a storage. The replica's Ed25519 key pair is created on first
   * open and kept in the storage's metadata (a 0600 file on disk).
   */
  static async open(options: DatabaseOptions): Promise<Database> {
    const storage = options.storage;
    let signer: SigningKey;
    const stored = options.signer
      ? null
      : await storage.readMeta(SESSION_KEY_META);
    if (options.signer) signer = options.signer;
    else if (stored) {
      const v = decode(stored) as { pk?: unknown; sk?: unknown };
      if (!(v?.pk instanceof Uint8Array) || !(v?.sk instanceof Uint8Array)) {
        throw new SyntaxError(`Invalid ${SESSION_KEY_META}: expected {pk, sk}`);
      }
      signer = await importSigningKey({
        publicKey: v.pk,
        privateKeyPkcs8: v.sk,
      });
    } else {
      const { key, stored } = await generateSigningKey();
      await storage.writeMeta(
        SESSION_KEY_META,
        encode({ pk: stored.publicKey, sk: stored.privateKeyPkcs8 }),
      );
      signer = key;
    }
    return new Database(options, signer);
  }

  /** This replica's session id (derived from its public key). */
  get sessionId(): string {
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

  /** Opens a repository (idempotent; concurrent calls share one open). */
  async open(repo: string): Promise<Repository> {
    this.#ctx.checkOpen();
    const path = repoPathOf(repo);
    for (;;) {
      // A repository being compacted is reopened once its new file is in place.
      for (
        let c = this.#compacting.get(path);
        c;
        c = this.#compacting.get(path)
      ) {
        await c;
        this.#ctx.checkOpen();
      }
      const r = await this.#openOnce(path);
      // A compaction that started meanwhile closes `r`: wait for the new one.
      if (!this.#compacting.has(path)) return r;
    }
  }

  #openOnce(path: RepoPath): Promise<Repository> {
    let p = this.#repos.get(path);
    if (!p) {
      this.#autoClosed.delete(path);
      p = this.#storage.openLog(path).then(async (log) => {
        if (log.recovery) this.recoveries.push(log.recovery);
        const r = new Repository(this.#ctx, path, log);
        this.#open.set(path, r);
        await this.#residency.enforceBudget(r);
        this.#announceOpen(path);
        return r;
      });
      p.catch(() => this.#repos.delete(path));
      this.#repos.set(path, p);
    }
    return p;
  }

  /** Number of open repositories. */
  get openRepositoryCount(): number {
    return this.#open.size;
  }

  /** True when a repository is open. */
  isOpen(repo: string): boolean {
    return this.#open.has(repoPathOf(repo));
  }

  /** An open repository; throws a clear error when it is not open. */
  repository(repo: string): Repository {
    this.#ctx.checkOpen();
    const path = repoPathOf(repo);
    const r = this.#open.get(path);
    if (!r && this.#autoClosed.has(path)) return this.#reopen(path);
    if (!r) {
      throw new Error(
        `Repository ${path} is not open: call await db.open("${path}") first`,
      );
    }
    return r;
  }

  /** Repositories present in storage. */
  listRepositories(): Promise<RepoPath[]> {
    this.#ctx.checkOpen();
    return this.#storage.listRepos();
  }

  /**
   * Creates an item at `path` (`/type/repo/item`, or `/type/repo` for a random key) with
   * `schema` (a registered name, `"ns/version"`, or a schema object). Validates every
   * field first; nothing is written when any check fails.
   */
  create(
    path: string,
    schema: string | Schema,
    data: Record<string, unknown> = {},
  ): Item {
    const p = parsePath(path);
    const repo = this.repository(p.repoPath);
    const s = this.schemas.resolve(schema);
    const key = p.item ?? randomItemKey(this.#random);
    const existing = repo.entry(key);
    const itemPath = `${p.repoPath}/${key}`;
    if (existing) {
      const v = repo.valueOf(existing);
      if (v && !v.deleted) {
        throw new Error(`Cannot create ${itemPath}: it already exists`);
      }
    }
    const checked = checkNewItem(itemPath, s, data);
    const e = repo.ensureEntry(key);
    repo.writeLocal(e, Repository.stateFor(s, checked));
    return this.#handle(repo, e);
  }

  #handle(repo: Repository, e: ReturnType<Repository["ensureEntry"]>): Item {
    if (!(e.handle instanceof Item)) e.handle = new Item(repo, e);
    return e.handle as Item;
  }

  /** The item at `path`, or undefined when absent (its repository must be open). */
  item(path: string): Item | undefined {
    // Fast path: an open repository and a known key need no validation.
    if (typeof path === "string" && !this.#closed) {
      const slash = path.lastIndexOf("/");
      const repo = this.#open.get(path.slice(0, slash) as RepoPath);
      const e = repo?.entry(path.slice(slash + 1));
      if (repo && e && e.path === path) {
        return repo.valueOf(e) === undefined
          ? undefined
          : this.#handle(repo, e);
      }
    }
    const p = parsePath(path);
    if (p.item === undefined) {
      throw new TypeError(
        `Invalid item path "${path}": expected "/type/repo/item"`,
      );
    }
    const repo = this.repository(p.repoPath);
    const e = repo.entry(p.item);
    if (!e || repo.valueOf(e) === undefined) return undefined;
    return this.#handle(repo, e);
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
  query<Ctx = undefined>(options: QueryOptions<Ctx>): Query<Ctx> {
    this.#ctx.checkOpen();
    return new Query(this, options);
  }

  /** Opens the item's repository if needed and returns the item (or undefined). */
  async load(path: string): Promise<Item | undefined> {
    await this.open(parsePath(path).repoPath);
    return this.item(path);
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
    const p = parsePath(path);
    if (p.item === undefined) {
      throw new TypeError(`Invalid item path "${path}"`);
    }
    return this.repository(p.repoPath).history(p.item);
  }

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
   * pair, …) and returns when both hold the same commits.
   */
  async syncWith(
    repo: string,
    transport: SyncTransport,
    hooks?: SyncHooks,
  ): Promise<SyncStats> {
    const r = await this.open(repo);
    this.#ctx.verifier.prepare?.(); // a sync may bring a large batch to verify
    // When the peer collected history this replica still holds, stop before offering
    // it, collect it here too (so both sets match again) and sync once more.
    const stats = await syncRepository(r, transport, {
      ...hooks,
      stopAtHorizon: (h) =>
        (this.#followed.get(r.path) ?? 0) < this.#followCutoff(h),
    });
    if (stats.peerHorizon <= r.horizon) return stats;
    await this.followHorizon(r.path, stats.peerHorizon);
    if (!stats.stoppedAtHorizon) return stats;
    const rest = await syncRepository(await this.open(repo), transport, hooks);
    return {
      ...rest,
      rounds: stats.rounds + rest.rounds,
      bytesSent: stats.bytesSent + rest.bytesSent,
      bytesReceived: stats.bytesReceived + rest.bytesReceived,
      commitsSent: stats.commitsSent + rest.commitsSent,
      commitsReceived: stats.commitsReceived + rest.commitsReceived,
      rejected: [...stats.rejected, ...rest.rejected],
      errors: [...stats.errors, ...rest.errors],
    };
  }

  /** The cutoff a peer horizon leads to here: never inside the minimum retention. */
  #followCutoff(peerHorizon: number): number {
    return Math.min(
      peerHorizon,
      (this.#ctx.now() - this.#minRetentionMs) * 1024,
    );
  }

  /** Signs bytes with this replica's session key (signed sync requests). */
  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.#ctx.signer.sign(message);
  }

  /**
   * Listens to repositories being opened (by `open`, or by use after an automatic
   * close); returns an unsubscribe. A sync client follows them this way.
   */
  onOpen(listener: (repo: RepoPath) => void): () => void {
    this.#openListeners.add(listener);
    return () => void this.#openListeners.delete(listener);
  }

  /** Paths of the repositories open now. */
  openRepositories(): RepoPath[] {
    return [...this.#open.values()].filter((r) => !r.closed).map((r) => r.path);
  }

  #announceOpen(path: RepoPath): void {
    for (const l of [...this.#openListeners]) {
      try {
        l(path);
      } catch (e) {
        console.error("capra: an open listener threw:", e);
      }
    }
  }

  /** Listens to signed local commits as they are stored; returns an unsubscribe. */
  onCommits(listener: CommitsListener): () => void {
    this.#commitListeners.add(listener);
    return () => void this.#commitListeners.delete(listener);
  }

  /** Resolves when every write made before the call is durable (fsync). */
  async flush(): Promise<void> {
    this.#ctx.checkOpen();
    await Promise.all([...this.#open.values()].map((r) => r.flush()));
  }

  /** Flushes and closes one repository, or (without argument) the whole database. */
  async close(repo?: string): Promise<void> {
    if (repo !== undefined) {
      const path = repoPathOf(repo);
      this.#autoClosed.delete(path);
      const r = await this.#repos.get(path);
      if (!r) return;
      this.#repos.delete(path);
      this.#open.delete(path);
      await r.close();
      return;
    }
    if (this.#closed) return;
    this.#residency.stop();
    const repos = await Promise.allSettled([...this.#repos.values()]);
    const errors: unknown[] = [];
    for (const r of repos) {
      if (r.status === "fulfilled") {
        await r.value.close().catch((e) => errors.push(e));
      }
    }
    this.#closed = true;
    this.#repos.clear();
    this.#open.clear();
    this.#releaseVerifier?.();
    await this.#storage.close();
    if (errors.length) throw errors[0];
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }
}
