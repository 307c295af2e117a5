/**
 * Rate limits as token buckets: a bucket holds up to `perMinute` tokens and refills at
 * `perMinute` per minute, so a client may burst one minute's worth and then keeps the
 * average rate. {@link KeyedRateLimiter} keeps one bucket per key (session, user,
 * address) in a bounded map.
 *
 * @module
 */

/** Most keys a {@link KeyedRateLimiter} tracks; full buckets are dropped first. */
export const MAX_RATE_LIMIT_KEYS = 100_000;

const MINUTE_MS = 60_000;

/** One token bucket. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(readonly perMinute: number, now: number) {
    if (!(perMinute > 0)) {
      throw new RangeError(`Invalid rate ${perMinute}: must be > 0 per minute`);
    }
    this.#tokens = perMinute;
    this.#at = now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(
        this.perMinute,
        this.#tokens + (now - this.#at) * this.perMinute / MINUTE_MS,
      );
    }
    this.#at = Math.max(this.#at, now);
  }

  /**
   * Milliseconds until `n` tokens could be taken (0: now). A request larger than the
   * whole bucket passes once the bucket is full (it then owes the difference).
   */
  waitFor(n: number, now: number): number {
    this.#refill(now);
    const need = Math.min(n, this.perMinute);
    if (this.#tokens >= need) return 0;
    return Math.ceil((need - this.#tokens) * MINUTE_MS / this.perMinute);
  }

  /** Takes `n` tokens if available now; otherwise returns the wait in ms (taking none). */
  take(n: number, now: number): number {
    const wait = this.waitFor(n, now);
    if (wait === 0) this.#tokens -= n;
    return wait;
  }

  /** True when the bucket is full (nothing to remember about this key). */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.perMinute;
  }
}

/** One bucket per key, bounded in number. */
export class KeyedRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(perMinute > 0)) {
      throw new RangeError(`Invalid rate ${perMinute}: must be > 0 per minute`);
    }
  }

  #bucket(key: string): TokenBucket {
    const now = this.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= MAX_RATE_LIMIT_KEYS) this.#prune(now);
      b = new TokenBucket(this.perMinute, now);
      this.#buckets.set(key, b);
    }
    return b;
  }

  #prune(now: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.full(now)) this.#buckets.delete(k);
    }
    // Still full of busy keys: forget the oldest (they may burst once more).
    while (this.#buckets.size >= MAX_RATE_LIMIT_KEYS) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
  }

  /** Takes `n` tokens of `key`; 0 when allowed, else the wait in ms. */
  take(key: string, n = 1): number {
    return this.#bucket(key).take(n, this.now());
  }

  /** The wait in ms before `n` tokens of `key` could be taken (takes nothing). */
  waitFor(key: string, n = 1): number {
    return this.#bucket(key).waitFor(n, this.now());
  }

  /** Keys tracked. */
  get size(): number {
    return this.#buckets.size;
  }
}
