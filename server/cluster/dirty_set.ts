/**
 * Repositories the stream may not hold every commit of, kept in `capra-nats-dirty.json`
 * so the knowledge survives a crash. A repository enters the set (written before the
 * commit's acknowledgement leaves the server, so even a SIGKILL right after cannot lose
 * it) when one of its commits is queued for publishing, and leaves it once every queued
 * commit was acknowledged by JetStream. A commit that could not be published (NATS down
 * too long, queue full) marks its repository *failed*: it stays in the set until it was
 * reconciled with another member or republished.
 *
 * @module
 */

import { join } from "node:path";
import { parsePath, type RepoPath } from "../../lib/path.ts";

/** File name of the dirty set, in the data directory. */
export const DIRTY_FILE = "capra-nats-dirty.json";
/** A repository leaves the set this long after its last queued commit was acknowledged. */
export const DIRTY_SETTLE_MS = 1000;
/** Most repositories the file may name (beyond: the whole member is reconciled). */
export const MAX_DIRTY_REPOS = 1_000_000;

/** The dirty set of one data directory. */
export class DirtySet {
  readonly #path: string;
  /** What the file says (in-flight and failed repositories). */
  readonly #repos = new Set<RepoPath>();
  readonly #pending = new Map<RepoPath, number>();
  readonly #failed = new Set<RepoPath>();
  /** Every repository needs reconciliation (a gap in the stream, a damaged file). */
  #all = false;
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(readonly dir: string) {
    this.#path = join(dir, DIRTY_FILE);
  }

  /**
   * Loads the set of `dir`; every repository named there counts as failed (its queue
   * was lost with the process). A damaged file is reported through `problem` and read
   * as "everything may be dirty" ({@link DirtySet.all}).
   */
  static async load(
    dir: string,
  ): Promise<{ set: DirtySet; problem?: string }> {
    const set = new DirtySet(dir);
    let text: string;
    try {
      text = await Deno.readTextFile(set.#path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { set };
      set.#all = true;
      return { set, problem: `cannot read ${set.#path}: ${e}` };
    }
    try {
      const v = JSON.parse(text);
      if (!Array.isArray(v?.repos)) throw new SyntaxError("expected { repos }");
      if (v.all === true) {
        set.#all = true;
        return { set };
      }
      for (const r of v.repos) {
        const p = parsePath(String(r)).repoPath;
        set.#repos.add(p);
        set.#failed.add(p);
      }
    } catch (e) {
      set.#all = true;
      return { set, problem: `${set.#path}: ${(e as Error).message}` };
    }
    return { set };
  }

  /** Repositories in the set. */
  get size(): number {
    return this.#repos.size;
  }

  /** True when every repository must be reconciled (persisted until {@link clearAll}). */
  get all(): boolean {
    return this.#all;
  }

  /** Every repository needs reconciliation: written before this returns. */
  markAll(): void {
    if (this.#all) return;
    this.#all = true;
    this.#write();
  }

  /** Every repository was reconciled. */
  clearAll(): void {
    if (!this.#all) return;
    this.#all = false;
    this.#write();
  }

  /** Repositories that need reconciliation (failed or inherited from a crash). */
  failed(): RepoPath[] {
    return [...this.#failed];
  }

  /** True when `repo` is failed. */
  isFailed(repo: RepoPath): boolean {
    return this.#failed.has(repo);
  }

  /** A commit of `repo` was queued: the file names it before this returns. */
  queued(repo: RepoPath): void {
    this.#pending.set(repo, (this.#pending.get(repo) ?? 0) + 1);
    if (!this.#repos.has(repo)) {
      this.#repos.add(repo);
      this.#write();
    }
  }

  /** A queued commit of `repo` was acknowledged by the stream. */
  published(repo: RepoPath): void {
    this.#done(repo);
    this.#scheduleSettle();
  }

  /** A queued commit of `repo` was given up: the repository needs reconciliation. */
  giveUp(repo: RepoPath): void {
    this.#done(repo);
    this.markFailed(repo);
  }

  /** Marks `repo` as needing reconciliation (persisted). */
  markFailed(repo: RepoPath): void {
    this.#failed.add(repo);
    if (!this.#repos.has(repo)) {
      this.#repos.add(repo);
      this.#write();
    }
  }

  /** `repo` was reconciled with a member or republished: no longer failed. */
  resolved(repo: RepoPath): void {
    this.#failed.delete(repo);
    this.#scheduleSettle();
  }

  #done(repo: RepoPath): void {
    const n = (this.#pending.get(repo) ?? 1) - 1;
    if (n > 0) this.#pending.set(repo, n);
    else this.#pending.delete(repo);
  }

  #scheduleSettle(): void {
    if (this.#settleTimer !== undefined) return;
    this.#settleTimer = setTimeout(() => {
      this.#settleTimer = undefined;
      this.settle();
    }, DIRTY_SETTLE_MS);
    Deno.unrefTimer(this.#settleTimer);
  }

  /** Drops repositories with nothing queued and nothing failed (the timer calls it). */
  settle(): void {
    let changed = false;
    for (const r of this.#repos) {
      if (!this.#pending.has(r) && !this.#failed.has(r)) {
        this.#repos.delete(r);
        changed = true;
      }
    }
    if (changed) this.#write();
  }

  /**
   * Rewrites the file at once, synchronously (temp file and rename: atomic, and on disk
   * for the OS as soon as this returns, so a killed process cannot lose it); an fsync
   * follows shortly in the background for power cuts.
   */
  #write(): void {
    // Past the cap the file says "all": a restart then reconciles every repository.
    const all = this.#all || this.#repos.size > MAX_DIRTY_REPOS;
    const bytes = new TextEncoder().encode(
      JSON.stringify({ format: 1, repos: all ? [] : [...this.#repos], all }) +
        "\n",
    );
    const tmp = `${this.#path}.tmp-${Deno.pid}`;
    Deno.writeFileSync(tmp, bytes, { mode: 0o600 });
    Deno.renameSync(tmp, this.#path);
    this.#syncTimer ??= setTimeout(() => {
      this.#syncTimer = undefined;
      void this.#fsync();
    }, 50);
  }

  async #fsync(): Promise<void> {
    try {
      const f = await Deno.open(this.#path, { read: true });
      try {
        await f.sync();
      } finally {
        f.close();
      }
      const d = await Deno.open(this.dir, { read: true });
      try {
        await d.sync();
      } finally {
        d.close();
      }
    } catch { /* best effort: the rename already made it visible */ }
  }

  /** Writes the final state durably and stops the timers (shutdown). */
  async close(): Promise<void> {
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    this.settle();
    clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    await this.#fsync();
  }
}
