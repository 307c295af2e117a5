/**
 * Several tabs of one origin sharing one browser replica (one IndexedDB database).
 *
 * The design, in three rules:
 *
 * 1. **Every commit record is written to IndexedDB exactly once, by the tab that
 *    received it first.** A tab appends the commits it authors; commits from the server
 *    enter through one tab only, the *leader*. Nothing a tab learns from another tab is
 *    appended again: it is applied in memory only (`ingest(…, { alreadyStored: true })`).
 * 2. **The IndexedDB log is the source of truth; the BroadcastChannel only says "look".**
 *    Once a tab's chunk has committed it posts `{ t: "appended", repo }`; the other tabs
 *    read the chunks appended since the last one they hold (`IdbStorage.readTail`,
 *    one indexed cursor) and apply the commit records in them. A missed or reordered
 *    message cannot lose anything: the next read (on any later message, on becoming
 *    leader, when the tab becomes visible, when a repository opens) picks it up, and a
 *    tab that opens later simply reads the whole log. Appends never interleave: each chunk
 *    (whole records) is one readwrite transaction, which IndexedDB runs one at a time
 *    across all connections, and auto-increment keys order the chunks globally.
 * 3. **One leader per database, elected with a Web Lock** (`capra-leader:<name>`, held
 *    until the tab closes; the next waiting tab takes over). Only the leader talks to
 *    the server (one session, one WebSocket for every tab): it persists what the server
 *    sends (which the others then read), pushes the other tabs' commits, and broadcasts
 *    its sync state, which followers show as their own. Followers forward the
 *    repositories they watch. A new leader first reads every open log's tail, so it
 *    never re-stores a commit its predecessor stored but did not announce.
 *
 * Logout / clear: the clearing tab posts `{ t: "clear" }`; every tab closes its
 * IndexedDB connection at once (pending writes are dropped), stops syncing, closes its
 * database and calls its `onClearedElsewhere`; then `indexedDB.deleteDatabase` runs
 * unblocked. A tab that missed the message still gets IndexedDB's `versionchange` event
 * and does the same.
 *
 * Without BroadcastChannel or Web Locks (old browsers, Deno) a tab is its own leader.
 *
 * @module
 */

import type { Database } from "../lib/database/database.ts";
import { RecordKind } from "../lib/core/records.ts";
import type { IdbStorage } from "./idb_storage.ts";
import type { SyncState } from "./sync_state.ts";

/** Messages between the tabs of one database. */
export type TabMessage =
  | { readonly t: "appended"; readonly repo: string }
  | { readonly t: "clear" }
  | { readonly t: "leader" }
  | { readonly t: "state"; readonly state: SyncState }
  | { readonly t: "watch"; readonly repos: readonly string[] }
  | { readonly t: "sync" };

const groups = new WeakMap<Database, TabGroup>();

/**
 * The tabs sharing one browser database, as seen from this tab. Events: `leader` (this
 * tab became the leader), `message` (a {@link TabMessage} for the sync layer, as
 * `CustomEvent.detail`), `tabcommits` (commits of another tab were applied; detail
 * `{ repo, ids }`), `cleared` (the database was deleted by any tab).
 */
export class TabGroup extends EventTarget {
  readonly #db: Database;
  readonly #storage: IdbStorage;
  readonly #channel: BroadcastChannel | null;
  readonly #reads = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  readonly #abort = new AbortController();
  readonly #onCleared: (() => void) | undefined;
  #resign: (() => void) | null = null;
  #leader = false;
  #closed = false;
  #cleared = false;
  readonly #onVisible = () => {
    if (document.visibilityState === "visible") this.catchUpAll();
  };

  /**
   * @internal use openBrowserDatabase. `onCleared` runs when another tab clears the
   * database (message or IndexedDB `versionchange`).
   */
  constructor(db: Database, storage: IdbStorage, onCleared?: () => void) {
    super();
    this.#db = db;
    this.#storage = storage;
    this.#onCleared = onCleared;
    groups.set(db, this);
    storage.onClosedElsewhere = () => this.#clearedHere();
    this.#channel = typeof BroadcastChannel === "undefined"
      ? null
      : new BroadcastChannel(`capra:${storage.name}`);
    if (this.#channel) {
      this.#channel.onmessage = (ev: MessageEvent<TabMessage>) =>
        this.#receive(ev.data);
    }
    storage.onAppended = (repo) => this.post({ t: "appended", repo });
    if (typeof document !== "undefined") {
      document.addEventListener("visibilitychange", this.#onVisible);
    }
    this.#elect();
  }

  /** The group of a database opened by openBrowserDatabase, if any. */
  static of(db: Database): TabGroup | undefined {
    return groups.get(db);
  }

  /** The IndexedDB database name. */
  get name(): string {
    return this.#storage.name;
  }

  /** True while this tab is the one that syncs with the server. */
  get isLeader(): boolean {
    return this.#leader;
  }

  /** True once the database was cleared (here or in another tab). */
  get cleared(): boolean {
    return this.#cleared;
  }

  /** Posts a message to the other tabs. */
  post(message: TabMessage): void {
    if (this.#closed) return;
    try {
      this.#channel?.postMessage(message);
    } catch { /* channel closed meanwhile */ }
  }

  #elect(): void {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (!locks || !this.#channel) {
      queueMicrotask(() => this.#becomeLeader());
      return;
    }
    locks.request(
      `capra-leader:${this.#storage.name}`,
      { signal: this.#abort.signal },
      () =>
        new Promise<void>((resolve) => {
          this.#resign = resolve;
          if (this.#closed) return resolve();
          this.#becomeLeader();
        }),
    ).catch(() => {/* aborted: the tab closed before its turn */});
  }

  async #becomeLeader(): Promise<void> {
    if (this.#closed) return;
    // Apply whatever the previous leader stored before syncing, so nothing from the
    // server is stored twice.
    await this.catchUpAll();
    if (this.#closed) return;
    this.#leader = true;
    this.post({ t: "leader" });
    this.dispatchEvent(new Event("leader"));
  }

  #receive(m: TabMessage | undefined): void {
    if (this.#closed || !m || typeof m !== "object") return;
    switch (m.t) {
      case "appended":
        if (typeof m.repo === "string") void this.catchUp(m.repo);
        return;
      case "clear":
        this.#clearedHere();
        return;
      default:
        this.dispatchEvent(new CustomEvent("message", { detail: m }));
    }
  }

  /** Applies what other tabs appended to every open log. */
  async catchUpAll(): Promise<void> {
    await Promise.all(this.#storage.openRepos().map((r) => this.catchUp(r)));
  }

  /**
   * Applies, in memory, the commits other tabs appended to `repo`'s log since this tab
   * last looked (no-op when the repository is not open here). Concurrent calls coalesce.
   */
  catchUp(repo: string): Promise<void> {
    const running = this.#reads.get(repo);
    if (running) {
      this.#again.add(repo);
      return running;
    }
    const run = this.#readTails(repo).catch((e) => {
      if (!this.#closed && !this.#cleared) {
        console.error(`capra: cannot read other tabs' commits of ${repo}:`, e);
      }
    }).finally(() => this.#reads.delete(repo));
    this.#reads.set(repo, run);
    return run;
  }

  async #readTails(repo: string): Promise<void> {
    do {
      this.#again.delete(repo);
      if (this.#db.closed || !this.#storage.hasOpenLog(repo)) return;
      // The repository may still be opening: wait for it (no new open happens).
      const r = await this.#db.open(repo);
      const payloads = await this.#storage.readTail(repo);
      const commits = payloads.filter((p) => p[0] === RecordKind.Commit);
      if (!commits.length || r.closed) continue;
      const res = await r.ingest(commits, undefined, { alreadyStored: true });
      for (const x of res.rejected) {
        console.error(`capra: another tab's commit in ${repo}: ${x.reason}`);
      }
      if (res.accepted.length) {
        this.dispatchEvent(
          new CustomEvent("tabcommits", {
            detail: { repo, ids: res.accepted },
          }),
        );
      }
    } while (this.#again.has(repo));
  }

  /** Another tab cleared the database: drop this tab's data and session too. */
  #clearedHere(): void {
    if (this.#cleared) return;
    this.#cleared = true;
    this.#storage.discard();
    this.dispatchEvent(new Event("cleared"));
    this.close();
    this.#db.close().catch(() => {/* storage gone: nothing left to flush */});
    this.#onCleared?.();
  }

  /**
   * Clears the database in every tab (logout): tells the other tabs to let go, closes
   * this tab's database without writing what is pending, and deletes the IndexedDB
   * database once every connection is closed.
   */
  async clearEverywhere(): Promise<void> {
    this.post({ t: "clear" });
    this.#cleared = true;
    this.#storage.discard();
    this.dispatchEvent(new Event("cleared"));
    this.close();
    await this.#db.close().catch(() => {});
    await deleteIdb(this.#storage.name);
  }

  /** Leaves the group (closing the database does it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#leader = false;
    this.#abort.abort();
    this.#resign?.();
    this.#channel?.close();
    if (this.#storage.onAppended) this.#storage.onAppended = null;
    if (typeof document !== "undefined") {
      document.removeEventListener("visibilitychange", this.#onVisible);
    }
  }
}

/**
 * Deletes an IndexedDB database. While another connection is open the deletion is
 * `blocked`: the other tabs are asked (again) to close theirs, and the deletion then
 * completes.
 */
export function deleteIdb(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => {
      if (typeof BroadcastChannel === "undefined") return;
      const ch = new BroadcastChannel(`capra:${name}`);
      ch.postMessage({ t: "clear" } satisfies TabMessage);
      ch.close();
    };
  });
}
