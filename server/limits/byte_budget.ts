/**
 * A global budget of request bytes held in memory at once: every body being read
 * reserves its bytes (its declared length up front, or chunk by chunk) and releases them
 * when its request is done. A request that would exceed the budget is refused (503 with
 * Retry-After) instead of growing the process.
 *
 * @module
 */

/** Shared byte budget. */
export class ByteBudget {
  #used = 0;

  constructor(readonly limit: number) {
    if (!(limit > 0)) {
      throw new RangeError(`Invalid byte budget ${limit}: must be > 0`);
    }
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** Reserves `n` bytes; false (reserving nothing) when they do not fit. */
  tryReserve(n: number): boolean {
    if (n < 0 || this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  /** Gives back `n` reserved bytes. */
  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }

  /** A lease: reservations made through it are released together. */
  lease(): BudgetLease {
    return new BudgetLease(this);
  }
}

/** Reservations of one request. */
export class BudgetLease {
  #held = 0;

  constructor(private readonly budget: ByteBudget) {}

  /** Bytes held by this lease. */
  get held(): number {
    return this.#held;
  }

  /** Reserves `n` more bytes; false when the budget is exhausted. */
  tryReserve(n: number): boolean {
    if (!this.budget.tryReserve(n)) return false;
    this.#held += n;
    return true;
  }

  /** Releases everything this lease holds (idempotent). */
  release(): void {
    this.budget.release(this.#held);
    this.#held = 0;
  }
}
