/**
 * Per-session quotas of sync traffic: commits and request bytes per minute (token
 * buckets). A request over quota is refused before anything of it is processed, with
 * 429 `quota_exceeded` and a Retry-After; over WebSocket the answer carries the same code.
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { KeyedRateLimiter } from "./limits/token_bucket.ts";

/** What a session may send per minute. */
export interface SessionQuotaLimits {
  readonly commitsPerSessionPerMinute: number;
  readonly bytesPerSessionPerMinute: number;
}

/** A 429 with Retry-After for a wait of `waitMs`. */
export function tooMany(
  code: string,
  message: string,
  waitMs: number,
): HttpError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new HttpError(429, code, `${message}: retry after ${seconds} s`, {
    "retry-after": String(seconds),
  });
}

/** Commit and byte quotas of every session. */
export class SessionQuotas {
  readonly #commits: KeyedRateLimiter;
  readonly #bytes: KeyedRateLimiter;

  constructor(
    readonly limits: SessionQuotaLimits,
    now: () => number = Date.now,
  ) {
    this.#commits = new KeyedRateLimiter(
      limits.commitsPerSessionPerMinute,
      now,
    );
    this.#bytes = new KeyedRateLimiter(limits.bytesPerSessionPerMinute, now);
  }

  /** Throws 429 when `bytes` more would exceed the session's byte quota (takes nothing). */
  checkBytes(sessionId: string, bytes: number): void {
    const wait = this.#bytes.waitFor(sessionId, bytes);
    if (wait > 0) throw this.#bytesError(wait);
  }

  /**
   * Charges one message of `bytes` carrying `commits`; throws 429 (charging nothing)
   * when either quota is exhausted.
   */
  charge(sessionId: string, bytes: number, commits: number): void {
    const byteWait = this.#bytes.waitFor(sessionId, bytes);
    if (byteWait > 0) throw this.#bytesError(byteWait);
    if (commits > 0) {
      const wait = this.#commits.take(sessionId, commits);
      if (wait > 0) {
        throw tooMany(
          "quota_exceeded",
          `Session ${sessionId} may send ${this.limits.commitsPerSessionPerMinute} commits per minute`,
          wait,
        );
      }
    }
    this.#bytes.take(sessionId, bytes);
  }

  #bytesError(wait: number): HttpError {
    return tooMany(
      "quota_exceeded",
      `A session may send ${this.limits.bytesPerSessionPerMinute} request bytes per minute`,
      wait,
    );
  }
}
