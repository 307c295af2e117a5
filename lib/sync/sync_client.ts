/**
 * Keeps a database's repositories in sync with a server in the background: local commits
 * are pushed as they are stored, the server's pushes are verified and ingested, and every
 * (re)connection reconciles. `sync()` resolves when client and server hold the same
 * commits.
 *
 * @module
 */

import type { Repository, StoredCommit } from "../core/repository.ts";
import type { SyncDatabase } from "./sync_database.ts";
import { encodeSyncMessage, type SyncMessage } from "./protocol.ts";
import { ServerSession, type ServerSessionOptions } from "./server_session.ts";
import { authorsOf, ingestWith, SyncError } from "./sync_round.ts";
import { WsConnection, WsRequestError } from "./ws_transport.ts";
import type { WsError } from "./ws_protocol.ts";
import { signRequest } from "./request_signing.ts";
import { WS_PATH } from "./ws_protocol.ts";
import type { CommitId } from "../commit/commit.ts";

/** How many server-reported errors {@link SyncClient.errors} keeps. */
export const MAX_KEPT_ERRORS = 100;

/** Attempts of {@link SyncClient.sync} across connection losses. */
export const MAX_SYNC_ATTEMPTS = 5;
/** Wait before reconciling a repository whose push the server refused as busy (no hint). */
export const BUSY_RETRY_DEFAULT_MS = 1_000;

/** How long {@link SyncClient.sync} waits for a connection before it fails. */
export const SYNC_CONNECT_TIMEOUT_MS = 10_000;

/** Options of {@link SyncClient.connect}. */
export interface SyncClientOptions extends ServerSessionOptions {
  /**
   * Repositories to keep in sync (more with `add`). Without it the client keeps every
   * repository the database has open in sync, now and as they are opened later
   * (`/sys/*` excepted: the server manages those).
   */
  readonly repos?: readonly string[];
  /** WebSocket constructor. */
  readonly WebSocket?: typeof WebSocket;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * How long `sync()` waits for the socket to (re)connect before it fails (default
   * {@link SYNC_CONNECT_TIMEOUT_MS}).
   */
  readonly connectTimeoutMs?: number;
  /** Receives background errors (default console.error). */
  readonly onError?: (error: unknown) => void;
  /**
   * A session with this server to reuse (one issuance instead of two when the caller
   * already holds one, e.g. for HTTP rounds).
   */
  readonly session?: ServerSession;
  /**
   * Called when the server said this client fell behind (it left pushes out) and the
   * client started reconciling these repositories.
   */
  readonly onCatchUp?: (repos: readonly string[]) => void;
}

/**
 * A database kept in sync with a server.
 *
 * @example
 * ```ts ignore
 * const client = await SyncClient.connect(db, "http://127.0.0.1:8787", {
 *   repos: ["/todo/home"],
 * });
 * db.create("/todo/home/milk", "todo", { text: "Buy milk" });
 * await client.sync();
 * client.close();
 * ```
 */
export class SyncClient {
  readonly #repos = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #unsubscribe: () => void;
  readonly #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  #stopFollowing: () => void = () => {};
  private readonly reportError: (error: unknown) => void;
  /**
   * Server-reported errors (refused or obsolete commits, forbidden repositories, expired
   * sessions), newest last; the last {@link MAX_KEPT_ERRORS} are kept.
   */
  readonly errors: WsError[] = [];

  readonly #connectTimeoutMs: number;
  #closed = false;

  private constructor(
    readonly db: SyncDatabase,
    readonly session: ServerSession,
    readonly connection: WsConnection,
    options: SyncClientOptions,
  ) {
    this.reportError = options.onError ??
      ((e) => console.error("capra sync:", e));
    this.#connectTimeoutMs = options.connectTimeoutMs ??
      SYNC_CONNECT_TIMEOUT_MS;
    this.#unsubscribe = db.onCommits((repo, nodes) =>
      this.#pushLocal(repo, nodes)
    );
  }

  /** Obtains a session from the server at `url` and starts syncing. */
  static async connect(
    db: SyncDatabase,
    url: string,
    options: SyncClientOptions = {},
  ): Promise<SyncClient> {
    const session = options.session ??
      await ServerSession.create(db, url, options);
    const ref: { client?: SyncClient } = {};
    const wsUrl = `${url.replace(/^http/, "ws").replace(/\/$/, "")}${WS_PATH}`;
    const connection = new WsConnection({
      url: wsUrl,
      hello: () =>
        signRequest(
          { sign: (m) => db.sign(m) },
          session.encoded,
          "GET",
          WS_PATH,
          new Uint8Array(0),
          (options.now ?? Date.now)(),
        ),
      onOpen: () => ref.client?.reconcileAllRepos(),
      // Pushes were left out while this client read too slowly: reconcile (O(diff)).
      onCatchUp: (repos) => {
        ref.client?.catchUp(repos);
        options.onCatchUp?.(repos);
      },
      onPush: (m) => ref.client?.track(ref.client.ingestPush(m)),
      onError: (e, repo) => {
        // The socket closes; renew before it reconnects (a new hello, a new record).
        if (e.code === "session_expired") {
          ref.client?.track(session.renew());
        }
        if (ref.client) ref.client.#keepError(e);
        ref.client?.reportError(
          new Error(`${repo ?? "server"}: ${e.code}: ${e.message}`),
        );
      },
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
      ...(options.backoffInitialMs !== undefined
        ? { backoffInitialMs: options.backoffInitialMs }
        : {}),
      ...(options.backoffMaxMs !== undefined
        ? { backoffMaxMs: options.backoffMaxMs }
        : {}),
    });
    const client = ref.client = new SyncClient(
      db,
      session,
      connection,
      options,
    );
    if (options.repos) {
      for (const r of options.repos) await client.add(r);
    } else {
      const follow = (path: string) => {
        if (!path.startsWith("/sys/")) client.track(client.add(path));
      };
      client.#stopFollowing = db.onOpen(follow);
      for (const path of db.openRepositories()) follow(path);
      await client.#settle();
    }
    connection.start();
    return client;
  }

  /** True while the socket is connected and authenticated. */
  get connected(): boolean {
    return this.connection.connected;
  }

  /** Keeps `repo` in sync (opens it). */
  async add(repo: string): Promise<Repository> {
    const r = await this.db.open(repo);
    if (!this.#repos.has(r.path)) {
      this.#repos.add(r.path);
      this.connection.subscribe(r.path);
      if (this.connected) this.track(this.#reconcile(r.path));
    }
    return r;
  }

  /**
   * Resolves when every kept repository holds the same commits as the server; retries
   * (after reconnecting) when the connection drops meanwhile. Rejects when the server
   * cannot be reached within `connectTimeoutMs` or refuses the sync; the client is then
   * closed (nothing of it keeps the process alive): connect again to retry. A refusal
   * for lack of capacity (`server_busy`) leaves it open: call `sync()` again later.
   */
  async sync(): Promise<void> {
    try {
      for (let attempt = 1;; attempt++) {
        await this.#connected();
        try {
          await this.#settle();
          for (const repo of this.#repos) await this.#reconcile(repo);
          await this.#settle();
          return;
        } catch (e) {
          const lost = e instanceof SyncError &&
            (e.code === "disconnected" || e.code === "timeout");
          if (!lost || attempt >= MAX_SYNC_ATTEMPTS) throw e;
        }
      }
    } catch (e) {
      // A busy server (503 server_busy) is passing: the client stays connected and
      // sends the refused commits again after the server's Retry-After.
      const busy = e instanceof SyncError &&
        (e.serverCode ?? e.code) === "server_busy";
      if (!busy) this.close();
      throw e;
    }
  }

  /** Waits for the socket, at most `connectTimeoutMs`. */
  async #connected(): Promise<void> {
    if (this.#closed) {
      throw new SyncError("closed", "This SyncClient is closed");
    }
    if (this.connected) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ms = this.#connectTimeoutMs;
    try {
      await Promise.race([
        this.connection.ready(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() =>
            reject(
              new SyncError(
                "unreachable",
                `Cannot reach ${this.session.baseUrl}: no connection within ${ms} ms`,
              ),
            ), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** True once closed (by `close()` or a failed `sync()`). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops syncing: the socket closes and no timer is left (the database stays open).
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#stopFollowing();
    this.#unsubscribe();
    this.connection.close();
  }

  async #settle(): Promise<void> {
    for (let i = 0; i < 1000 && this.#inflight.size; i++) {
      await Promise.allSettled([...this.#inflight]);
    }
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.reportError(e)).finally(() =>
      this.#inflight.delete(q)
    );
    this.#inflight.add(q);
  }

  private reconcileAllRepos(): void {
    for (const repo of this.#repos) this.track(this.#reconcile(repo));
  }

  /** Reconciles the repositories the server stopped pushing (the ones this client keeps). */
  private catchUp(repos: readonly string[]): void {
    for (const repo of repos) {
      if (this.#repos.has(repo)) this.track(this.#reconcile(repo));
    }
  }

  /**
   * The server refused a push for lack of capacity: its commits are still here, so a
   * reconciliation after the server's `retryAfterMs` sends them.
   */
  #retryLater(repo: string, e: WsRequestError): void {
    const delay = e.retryAfterMs ?? BUSY_RETRY_DEFAULT_MS;
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      if (this.connected) this.track(this.#reconcile(repo));
    }, delay * (1 + Math.random() / 2));
    this.#retryTimers.add(timer);
  }

  async #reconcile(repo: string): Promise<void> {
    const stats = await this.db.syncWith(
      repo,
      this.connection.transport(),
      this.session.hooks,
    );
    // Refused or obsolete commits do not end a sync: report them.
    for (const e of stats.errors) {
      this.#keepError(e);
      this.reportError(new Error(`${repo}: ${e.code}: ${e.message}`));
    }
  }

  /** Records a server-reported error (bounded). */
  #keepError(e: WsError): void {
    this.errors.push(e);
    if (this.errors.length > MAX_KEPT_ERRORS) {
      this.errors.splice(0, this.errors.length - MAX_KEPT_ERRORS);
    }
  }

  #pushLocal(repo: Repository, nodes: readonly StoredCommit[]): void {
    if (!this.#repos.has(repo.path) || !this.connected) return;
    const ids: CommitId[] = nodes.map((n) => n.commit.id);
    const commits = ids.map((id) => repo.commitRecord(id)).filter((
      r,
    ): r is Uint8Array => r !== undefined);
    if (!commits.length) return;
    const message: SyncMessage = {
      repo: repo.path,
      commits,
      sessions: this.session.hooks.sessionRecords!(authorsOf(repo, ids)),
    };
    this.track(
      this.connection.request(encodeSyncMessage(message)).catch((e) => {
        if (e instanceof WsRequestError && e.code === "server_busy") {
          this.#retryLater(repo.path, e);
          return;
        }
        throw e;
      }),
    );
  }

  private async ingestPush(message: SyncMessage): Promise<void> {
    if (!this.#repos.has(message.repo) || !message.commits?.length) return;
    const repo = await this.db.open(message.repo);
    await ingestWith(repo, message, this.session.hooks);
  }
}
