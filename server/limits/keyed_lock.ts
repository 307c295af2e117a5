/**
 * Serializes asynchronous work per key: `run(key, fn)` starts `fn` once every earlier
 * `run` of the same key has settled. Keys without pending work cost nothing.
 *
 * @module
 */

/** Per-key mutual exclusion for async functions. */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `fn` after the pending work of `key`; resolves or rejects with it. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(fn);
    const tail = result.then(() => {}, () => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with pending work. */
  get pending(): number {
    return this.#tails.size;
  }
}
