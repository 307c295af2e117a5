/**
 * The browser replica's signer and verifier (the `signer` and `verifier` a Database takes):
 * signatures are computed in a {@link CryptoWorkerPool}, so the page never freezes while
 * thousands of commits are signed or verified. Signatures requested in one tick go to
 * the workers as one message. Without workers (or when they fail) the same work runs on
 * the page in slices of {@link MAIN_THREAD_SLICE} signatures with a yield to the event
 * loop between slices.
 *
 * @module
 */

import {
  type SessionId,
  sessionIdOf,
  type SigningKey,
  signingKeyFromCryptoKey,
  verifySignature,
} from "../lib/crypto/keys.ts";
import type { SignatureVerifier, VerifyJob } from "../lib/crypto/verifier.ts";
import { yieldToEventLoop } from "../lib/query/yield.ts";
import type { CryptoWorkerPool } from "./crypto_worker.ts";

/** Signatures computed on the page between two yields when no worker is available. */
export const MAIN_THREAD_SLICE = 32;

/** Batches smaller than this are verified on the page (a worker round trip costs more). */
export const SMALL_VERIFY_BATCH = 8;

interface Queued {
  readonly message: Uint8Array;
  resolve(sig: Uint8Array): void;
  reject(e: unknown): void;
}

/** Runs `fn` over `items` in slices, yielding to the event loop between slices. */
async function sliced<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += MAIN_THREAD_SLICE) {
    if (i > 0) await yieldToEventLoop();
    out.push(
      ...await Promise.all(items.slice(i, i + MAIN_THREAD_SLICE).map(fn)),
    );
  }
  return out;
}

/** A signing key whose signatures are made in workers (see the module doc). */
export class WorkerSigningKey implements SigningKey {
  readonly sessionId: SessionId;
  readonly #onPage: SigningKey;
  readonly #pool: CryptoWorkerPool | null;
  #queue: Queued[] = [];
  #scheduled = false;

  constructor(
    readonly publicKey: Uint8Array,
    privateKey: CryptoKey,
    pool: CryptoWorkerPool | null,
  ) {
    this.sessionId = sessionIdOf(publicKey);
    this.#onPage = signingKeyFromCryptoKey(publicKey, privateKey);
    this.#pool = pool;
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    const messages = batch.map((q) => q.message);
    let sigs: Uint8Array[];
    try {
      sigs = this.#pool && !this.#pool.unusable
        ? await this.#pool.sign(messages).catch(() =>
          this.#signOnPage(messages)
        )
        : await this.#signOnPage(messages);
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    batch.forEach((q, i) => q.resolve(sigs[i]));
  }

  #signOnPage(messages: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return sliced(messages, (m) => this.#onPage.sign(m));
  }
}

/** Verifies received signatures in workers; small batches on the page. */
export class WorkerVerifier implements SignatureVerifier {
  readonly #pool: CryptoWorkerPool | null;

  constructor(pool: CryptoWorkerPool | null) {
    this.#pool = pool;
  }

  async verifyBatch(jobs: readonly VerifyJob[]): Promise<boolean[]> {
    const pool = this.#pool;
    if (pool && !pool.unusable && jobs.length >= SMALL_VERIFY_BATCH) {
      try {
        return await pool.verify(
          jobs.map((j) => j.publicKey),
          jobs.map((j) => j.signature),
          jobs.map((j) => j.message),
        );
      } catch { /* a broken worker: verify on the page instead */ }
    }
    return await sliced(
      jobs,
      (j) => verifySignature(j.publicKey, j.signature, j.message),
    );
  }

  /** Stops the workers (the database calls it when it closes). */
  release(): void {
    this.#pool?.close();
  }
}
