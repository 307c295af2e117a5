/**
 * Cooperative scheduling for query scans: work in short slices and give the event loop
 * back between them, so timers, I/O and rendering keep running during a large scan.
 *
 * @module
 */

/** Milliseconds of scan work between two yields to the event loop. */
export const SCAN_SLICE_MS = 5;

/** Items evaluated between two clock reads (reading the clock per item costs too much). */
export const SCAN_CHECK_EVERY = 16;

/**
 * Resolves on a later macrotask (a MessageChannel message: unlike `setTimeout(0)` it is
 * not clamped to 4 ms when nested), letting timers and I/O run first.
 *
 * @example
 * ```ts
 * import { yieldToEventLoop } from "./yield.ts";
 * await yieldToEventLoop();
 * ```
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof MessageChannel !== "function") {
      setTimeout(resolve, 0);
      return;
    }
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      port2.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/**
 * Tracks one slice of work: `due()` is true once the slice has used its time budget.
 *
 * @example
 * ```ts
 * import { WorkSlice } from "./yield.ts";
 * const slice = new WorkSlice();
 * if (slice.due()) slice.restart();
 * ```
 */
export class WorkSlice {
  #start = performance.now();
  #count = 0;

  /** True when the time budget is used (checked every {@link SCAN_CHECK_EVERY} calls). */
  due(): boolean {
    if (++this.#count < SCAN_CHECK_EVERY) return false;
    this.#count = 0;
    return performance.now() - this.#start >= SCAN_SLICE_MS;
  }

  /** True when the time budget is used (reads the clock now). */
  expired(): boolean {
    this.#count = 0;
    return performance.now() - this.#start >= SCAN_SLICE_MS;
  }

  /** Starts a new slice. */
  restart(): void {
    this.#start = performance.now();
    this.#count = 0;
  }
}
