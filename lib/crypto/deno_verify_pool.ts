/**
 * A pool of Deno workers that verify Ed25519 signatures with `node:crypto`: about 43 µs
 * of CPU per signature against about 70 µs for Web Crypto's asynchronous calls, spread
 * over the cores. Used by the Deno entry (mod.ts) for large ingests; small batches, and
 * every batch once a worker cannot start (e.g. a compiled binary without the worker
 * module), go to Web Crypto. Workers start on the first large batch and stop when the
 * last database using the pool closes, or after {@link POOL_IDLE_MS} without work (a
 * running worker keeps a Deno process alive: an idle pool must not).
 *
 * @module
 */

import {
  type SignatureVerifier,
  type VerifyJob,
  webCryptoVerifier,
} from "./verifier.ts";

/** Batches smaller than this stay on Web Crypto (a worker round trip is not worth it). */
export const POOL_MIN_BATCH = 64;
/** Jobs per message to a worker. */
const CHUNK = 256;
/** Idle workers stop after this long (they start again on the next large batch). */
export const POOL_IDLE_MS = 2000;

interface Pending {
  readonly resolve: (out: Uint8Array) => void;
  readonly reject: (e: unknown) => void;
}

class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #rr = 0;
  #failed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  get usable(): boolean {
    return !this.#failed;
  }

  /** Starts the workers (no-op when running or broken); true when they run. */
  start(): boolean {
    const started = this.#start();
    this.#idleSoon();
    return started;
  }

  /** (Re)arms the idle stop; the timer itself never keeps the process alive. */
  #idleSoon(): void {
    clearTimeout(this.#idleTimer);
    if (!this.#workers.length) return;
    const timer = setTimeout(() => {
      if (this.#pending.size === 0) this.stop();
      else this.#idleSoon();
    }, POOL_IDLE_MS);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #start(): boolean {
    if (this.#workers.length) return true;
    if (this.#failed) return false;
    const n = Math.max(
      1,
      Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 2),
    );
    try {
      for (let i = 0; i < n; i++) {
        const w = new Worker(
          new URL("./deno_verify_worker.ts", import.meta.url),
          { type: "module" },
        );
        w.onmessage = (e: MessageEvent<{ id: number; out: Uint8Array }>) => {
          const p = this.#pending.get(e.data.id);
          this.#pending.delete(e.data.id);
          p?.resolve(e.data.out);
        };
        w.onerror = (e) => {
          e.preventDefault();
          this.#fail(new Error(`verifier worker failed: ${e.message}`));
        };
        this.#workers.push(w);
      }
      return true;
    } catch {
      this.#fail(new Error("verifier workers cannot start"));
      return false;
    }
  }

  #fail(error: Error): void {
    this.#failed = true;
    this.stop(error);
  }

  /** Verifies `jobs` on the workers; rejects when the pool broke (callers fall back). */
  async run(jobs: readonly VerifyJob[]): Promise<boolean[]> {
    if (!this.#start()) throw new Error("verifier pool unavailable");
    const parts: Promise<Uint8Array>[] = [];
    for (let at = 0; at < jobs.length; at += CHUNK) {
      const chunk = jobs.slice(at, at + CHUNK);
      const id = this.#next++;
      const w = this.#workers[this.#rr++ % this.#workers.length];
      parts.push(
        new Promise<Uint8Array>((resolve, reject) => {
          this.#pending.set(id, { resolve, reject });
          w.postMessage({
            id,
            keys: chunk.map((j) => j.publicKey),
            sigs: chunk.map((j) => j.signature),
            msgs: chunk.map((j) => j.message),
          });
        }),
      );
    }
    const outs = await Promise.all(parts).finally(() => this.#idleSoon());
    const result: boolean[] = [];
    for (const out of outs) for (const b of out) result.push(b === 1);
    return result;
  }

  /** Terminates the workers; batches in flight reject (their callers fall back). */
  stop(error = new Error("verifier pool stopped")): void {
    clearTimeout(this.#idleTimer);
    for (const w of this.#workers.splice(0)) w.terminate();
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}

const pool = new WorkerPool();
let users = 0;

/**
 * A verifier backed by the shared pool; `release()` when its database closes (the
 * workers stop with the last one).
 */
export function denoPoolVerifier(): SignatureVerifier & { release(): void } {
  users++;
  let released = false;
  return {
    async verifyBatch(jobs) {
      if (jobs.length < POOL_MIN_BATCH || !pool.usable || released) {
        return await webCryptoVerifier.verifyBatch(jobs);
      }
      try {
        return await pool.run(jobs);
      } catch {
        return await webCryptoVerifier.verifyBatch(jobs);
      }
    },
    prepare() {
      if (!released) pool.start();
    },
    release() {
      if (released) return;
      released = true;
      if (--users === 0) pool.stop();
    },
  };
}
