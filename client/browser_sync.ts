/**
 * Background sync of a browser database with a Capra server. It obtains a root-signed
 * session (`POST /v1/sessions`), then keeps a WebSocket (lib/sync SyncClient: pushes the
 * moment commits are accepted, reconnect with backoff) and falls back to signed HTTP
 * rounds on a poll interval whenever the socket is down. Failures back off
 * exponentially; edits made offline stay in IndexedDB and go out on reconnect. State
 * changes are observable as `statechange` events.
 *
 * With several tabs on one database only the leader tab (see tab_channel.ts) talks to
 * the server; in the other tabs a BrowserSync forwards the repositories it watches to
 * the leader and mirrors the leader's state.
 *
 * @module
 */

import type { Database } from "../lib/database/database.ts";
import type { FetchLike } from "../lib/sync/http_transport.ts";
import {
  ServerSession,
  type SignInCredentials,
} from "../lib/sync/server_session.ts";
import { SyncClient } from "../lib/sync/sync_client.ts";
import { SyncError } from "../lib/sync/sync_round.ts";
import { Account } from "../lib/sync/account.ts";
import type { NetworkState, SyncState } from "./sync_state.ts";
import { TabGroup, type TabMessage } from "./tab_channel.ts";
import { IdbStorage } from "./idb_storage.ts";
import { PendingCommits } from "./pending_commits.ts";

export type { NetworkState, SyncState, SyncStatus } from "./sync_state.ts";

/** How often watched repositories are reconciled over HTTP while the socket is down. */
export const POLL_INTERVAL_MS = 1000;
/** First retry delay after a failed round. */
export const RETRY_BASE_MS = 250;
/** Longest retry delay. */
export const RETRY_MAX_MS = 15_000;
/**
 * While the socket is up, how long after a local commit the pushed commits are
 * confirmed by one reconciliation round (a burst of edits costs one round).
 */
export const CONFIRM_DELAY_MS = 250;

/** Options of {@link BrowserSync}. */
export interface BrowserSyncOptions {
  /** Server origin, e.g. `location.origin`. */
  readonly serverUrl: string;
  readonly fetch?: FetchLike;
  /** Bearer token binding the session to a user. */
  readonly token?: string;
  readonly pollIntervalMs?: number;
  /** Set false to use HTTP rounds only. */
  readonly webSocket?: boolean;
  /** This device's name in its user's device list (default: from the user agent). */
  readonly device?: string;
}

/**
 * Keeps repositories of a browser database in sync with a server.
 *
 * @example
 * ```ts ignore
 * const sync = new BrowserSync(db, { serverUrl: location.origin });
 * sync.addEventListener("statechange", () => console.log(sync.state.status));
 * sync.watch("/todo/home");
 * ```
 */
export class BrowserSync extends EventTarget {
  readonly #db: Database;
  readonly #options: BrowserSyncOptions;
  readonly #watched = new Set<string>();
  readonly #dirty = new Set<string>();
  #session: Promise<ServerSession> | null = null;
  #ws: SyncClient | null = null;
  #wsStarting = false;
  #running: Promise<void> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #pollTimer: ReturnType<typeof setInterval>;
  #failures = 0;
  #stopped = false;
  #state: SyncState;
  readonly #stops: (() => void)[] = [];
  readonly #tabs: TabGroup | undefined;
  readonly #unconfirmed: PendingCommits;
  #revoked = false;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  #confirming: Promise<void> | null = null;

  constructor(db: Database, options: BrowserSyncOptions) {
    super();
    this.#db = db;
    this.#options = options;
    this.#tabs = TabGroup.of(db);
    this.#unconfirmed = new PendingCommits(db, IdbStorage.of(db) ?? null);
    this.#unconfirmed.onChange = () => this.#update({});
    this.#state = {
      online: navigatorOnline(),
      network: navigatorOnline() ? "online" : "offline",
      status: "idle",
      transport: "http",
      pending: [],
      pendingCommits: 0,
      role: this.#leading ? "leader" : "follower",
    };
    this.#stops.push(db.onCommits((repo, nodes) => {
      if (this.#leading && this.#watched.has(repo.path)) {
        this.#unconfirmed.add(
          repo.path,
          nodes.map((n) => ({ id: n.commit.id, key: n.commit.key })),
        );
        this.#confirmSoon();
      }
      this.#markDirty(repo.path);
    }));
    const tabs = this.#tabs;
    if (tabs) {
      const onLeader = () => this.#lead();
      const onMessage = (ev: Event) =>
        this.#onTabMessage((ev as CustomEvent<TabMessage>).detail);
      // Commits another tab stored: the leader pushes them to the server.
      const onTabCommits = (ev: Event) => {
        const { repo, ids } =
          (ev as CustomEvent<{ repo: string; ids: string[] }>).detail;
        if (this.#leading && this.#watched.has(repo)) {
          // Every tab signs with this replica's key: their commits are ours.
          this.#unconfirmed.add(repo, (ids ?? []).map((id) => ({ id })));
          this.#dirty.add(repo);
          this.#kick();
          this.#confirmSoon();
        }
      };
      const onCleared = () => this.stop();
      tabs.addEventListener("leader", onLeader);
      tabs.addEventListener("message", onMessage);
      tabs.addEventListener("tabcommits", onTabCommits);
      tabs.addEventListener("cleared", onCleared);
      this.#stops.push(() => {
        tabs.removeEventListener("leader", onLeader);
        tabs.removeEventListener("message", onMessage);
        tabs.removeEventListener("tabcommits", onTabCommits);
        tabs.removeEventListener("cleared", onCleared);
      });
    }
    if (typeof addEventListener === "function") {
      const online = () => {
        if (!this.#leading) return;
        this.#failures = 0;
        this.#update({ online: true, network: "online", status: "idle" });
        for (const r of this.#watched) this.#dirty.add(r);
        this.#kick();
      };
      const offline = () => {
        if (!this.#leading) return;
        this.#closeSocket();
        this.#update({ online: false, network: "offline", status: "offline" });
      };
      addEventListener("online", online);
      addEventListener("offline", offline);
      this.#stops.push(() => {
        removeEventListener("online", online);
        removeEventListener("offline", offline);
      });
    }
    this.#pollTimer = setInterval(() => {
      if (!this.#leading) return;
      // Show the transport actually in use (a blocked socket keeps reconnecting).
      const transport = this.#ws?.connected ? "websocket" : "http";
      if (transport !== this.#state.transport) this.#update({ transport });
      if (this.#ws?.connected) return; // the socket pushes changes
      for (const r of this.#watched) this.#dirty.add(r);
      if (this.#retryTimer === undefined) this.#kick();
    }, options.pollIntervalMs ?? POLL_INTERVAL_MS);
  }

  /** The current state. */
  get state(): SyncState {
    return this.#state;
  }

  /** True when this tab talks to the server (the only tab, or the leader). */
  get #leading(): boolean {
    return !this.#tabs || this.#tabs.isLeader;
  }

  /** Starts syncing a repository (and syncs it now). */
  watch(repo: string): void {
    if (this.#stopped) return;
    this.#watched.add(repo);
    if (!this.#leading) {
      this.#tabs!.post({ t: "watch", repos: [repo] });
      return;
    }
    this.#countUnconfirmed(repo);
    this.#ws?.add(repo).catch(() => {});
    this.#markDirty(repo);
  }

  /** Counts the repository's commits stored earlier that no sync confirmed yet. */
  #countUnconfirmed(repo: string): void {
    this.#unconfirmed.load(repo).catch((e) =>
      this.#update({ lastError: (e as Error)?.message ?? String(e) })
    );
  }

  /**
   * Confirms, one reconciliation round over the socket later, the commits it pushed
   * (HTTP rounds confirm what they send themselves).
   */
  #confirmSoon(): void {
    if (this.#confirmTimer !== undefined || this.#stopped) return;
    this.#confirmTimer = setTimeout(() => {
      this.#confirmTimer = undefined;
      // One round at a time; commits stored meanwhile get the next one.
      if (this.#confirming) {
        this.#confirming.then(() => this.#confirmSoon());
        return;
      }
      this.#confirming = this.#confirmOverSocket().catch(() => {}).finally(
        () => this.#confirming = null,
      );
    }, CONFIRM_DELAY_MS);
  }

  async #confirmOverSocket(): Promise<void> {
    const ws = this.#ws;
    if (
      !ws?.connected || !this.#leading || this.#db.closed || this.#revoked
    ) return;
    const repos = [...this.#watched].filter((r) =>
      this.#unconfirmed.countOf(r) > 0
    );
    if (!repos.length) return;
    const snaps = await Promise.all(
      repos.map((r) => this.#unconfirmed.begin(r)),
    );
    const errorsBefore = ws.errors.length;
    try {
      await ws.sync();
    } catch {
      // A failed sync closed the client: poll over HTTP until a new socket is up.
      if (this.#ws === ws) this.#closeSocket();
      return;
    }
    // A refused commit proves nothing about the others: keep them all counted.
    if (ws.errors.length !== errorsBefore || this.#ws !== ws) return;
    for (const snap of snaps) await this.#unconfirmed.confirm(snap);
  }

  /**
   * Syncs every watched repository over HTTP now; resolves when done (in a follower tab,
   * asks the leader and resolves at once).
   */
  async syncNow(): Promise<void> {
    if (!this.#leading) return this.#tabs!.post({ t: "sync" });
    for (const r of this.#watched) this.#dirty.add(r);
    this.#kick();
    await this.#running;
  }

  /**
   * How many of this replica's commits in the watched repositories the server has not
   * confirmed, once every write made so far is stored: what clearing local data now
   * would lose. Read from IndexedDB, so it also counts what other tabs wrote a moment
   * ago; it may count a just-confirmed commit, never miss an unconfirmed one.
   */
  async unsyncedCommits(): Promise<number> {
    if (!this.#db.closed) await this.#db.flush();
    const stored = new PendingCommits(
      this.#db,
      IdbStorage.of(this.#db) ?? null,
    );
    let n = 0;
    for (const repo of this.#watched) {
      await stored.load(repo);
      // Commits this page saw confirmed may lie after the stored confirmed key.
      const ids = new Set(
        stored.idsOf(repo).filter((id) =>
          !this.#unconfirmed.wasConfirmed(repo, id)
        ),
      );
      if (this.#leading) {
        for (const id of this.#unconfirmed.idsOf(repo)) ids.add(id);
      }
      n += ids.size;
    }
    return n;
  }

  /**
   * Signs in (or up) with `credentials` (a password, or `passkeySignIn` /
   * `passkeySignUp`): this database's key is bound to the user, so its next sessions
   * renew without credentials, offline edits included, until the device is revoked.
   * Rejects with a `SyncError` whose `serverCode` says why (`bad_credentials`,
   * `too_many_attempts`, `name_taken`, `invite_used`, `key_bound_to_other_user`…).
   */
  async signIn(credentials: SignInCredentials): Promise<ServerSession> {
    const session = await ServerSession.create(
      this.#db,
      this.#options.serverUrl,
      {
        ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
        signIn: credentials,
        device: this.#deviceName(),
      },
    );
    this.#session = Promise.resolve(session);
    this.#closeSocket();
    for (const r of this.#watched) this.#dirty.add(r);
    this.#kick();
    return session;
  }

  /** The signed-in account of this device's session (an anonymous one has no user). */
  async account(): Promise<Account> {
    return new Account(await this.#serverSession());
  }

  #deviceName(): string {
    if (this.#options.device) return this.#options.device;
    const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator
      ?.userAgent ?? "";
    const browser = /Edg\//.test(ua)
      ? "Edge"
      : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrome\//.test(ua)
      ? "Chrome"
      : /Safari\//.test(ua)
      ? "Safari"
      : "Browser";
    const os = /Android/.test(ua)
      ? "Android"
      : /iPhone|iPad/.test(ua)
      ? "iOS"
      : /Mac OS X/.test(ua)
      ? "macOS"
      : /Windows/.test(ua)
      ? "Windows"
      : /Linux/.test(ua)
      ? "Linux"
      : "";
    return os ? `${browser} on ${os}` : browser;
  }

  /**
   * The server revoked this device: stop talking to it, keep every local edit, and
   * report the ones the server never confirmed (`state.revoked`, a `revoked` event).
   */
  #revokedNow(): void {
    if (this.#state.status === "revoked") return;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#retryTimer);
    this.#closeSocket();
    this.#revoked = true;
    const revoked = this.#unconfirmed.report();
    this.#update({ status: "revoked", revoked, lastError: "session_revoked" });
    this.dispatchEvent(new CustomEvent("revoked", { detail: revoked }));
  }

  /** This tab became the leader: start talking to the server. */
  #lead(): void {
    if (this.#stopped) return;
    this.#failures = 0;
    this.#update({
      role: "leader",
      online: navigatorOnline(),
      network: navigatorOnline() ? "online" : "offline",
      status: "idle",
    });
    for (const r of this.#watched) {
      this.#countUnconfirmed(r);
      this.#dirty.add(r);
    }
    this.#kick();
  }

  #onTabMessage(m: TabMessage): void {
    if (this.#stopped) return;
    if (m.t === "state" && !this.#leading && m.state) {
      this.#state = { ...m.state, role: "follower" };
      this.dispatchEvent(
        new CustomEvent("statechange", { detail: this.#state }),
      );
    } else if (m.t === "leader" && !this.#leading && this.#watched.size) {
      this.#tabs!.post({ t: "watch", repos: [...this.#watched] });
    } else if (m.t === "watch" && this.#leading && Array.isArray(m.repos)) {
      for (const r of m.repos) {
        if (typeof r !== "string") continue;
        // Open it here: what the server sends is stored by this tab.
        this.#db.open(r).then(() => this.watch(r)).catch((e) =>
          this.#update({ lastError: (e as Error)?.message ?? String(e) })
        );
      }
      this.#update({}); // a new follower needs the current state
    } else if (m.t === "sync" && this.#leading) {
      this.syncNow().catch(() => {});
    }
  }

  /** Stops timers, the socket and listeners. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#confirmTimer);
    this.#closeSocket();
    for (const s of this.#stops.splice(0)) s();
  }

  #closeSocket(): void {
    this.#ws?.close();
    this.#ws = null;
    if (this.#state.transport !== "http") this.#update({ transport: "http" });
  }

  #markDirty(repo: string): void {
    if (!this.#watched.has(repo) || !this.#leading) return;
    if (this.#ws?.connected) return; // the socket pushes local commits itself
    this.#dirty.add(repo);
    this.#update({});
    this.#kick();
  }

  #kick(): void {
    if (
      this.#running || this.#db.closed || this.#stopped || !this.#leading ||
      this.#revoked
    ) return;
    this.#running = this.#drain().finally(() => this.#running = null);
  }

  #serverSession(): Promise<ServerSession> {
    this.#session ??= ServerSession.create(this.#db, this.#options.serverUrl, {
      // No default here: lib/sync's own default fetch must work in browsers.
      ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
      ...(this.#options.token ? { token: this.#options.token } : {}),
      device: this.#deviceName(),
    }).catch((e) => {
      this.#session = null;
      throw e;
    });
    return this.#session;
  }

  /** Opens the live socket once HTTP works (a failed socket leaves polling on). */
  #startSocket(): void {
    if (
      this.#options.webSocket === false || this.#ws || this.#wsStarting ||
      this.#revoked ||
      typeof WebSocket === "undefined" || !navigatorOnline()
    ) return;
    this.#wsStarting = true;
    // The socket uses the session of the HTTP rounds: one issuance per page.
    this.#serverSession().then((session) =>
      SyncClient.connect(this.#db, this.#options.serverUrl, {
        repos: [...this.#watched],
        session,
        onError: (e) => {
          if (/session_revoked/.test(String((e as Error)?.message))) {
            this.#revokedNow();
          } else this.#update({ lastError: (e as Error)?.message });
        },
      })
    ).then((ws) => {
      if (this.#stopped || !navigatorOnline()) return ws.close();
      this.#ws = ws;
      ws.connection.ready().then(() => {
        if (this.#ws !== ws) return;
        this.#update({ transport: "websocket" });
        this.#confirmSoon();
      }, () => {});
    }).catch(() => {}).finally(() => this.#wsStarting = false);
  }

  async #drain(): Promise<void> {
    while (this.#dirty.size && !this.#db.closed) {
      const repo = this.#dirty.values().next().value as string;
      this.#dirty.delete(repo);
      this.#update({ status: "syncing" });
      try {
        const session = await this.#serverSession();
        const snap = await this.#unconfirmed.begin(repo);
        const stats = await this.#db.syncWith(
          repo,
          session.httpTransport(repo),
          session.hooks,
        );
        // A refused commit proves nothing about the others: keep them all counted.
        if (!stats.errors.length) await this.#unconfirmed.confirm(snap);
      } catch (e) {
        this.#dirty.add(repo);
        this.#failed(e);
        return;
      }
      this.#failures = 0;
      this.#update({
        online: true,
        network: "online",
        status: "idle",
        lastSyncAt: Date.now(),
        lastError: undefined,
      });
      this.dispatchEvent(new CustomEvent("synced", { detail: { repo } }));
      this.#startSocket();
    }
  }

  #failed(e: unknown): void {
    if (
      e instanceof SyncError &&
      (e.serverCode ?? e.code) === "session_revoked"
    ) {
      this.#revokedNow();
      return;
    }
    // fetch rejects with a TypeError when no answer came back at all.
    const network: NetworkState = !navigatorOnline()
      ? "offline"
      : e instanceof TypeError
      ? "unreachable"
      : "online";
    this.#update({
      online: network === "online",
      network,
      status: network === "online" ? "error" : "offline",
      lastError: (e as Error)?.message ?? String(e),
    });
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.#failures++);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#kick();
    }, delay);
  }

  #update(patch: Partial<SyncState>): void {
    if (!this.#leading) return;
    this.#state = {
      ...this.#state,
      ...patch,
      pending: [...this.#dirty],
      pendingCommits: this.#unconfirmed.count,
    };
    this.dispatchEvent(new CustomEvent("statechange", { detail: this.#state }));
    this.#tabs?.post({ t: "state", state: this.#state });
  }
}

function navigatorOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine ?? true;
}
