/**
 * The open registry of a database: which repositories are open, opening them once however
 * many callers ask, closing them (explicitly or automatically: see residency.ts),
 * reopening on use one that was closed automatically, and holding opens back while a
 * compaction replaces a repository's file or an automatic close is under way.
 *
 * Work that must not see its repository close under it (a server ingesting a message)
 * runs through {@link OpenRepositories.use}: while it runs, the repository is not closed
 * automatically, and a compaction or an explicit close waits for it to end.
 *
 * @module
 */

import { indexLogSliced } from "./log_index.ts";
import type { RepoPath } from "../path.ts";
import type { RecoveryReport, Storage } from "../storage/storage.ts";
import type { RepoContext } from "./context.ts";
import { OpenRepository } from "./open_repository.ts";
import { Residency, type ResidencyOptions } from "./residency.ts";

/** The repositories a database has open. */
export class OpenRepositories {
  readonly #repos = new Map<RepoPath, Promise<OpenRepository>>();
  readonly #open = new Map<RepoPath, OpenRepository>();
  /** Repositories closed automatically (idle, budget): reopened on their next use. */
  readonly #autoClosed = new Set<RepoPath>();
  /** Repositories being compacted: `open` waits for these to end. */
  readonly #compacting = new Map<RepoPath, Promise<void>>();
  /** Automatic closes under way: `open` waits for them, then reopens. */
  readonly #closing = new Map<RepoPath, Promise<void>>();
  /** Work in progress per repository ({@link use}). */
  readonly #uses = new Map<RepoPath, number>();
  /** Waiting for the uses of a repository to end (compaction, explicit close). */
  readonly #idleWaiters = new Map<RepoPath, (() => void)[]>();
  readonly #openListeners = new Set<(repo: RepoPath) => void>();
  readonly #residency: Residency;
  /** Repairs made while opening repository logs. */
  readonly recoveries: RecoveryReport[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly ctx: RepoContext<OpenRepository>,
    residency: ResidencyOptions,
    /**
     * How an asynchronous open indexes a log: in slices of `sliceMs`, calling `pause`
     * between them (the database yields to the event loop).
     */
    private readonly slicing: {
      readonly sliceMs: number;
      readonly pause: () => Promise<void>;
    },
  ) {
    this.#residency = new Residency(
      residency,
      () => this.#open.values(),
      (repo, reason) => this.#autoClose(repo, reason),
    );
    this.#residency.start();
  }

  async #autoClose(
    repo: OpenRepository,
    reason: "idle" | "budget",
  ): Promise<void> {
    const path = repo.path;
    if (this.#open.get(path) !== repo || this.#closing.has(path)) return;
    // In use (an ingest running): not idle, whatever the sweep saw.
    if (this.#uses.get(path)) return;
    const closing = (async () => {
      try {
        await repo.close(reason);
        // Forgotten only once closed (a close that failed leaves it registered).
        if (this.#open.get(path) === repo) {
          this.#open.delete(path);
          this.#repos.delete(path);
          this.#autoClosed.add(path);
        }
      } finally {
        this.#closing.delete(path);
      }
    })();
    this.#closing.set(path, closing.catch(() => {}));
    await closing;
  }

  /**
   * Runs `fn` on the open repository at `path` and keeps it from closing under `fn`: no
   * automatic close meanwhile, and compactions and explicit closes wait for `fn` to end.
   * A repository that is closing automatically when `use` starts is waited for and
   * reopened. `fn` must not wait for a compaction or a close of the same repository.
   */
  async use<T>(
    path: RepoPath,
    fn: (r: OpenRepository) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      const r = await this.open(path);
      if (r.closed || this.#closing.has(path) || this.#compacting.has(path)) {
        // It began closing between the open and now: wait for that, open again.
        await (this.#closing.get(path) ?? this.#compacting.get(path));
        this.ctx.checkOpen();
        continue;
      }
      this.#uses.set(path, (this.#uses.get(path) ?? 0) + 1);
      try {
        return await fn(r);
      } finally {
        const left = (this.#uses.get(path) ?? 1) - 1;
        if (left > 0) this.#uses.set(path, left);
        else {
          this.#uses.delete(path);
          const waiters = this.#idleWaiters.get(path) ?? [];
          this.#idleWaiters.delete(path);
          for (const w of waiters) w();
        }
      }
    }
  }

  /** Resolves once no {@link use} of `path` runs. */
  #whenUnused(path: RepoPath): Promise<void> {
    if (!this.#uses.get(path)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#idleWaiters.get(path) ?? [];
      list.push(resolve);
      this.#idleWaiters.set(path, list);
    });
  }

  /** Reopens, synchronously, a repository that was closed automatically. */
  reopen(path: RepoPath): OpenRepository {
    this.ctx.checkOpen();
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
    if (!this.storage.openLogSync) {
      throw new Error(
        `Repository ${path} was closed while idle and this storage cannot reopen it synchronously: await db.open("${path}")`,
      );
    }
    const log = this.storage.openLogSync(path);
    if (log.recovery) this.recoveries.push(log.recovery);
    const r = new OpenRepository(this.ctx, path, log);
    this.#open.set(path, r);
    this.#repos.set(path, Promise.resolve(r));
    this.#autoClosed.delete(path);
    this.#announceOpen(path);
    return r;
  }

  /** Opens a repository (idempotent; concurrent calls share one open). */
  async open(path: RepoPath): Promise<OpenRepository> {
    for (;;) {
      // A repository being compacted is reopened once its new file is in place, one
      // closing automatically once it is closed.
      for (
        let c = this.#compacting.get(path) ?? this.#closing.get(path);
        c;
        c = this.#compacting.get(path) ?? this.#closing.get(path)
      ) {
        await c;
        this.ctx.checkOpen();
      }
      const r = await this.#openOnce(path);
      // A compaction that started meanwhile closes `r`: wait for the new one.
      if (!this.#compacting.has(path)) return r;
    }
  }

  /**
   * Opens a repository without waiting for a compaction of it (compaction uses it); during
   * a compaction, resolves once the repository's {@link use}s ended, so the compaction
   * never closes it under them.
   */
  async openOnce(path: RepoPath): Promise<OpenRepository> {
    if (this.#compacting.has(path)) await this.#whenUnused(path);
    return await this.#openOnce(path);
  }

  #openOnce(path: RepoPath): Promise<OpenRepository> {
    let p = this.#repos.get(path);
    if (!p) {
      this.#autoClosed.delete(path);
      p = this.storage.openLog(path).then(async (log) => {
        if (log.recovery) this.recoveries.push(log.recovery);
        // Indexed in slices: a large log opens without one long task (browsers).
        const found = await indexLogSliced(
          log,
          path,
          this.slicing.sliceMs,
          this.slicing.pause,
        );
        const r = new OpenRepository(this.ctx, path, log, found);
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

  /** The open repository at `path` without any check (undefined when not open). */
  get(path: RepoPath): OpenRepository | undefined {
    return this.#open.get(path);
  }

  /** Number of open repositories. */
  get size(): number {
    return this.#open.size;
  }

  /** True when a repository is open. */
  isOpen(path: RepoPath): boolean {
    return this.#open.has(path);
  }

  /** An open repository (reopened if it was closed automatically); throws when not open. */
  repository(path: RepoPath): OpenRepository {
    this.ctx.checkOpen();
    const r = this.#open.get(path);
    if (!r && this.#autoClosed.has(path)) return this.reopen(path);
    if (!r) {
      throw new Error(
        `Repository ${path} is not open: call await db.open("${path}") first`,
      );
    }
    return r;
  }

  /** Paths of the repositories open now. */
  paths(): RepoPath[] {
    return [...this.#open.values()].filter((r) => !r.closed).map((r) => r.path);
  }

  /** Listens to repositories being opened; returns an unsubscribe. */
  onOpen(listener: (repo: RepoPath) => void): () => void {
    this.#openListeners.add(listener);
    return () => void this.#openListeners.delete(listener);
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

  /** Runs the idle sweep and the memory budget now. */
  sweep(): Promise<void> {
    return this.#residency.sweep();
  }

  /** Flushes every open repository. */
  async flush(): Promise<void> {
    await Promise.all([...this.#open.values()].map((r) => r.flush()));
  }

  /** True while a compaction of `path` runs. */
  isCompacting(path: RepoPath): boolean {
    return this.#compacting.has(path);
  }

  /**
   * Marks `path` as being compacted: `open` waits from now on. Returns the function that
   * ends the mark and releases the waiting opens.
   */
  beginCompaction(path: RepoPath): () => void {
    let done!: () => void;
    this.#compacting.set(path, new Promise<void>((res) => done = res));
    return () => {
      this.#compacting.delete(path);
      done();
    };
  }

  /**
   * Forgets `replaced` (closed for compaction; its file was rewritten) and lets the next
   * open read the new file.
   */
  replaced(path: RepoPath, replaced: OpenRepository): void {
    if (this.#open.get(path) === replaced) {
      this.#open.delete(path);
      this.#repos.delete(path);
    }
    this.#compacting.delete(path);
  }

  /** Flushes and closes one repository. */
  async close(path: RepoPath): Promise<void> {
    this.#autoClosed.delete(path);
    await this.#closing.get(path);
    // Work running on it ends first (it would fail on a closed repository).
    await this.#whenUnused(path);
    const opening = this.#repos.get(path);
    const r = await opening;
    if (!r) return;
    // Forgotten only once closed: a close that fails (disk full) leaves the repository
    // open and registered, so later writes, `flush()` and `close()` retry its commits.
    await r.close();
    if (this.#repos.get(path) === opening) {
      this.#repos.delete(path);
      this.#open.delete(path);
    }
  }

  /**
   * Closes `path` the way an idle sweep would, unless it is pinned or in use: its items
   * and `open` reopen it on next use. For tools that opened a repository only to look at
   * it (a GC pass), so it does not stay resident.
   */
  async release(path: RepoPath): Promise<void> {
    const r = this.#open.get(path);
    if (!r || r.closed || r.pinned) return;
    await this.#autoClose(r, "idle");
  }

  /** Stops the sweep and closes every repository; returns the failures. */
  async closeAll(): Promise<unknown[]> {
    this.#residency.stop();
    await Promise.all(this.#closing.values());
    const repos = await Promise.allSettled([...this.#repos.values()]);
    const errors: unknown[] = [];
    for (const r of repos) {
      if (r.status === "fulfilled") {
        await r.value.close().catch((e) => errors.push(e));
      }
    }
    this.#repos.clear();
    this.#open.clear();
    return errors;
  }
}
