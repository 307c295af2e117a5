/**
 * Hybrid logical clock. A timestamp is one number: `wallMs * 1024 + counter`, which stays
 * a safe integer until the year 2248. Received timestamps advance the clock so a replica
 * with a slow wall clock still orders its writes after what it has seen; timestamps too
 * far in the future are refused so a skewed clock cannot dominate last-writer-wins.
 *
 * @module
 */

/** A hybrid logical clock timestamp. */
export type Timestamp = number;

/** Counter values per millisecond. */
export const HLC_COUNTER_SPAN = 1024;

/** How far ahead of the local wall clock a received timestamp may be (ms). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** A source of wall-clock milliseconds; injectable for tests. */
export type WallClock = () => number;

/** Wall-clock milliseconds of a timestamp. */
export function timestampMs(ts: Timestamp): number {
  return Math.floor(ts / HLC_COUNTER_SPAN);
}

/** True when `ts` is a well-formed timestamp (a non-negative safe integer). */
export function isTimestamp(ts: unknown): ts is Timestamp {
  return typeof ts === "number" && Number.isSafeInteger(ts) && ts >= 0;
}

/** Issues strictly increasing hybrid logical timestamps. */
export class HybridClock {
  #last = 0;
  readonly #wall: WallClock;
  readonly #maxSkewMs: number;

  constructor(wall: WallClock = Date.now, maxSkewMs = MAX_CLOCK_SKEW_MS) {
    this.#wall = wall;
    this.#maxSkewMs = maxSkewMs;
  }

  /** The next timestamp: greater than every timestamp issued or observed. */
  now(): Timestamp {
    const physical = Math.floor(this.#wall()) * HLC_COUNTER_SPAN;
    this.#last = physical > this.#last ? physical : this.#last + 1;
    return this.#last;
  }

  /**
   * Advances the clock past a received timestamp. Throws a RangeError when the timestamp
   * lies more than the allowed skew in the future.
   */
  observe(ts: Timestamp): void {
    this.check(ts);
    if (ts > this.#last) this.#last = ts;
  }

  /**
   * Moves the clock past `ts` without the skew check: used for this replica's own stored
   * history, so a new local commit is always after its parents.
   */
  advance(ts: Timestamp): void {
    if (ts > this.#last) this.#last = ts;
  }

  /** Throws a RangeError when `ts` is malformed or too far in the future. */
  check(ts: Timestamp): void {
    if (!isTimestamp(ts)) {
      throw new RangeError(`Invalid timestamp ${String(ts)}`);
    }
    const limit = (Math.floor(this.#wall()) + this.#maxSkewMs) *
      HLC_COUNTER_SPAN;
    if (ts > limit) {
      throw new RangeError(
        `Timestamp ${new Date(timestampMs(ts)).toISOString()} is more than ${
          this.#maxSkewMs / 1000
        } s in the future`,
      );
    }
  }
}
