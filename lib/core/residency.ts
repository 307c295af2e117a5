/**
 * Which repositories stay in memory. Repositories idle longer than `idleCloseMs` close
 * themselves, and when the open ones exceed `memoryBudgetBytes` the least recently used
 * are closed. Pinned repositories (live queries, item listeners, uncommitted writes) are
 * never closed automatically; items of an automatically closed repository reopen it
 * transparently on their next use. Explicit `open`/`close` always win.
 *
 * @module
 */

import type { OpenRepository } from "./open_repository.ts";

/** Default idle time after which an unpinned repository closes itself (10 min). */
export const DEFAULT_IDLE_CLOSE_MS = 10 * 60_000;
/** Sweeps per idle period: a repository closes after this many untouched sweeps. */
export const SWEEPS_PER_IDLE_PERIOD = 2;

/** Timer functions (injectable so tests can sweep by hand). */
export interface SweepTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(id: unknown): void;
}

/** Options for memory management. */
export interface ResidencyOptions {
  /** Close unpinned repositories idle this long (ms). 0 or Infinity disables it. */
  readonly idleCloseMs?: number;
  /** Close least recently used repositories above this estimate of memory (bytes). */
  readonly memoryBudgetBytes?: number;
  /** Timers for the idle sweep (default: globalThis timers). */
  readonly timers?: SweepTimers;
}

/** Idle closing and the memory budget of one database's open repositories. */
export class Residency {
  readonly #idleMs: number;
  readonly #budget: number;
  readonly #timers: SweepTimers;
  #timer: unknown = null;
  #clock = 0;
  readonly #untouchedSweeps = new WeakMap<OpenRepository, number>();

  constructor(
    options: ResidencyOptions,
    private readonly openRepos: () => Iterable<OpenRepository>,
    private readonly autoClose: (
      repo: OpenRepository,
      reason: "idle" | "budget",
    ) => Promise<void>,
  ) {
    this.#idleMs = options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
    this.#budget = options.memoryBudgetBytes ?? Infinity;
    for (
      const [name, v] of [["idleCloseMs", this.#idleMs], [
        "memoryBudgetBytes",
        this.#budget,
      ]]
    ) {
      if (typeof v !== "number" || Number.isNaN(v) || (v as number) < 0) {
        throw new RangeError(
          `Invalid ${name} ${String(v)}: expected a number >= 0`,
        );
      }
    }
    this.#timers = options.timers ?? globalThis;
  }

  /** Starts the idle sweep (when idle closing is enabled). */
  start(): void {
    if (
      this.#idleMs === 0 || this.#idleMs === Infinity || this.#timer !== null
    ) return;
    const every = Math.max(10, this.#idleMs / SWEEPS_PER_IDLE_PERIOD);
    this.#timer = this.#timers.setInterval(() => void this.sweep(), every);
    // Do not keep a process alive just for the sweep (Deno and Node timers).
    const unref =
      (globalThis as { ["Deno"]?: { unrefTimer?(id: unknown): void } })["Deno"]
        ?.unrefTimer;
    if (typeof this.#timer === "number" && unref) unref(this.#timer);
  }

  /** Stops the sweep. */
  stop(): void {
    if (this.#timer !== null) this.#timers.clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Records which repositories were used since the last look. */
  #refresh(): void {
    for (const r of this.openRepos()) {
      if (r.touched) {
        r.touched = false;
        r.lastUsed = ++this.#clock;
        this.#untouchedSweeps.set(r, 0);
      }
    }
  }

  /** One idle sweep, then the budget check. Exposed for tests and tools. */
  async sweep(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const r of this.openRepos()) {
      if (r.touched) continue; // counted in #refresh below
      const n = (this.#untouchedSweeps.get(r) ?? 0) + 1;
      this.#untouchedSweeps.set(r, n);
      if (n >= SWEEPS_PER_IDLE_PERIOD && !r.pinned) {
        closing.push(this.autoClose(r, "idle"));
      }
    }
    this.#refresh();
    await Promise.all(closing);
    await this.enforceBudget();
  }

  /** Closes least recently used, unpinned repositories while over the budget. */
  async enforceBudget(keep?: OpenRepository): Promise<void> {
    if (this.#budget === Infinity) return;
    this.#refresh();
    const open = [...this.openRepos()];
    let total = open.reduce((n, r) => n + r.estimatedBytes(), 0);
    const candidates = open.filter((r) => r !== keep && !r.pinned)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    for (const r of candidates) {
      if (total <= this.#budget) break;
      total -= r.estimatedBytes();
      await this.autoClose(r, "budget");
    }
  }
}
