/**
 * The open registry of a database: which repositories are open, opening them once however
 * many callers ask, closing them (explicitly or automatically: see residency.ts),
 * reopening on use one that was closed automatically, and holding opens back while a
 * compaction replaces a repository's file.
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
    if (this.#open.get(repo.path) !== repo) return;
    await repo.close(reason);
    if (this.#open.get(repo.path) === repo) {
      this.#open.delete(repo.path);
      this.#repos.delete(repo.path);
      this.#autoClosed.add(repo.path);
    }
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
      // A repository being compacted is reopened once its new file is in place.
      for (
        let c = this.#compacting.get(path);
        c;
        c = this.#compacting.get(path)
      ) {
        await c;
        this.ctx.checkOpen();
      }
      const r = await this.openOnce(path);
      // A compaction that started meanwhile closes `r`: wait for the new one.
      if (!this.#compacting.has(path)) return r;
    }
  }

  /** Opens a repository without waiting for a compaction of it (compaction uses it). */
  openOnce(path: RepoPath): Promise<OpenRepository> {
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

  /** Stops the sweep and closes every repository; returns the failures. */
  async closeAll(): Promise<unknown[]> {
    this.#residency.stop();
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
