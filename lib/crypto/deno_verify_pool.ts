/**
 * A pool of Deno workers that verify Ed25519 signatures with `node:crypto`: about 43 µs
 * of CPU per signature against about 70 µs for Web Crypto's asynchronous calls, spread
 * over the cores. Used by the Deno entry (mod.ts) for large ingests; small batches, and
 * every batch once a worker cannot start (e.g. a compiled binary without the worker
 * module), go to Web Crypto. Workers start on the first large batch and stop when the
 * last database using the pool closes, or after {@link POOL_IDLE_MS} without work (a
 * running worker keeps a Deno process alive: an idle pool must not).
 *
 * A server verifies every received commit here (`minBatch: 1`), so signature checks
 * never run on its event loop: batches submitted in the same turn of the event loop are
 * joined into one message per worker, so many small ingests cost few round trips.
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
/** Batch size from which a server's verifier uses the pool (every batch). */
export const SERVER_POOL_MIN_BATCH = 1;

interface Staged {
  readonly jobs: readonly VerifyJob[];
  readonly resolve: (out: boolean[]) => void;
  readonly reject: (e: unknown) => void;
}
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
      if (this.#pending.size === 0 && this.#staged.length === 0) this.stop();
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

  #staged: Staged[] = [];
  #stagedTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Verifies `jobs` on the workers together with every batch submitted in the same turn
   * of the event loop; rejects when the pool broke (callers fall back).
   */
  runJoined(jobs: readonly VerifyJob[]): Promise<boolean[]> {
    if (!this.#start()) {
      return Promise.reject(new Error("verifier pool unavailable"));
    }
    return new Promise((resolve, reject) => {
      this.#staged.push({ jobs, resolve, reject });
      this.#stagedTimer ??= setTimeout(() => this.#sendStaged(), 0);
    });
  }

  #sendStaged(): void {
    this.#stagedTimer = undefined;
    const staged = this.#staged;
    this.#staged = [];
    const all: VerifyJob[] = [];
    for (const s of staged) all.push(...s.jobs);
    this.run(all).then((out) => {
      let at = 0;
      for (const s of staged) {
        s.resolve(out.slice(at, at + s.jobs.length));
        at += s.jobs.length;
      }
    }, (e) => {
      for (const s of staged) s.reject(e);
    });
  }

  /** Verifies `jobs` on the workers; rejects when the pool broke (callers fall back). */
  async run(jobs: readonly VerifyJob[]): Promise<boolean[]> {
    if (!this.#start()) throw new Error("verifier pool unavailable");
    const parts: Promise<Uint8Array>[] = [];
    stats.jobs += jobs.length;
    for (let at = 0; at < jobs.length; at += CHUNK) {
      stats.messages++;
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
    clearTimeout(this.#stagedTimer);
    this.#stagedTimer = undefined;
    for (const s of this.#staged.splice(0)) s.reject(error);
    clearTimeout(this.#idleTimer);
    for (const w of this.#workers.splice(0)) w.terminate();
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}

/** What the pool verified since the process started (tests, metrics). */
export interface VerifierPoolStats {
  /** Signatures checked on the workers. */
  jobs: number;
  /** Messages posted to the workers. */
  messages: number;
}

const stats: VerifierPoolStats = { jobs: 0, messages: 0 };

/** A copy of the pool's counters. */
export function verifierPoolStats(): VerifierPoolStats {
  return { ...stats };
}

const pool = new WorkerPool();
let users = 0;

/** Options of {@link denoPoolVerifier}. */
export interface PoolVerifierOptions {
  /**
   * Smallest batch sent to the pool (default {@link POOL_MIN_BATCH}); smaller ones use
   * Web Crypto on the calling thread. A server passes {@link SERVER_POOL_MIN_BATCH}.
   */
  readonly minBatch?: number;
}

/**
 * A verifier backed by the shared pool; `release()` when its database closes (the
 * workers stop with the last one).
 */
export function denoPoolVerifier(
  options: PoolVerifierOptions = {},
): SignatureVerifier & { release(): void } {
  const minBatch = options.minBatch ?? POOL_MIN_BATCH;
  if (!(Number.isInteger(minBatch) && minBatch >= 1)) {
    throw new RangeError(
      `Invalid minBatch ${minBatch}: expected an integer >= 1`,
    );
  }
  users++;
  let released = false;
  return {
    async verifyBatch(jobs) {
      if (!jobs.length) return [];
      if (jobs.length < minBatch || !pool.usable || released) {
        return await webCryptoVerifier.verifyBatch(jobs);
      }
      try {
        return await (jobs.length < POOL_MIN_BATCH
          ? pool.runJoined(jobs)
          : pool.run(jobs));
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
