/**
 * Periodic history garbage collection for a serving database: every `intervalMs` each
 * repository of the data directory is compacted with the retention window, one at a
 * time (a repository with nothing old enough is left untouched, and requests that open
 * a repository during its compaction wait for the new file). A repository the pass
 * opened is released after it (closed as if idle, unless something uses it meanwhile),
 * so a pass over 10,000 repositories does not leave them all resident.
 *
 * @module
 */

import type { Database } from "../mod.ts";

/** Default pause between two collection passes. */
export const DEFAULT_GC_INTERVAL_MS = 6 * 3_600_000;
/** Delay of the first pass after start (let the server settle first). */
export const FIRST_GC_DELAY_MS = 60_000;

/** Options of {@link GcScheduler}. */
export interface GcSchedulerOptions {
  /** Retention window (at least the session lifetime, or compaction refuses). */
  readonly retainMs: number;
  readonly intervalMs?: number;
  readonly firstDelayMs?: number;
  /** Receives one line per repository that dropped history, and errors. */
  readonly log?: (line: string) => void;
}

/** What one pass did. */
export interface GcPass {
  readonly repositories: number;
  readonly droppedCommits: number;
  readonly failed: number;
}

/** Runs compaction passes in the background until stopped. */
export class GcScheduler {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<GcPass> | undefined;
  #stopped = false;

  constructor(
    private readonly db: Database,
    private readonly options: GcSchedulerOptions,
  ) {}

  /** Schedules the first pass; later passes follow every `intervalMs`. */
  start(): void {
    this.#schedule(this.options.firstDelayMs ?? FIRST_GC_DELAY_MS);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(async () => {
      await this.runOnce();
      this.#schedule(this.options.intervalMs ?? DEFAULT_GC_INTERVAL_MS);
    }, ms);
    this.#timer = timer;
    // A pending pass never keeps the process alive.
    Deno.unrefTimer(timer);
  }

  /** Runs one pass now (or joins the one running). */
  runOnce(): Promise<GcPass> {
    return this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
  }

  async #pass(): Promise<GcPass> {
    const log = this.options.log ?? ((l: string) => console.error(l));
    let dropped = 0, failed = 0;
    const repos = await this.db.listRepositories();
    for (const repo of repos) {
      if (this.#stopped || this.db.closed) break;
      const wasOpen = this.db.isOpen(repo);
      try {
        const r = await this.db.compact(repo, {
          retainMs: this.options.retainMs,
        });
        if (r.droppedCommits) {
          dropped += r.droppedCommits;
          log(
            `capra gc: ${repo}: dropped ${r.droppedCommits} commits, kept ${r.keptCommits}, ${r.bytesAfter} bytes`,
          );
        }
      } catch (e) {
        failed++;
        log(`capra gc: ${repo}: ${(e as Error).message}`);
      }
      // Opened for the pass only: close it again (pinned or used ones stay).
      if (!wasOpen && !this.db.closed) {
        await this.db.release(repo).catch((e) =>
          log(`capra gc: ${repo}: ${(e as Error).message}`)
        );
      }
    }
    return { repositories: repos.length, droppedCommits: dropped, failed };
  }

  /** Stops scheduling and waits for a running pass to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
  }
}
