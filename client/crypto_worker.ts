/**
 * A pool of Web Workers that sign and verify Ed25519 signatures off the page's main
 * thread. Chromium computes `crypto.subtle.sign`/`verify` for Ed25519 on the calling
 * thread, so 100,000 signatures on the page would freeze it for seconds; in workers the
 * page keeps rendering while they run (one worker per core, up to
 * {@link MAX_CRYPTO_WORKERS}).
 *
 * The private key is the replica's non-extractable CryptoKey: structured clone copies
 * it into each worker without ever exposing its bytes. The worker script is this
 * module's {@link cryptoWorkerMain}, started from a Blob URL, so the bundle needs no
 * second file.
 *
 * @module
 */

/** Most workers a pool starts. */
export const MAX_CRYPTO_WORKERS = 4;

/** Messages to a crypto worker. */
type WorkerRequest =
  | { readonly t: "key"; readonly id: number; readonly key: CryptoKey }
  | {
    readonly t: "sign";
    readonly id: number;
    readonly messages: readonly Uint8Array[];
  }
  | {
    readonly t: "verify";
    readonly id: number;
    readonly publicKeys: readonly Uint8Array[];
    readonly signatures: readonly Uint8Array[];
    readonly messages: readonly Uint8Array[];
  };

/** Answers of a crypto worker. */
interface WorkerAnswer {
  readonly id: number;
  readonly sigs?: ArrayBuffer[];
  readonly oks?: boolean[];
  readonly error?: string;
}

/**
 * The worker's code: self-contained (it runs from its own source text in the worker,
 * so it may use nothing from outside its body).
 */
export function cryptoWorkerMain(): void {
  interface Scope {
    onmessage: ((ev: MessageEvent) => void) | null;
    postMessage(message: unknown, transfer?: Transferable[]): void;
  }
  const scope = globalThis as unknown as Scope;
  let signKey: CryptoKey | null = null;
  const verifyKeys = new Map<string, Promise<CryptoKey>>();
  const hex = (b: Uint8Array) => {
    let s = "";
    for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
    return s;
  };
  const keyFor = (raw: Uint8Array) => {
    const name = hex(raw);
    let k = verifyKeys.get(name);
    if (!k) {
      if (verifyKeys.size > 10_000) verifyKeys.clear();
      k = crypto.subtle.importKey(
        "raw",
        raw as Uint8Array<ArrayBuffer>,
        "Ed25519",
        false,
        ["verify"],
      );
      verifyKeys.set(name, k);
    }
    return k;
  };
  scope.onmessage = async (ev: MessageEvent) => {
    const m = ev.data;
    try {
      if (m.t === "key") {
        signKey = m.key;
        scope.postMessage({ id: m.id });
      } else if (m.t === "sign") {
        if (!signKey) throw new Error("no signing key");
        const key = signKey;
        const sigs = await Promise.all(
          (m.messages as Uint8Array<ArrayBuffer>[]).map((msg) =>
            crypto.subtle.sign("Ed25519", key, msg)
          ),
        );
        scope.postMessage({ id: m.id, sigs }, sigs);
      } else if (m.t === "verify") {
        const oks = await Promise.all(
          (m.messages as Uint8Array<ArrayBuffer>[]).map(async (msg, i) => {
            const pk = m.publicKeys[i] as Uint8Array;
            const sig = m.signatures[i] as Uint8Array<ArrayBuffer>;
            if (pk.length !== 32 || sig.length !== 64) return false;
            try {
              return await crypto.subtle.verify(
                "Ed25519",
                await keyFor(pk),
                sig,
                msg,
              );
            } catch {
              return false;
            }
          }),
        );
        scope.postMessage({ id: m.id, oks });
      }
    } catch (e) {
      scope.postMessage({
        id: m.id,
        error: String((e as Error)?.message ?? e),
      });
    }
  };
}

interface Waiting {
  resolve(answer: WorkerAnswer): void;
  reject(error: Error): void;
}

/** One worker and its outstanding requests. */
class CryptoWorker {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #broken: Error | null = null;
  /** Jobs sent and not answered (the pool sends to the least busy worker). */
  load = 0;

  constructor(url: string) {
    this.#worker = new Worker(url);
    this.#worker.onmessage = (ev: MessageEvent<WorkerAnswer>) => {
      const w = this.#waiting.get(ev.data?.id);
      if (!w) return;
      this.#waiting.delete(ev.data.id);
      if (ev.data.error) w.reject(new Error(`crypto worker: ${ev.data.error}`));
      else w.resolve(ev.data);
    };
    this.#worker.onerror = (ev) => {
      ev.preventDefault?.();
      this.#fail(new Error(`crypto worker failed: ${ev.message ?? "error"}`));
    };
  }

  get broken(): boolean {
    return this.#broken !== null;
  }

  #fail(e: Error): void {
    this.#broken ??= e;
    for (const w of this.#waiting.values()) w.reject(e);
    this.#waiting.clear();
  }

  request(
    make: (id: number) => WorkerRequest,
    jobs: number,
  ): Promise<WorkerAnswer> {
    if (this.#broken) return Promise.reject(this.#broken);
    const id = this.#nextId++;
    this.load += jobs;
    return new Promise<WorkerAnswer>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      try {
        this.#worker.postMessage(make(id));
      } catch (e) {
        this.#waiting.delete(id);
        reject(e as Error);
      }
    }).finally(() => this.load -= jobs);
  }

  terminate(): void {
    this.#fail(new Error("crypto worker pool closed"));
    this.#worker.terminate();
  }
}

/**
 * Workers that sign with one key and verify anything. Work is spread over the workers;
 * a request fails when its worker broke (callers fall back to the page's Web Crypto).
 */
export class CryptoWorkerPool {
  readonly #workers: CryptoWorker[];
  readonly #ready: Promise<void>;
  #closed = false;
  #signatures = 0;
  #verifications = 0;

  private constructor(workers: CryptoWorker[], signKey: CryptoKey | null) {
    this.#workers = workers;
    this.#ready = signKey
      ? Promise.all(
        workers.map((w) =>
          w.request((id) => ({ t: "key", id, key: signKey }), 0)
        ),
      ).then(() => {})
      : Promise.resolve();
    this.#ready.catch(() => {});
  }

  /**
   * Starts `size` workers (default: one per core, at most {@link MAX_CRYPTO_WORKERS})
   * holding `signKey`; null when this browser cannot run them (no Worker, no Blob URLs,
   * a content security policy that forbids blob: workers).
   */
  static start(
    signKey: CryptoKey | null,
    size = defaultPoolSize(),
  ): CryptoWorkerPool | null {
    if (
      typeof Worker !== "function" || typeof Blob !== "function" ||
      typeof URL?.createObjectURL !== "function"
    ) return null;
    let url: string | undefined;
    const workers: CryptoWorker[] = [];
    try {
      url = URL.createObjectURL(
        new Blob([`(${cryptoWorkerMain.toString()})();`], {
          type: "text/javascript",
        }),
      );
      for (let i = 0; i < Math.max(1, size); i++) {
        workers.push(new CryptoWorker(url));
      }
    } catch {
      for (const w of workers) w.terminate();
      return null;
    } finally {
      // Workers keep their script once started: the URL is no longer needed.
      if (url) setTimeout(() => URL.revokeObjectURL(url!), 10_000);
    }
    return new CryptoWorkerPool(workers, signKey);
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Signatures made and signatures checked by the workers so far. */
  get stats(): { readonly signatures: number; readonly verifications: number } {
    return {
      signatures: this.#signatures,
      verifications: this.#verifications,
    };
  }

  /** True once closed or when every worker broke. */
  get unusable(): boolean {
    return this.#closed || this.#workers.every((w) => w.broken);
  }

  #live(): CryptoWorker[] {
    const live = this.#workers.filter((w) => !w.broken);
    if (this.#closed || !live.length) {
      throw new Error("no crypto worker is available");
    }
    return live;
  }

  /** Splits `n` jobs over the live workers: `[worker, from, to]` parts. */
  #parts(n: number): [CryptoWorker, number, number][] {
    const live = this.#live().sort((a, b) => a.load - b.load);
    // Small batches go to one worker (the least busy): a message costs more than a few
    // signatures.
    const k = Math.min(live.length, Math.max(1, Math.floor(n / 16)));
    const out: [CryptoWorker, number, number][] = [];
    for (let i = 0; i < k; i++) {
      const from = Math.floor(i * n / k), to = Math.floor((i + 1) * n / k);
      if (to > from) out.push([live[i], from, to]);
    }
    return out;
  }

  /** Signs every message with the pool's key; signatures in order. */
  async sign(messages: readonly Uint8Array[]): Promise<Uint8Array[]> {
    await this.#ready;
    const parts = await Promise.all(
      this.#parts(messages.length).map(([w, from, to]) =>
        w.request(
          (id) => ({ t: "sign", id, messages: messages.slice(from, to) }),
          to - from,
        )
      ),
    );
    const out: Uint8Array[] = [];
    for (const p of parts) for (const s of p.sigs!) out.push(new Uint8Array(s));
    if (out.length !== messages.length) {
      throw new Error("crypto worker answered the wrong number of signatures");
    }
    this.#signatures += out.length;
    return out;
  }

  /** Verifies signatures; one boolean per job, in order. */
  async verify(
    publicKeys: readonly Uint8Array[],
    signatures: readonly Uint8Array[],
    messages: readonly Uint8Array[],
  ): Promise<boolean[]> {
    const parts = await Promise.all(
      this.#parts(messages.length).map(([w, from, to]) =>
        w.request((id) => ({
          t: "verify",
          id,
          publicKeys: publicKeys.slice(from, to),
          signatures: signatures.slice(from, to),
          messages: messages.slice(from, to),
        }), to - from)
      ),
    );
    const out = parts.flatMap((p) => p.oks!);
    if (out.length !== messages.length) {
      throw new Error("crypto worker answered the wrong number of verdicts");
    }
    this.#verifications += out.length;
    return out;
  }

  /** Stops every worker; outstanding requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
  }
}

function defaultPoolSize(): number {
  const cores = (globalThis.navigator as Navigator | undefined)
    ?.hardwareConcurrency ?? 2;
  return Math.min(MAX_CRYPTO_WORKERS, Math.max(1, cores));
}
