/**
 * A bounded pool of open file handles, least recently used first out: the file storage
 * keeps at most {@link HandlePool.capacity} handles open however many repository logs
 * are open, and reopens a log's file on demand. A handle in use is pinned (never closed
 * under its user); when every handle is pinned, asynchronous users wait for one, and
 * synchronous ones (reads of old history) open one more for the moment.
 *
 * @module
 */

import type { FileHandle } from "./fs.ts";

/**
 * Default {@link HandlePool.capacity} of a file storage where the descriptor limit is
 * unknown: a quarter of the usual 1,024.
 */
export const DEFAULT_MAX_OPEN_FILES = 256;
/** Share of the process's descriptor limit a file storage's pool takes by default. */
export const OPEN_FILES_SHARE_OF_LIMIT = 1 / 4;
/** Largest default pool, however high the descriptor limit. */
export const MAX_DEFAULT_OPEN_FILES = 4096;

/**
 * The default pool capacity for a process allowed `limit` descriptors (null: unknown):
 * a quarter of it (the rest stays for sockets and everything else), at least
 * {@link MIN_MAX_OPEN_FILES}, at most {@link MAX_DEFAULT_OPEN_FILES}.
 */
export function defaultMaxOpenFiles(limit: number | null): number {
  if (limit === null || !(limit > 0)) return DEFAULT_MAX_OPEN_FILES;
  return Math.max(
    MIN_MAX_OPEN_FILES,
    Math.min(
      MAX_DEFAULT_OPEN_FILES,
      Math.floor(limit * OPEN_FILES_SHARE_OF_LIMIT),
    ),
  );
}
/** Smallest pool: one handle writing while another one reads. */
export const MIN_MAX_OPEN_FILES = 2;

interface Entry {
  readonly handle: FileHandle;
  pins: number;
  /** Close as soon as the last user is done. */
  doomed: boolean;
}

function closeQuietly(h: FileHandle): void {
  try {
    h.close();
  } catch {
    /* already closed, or the file system is gone: nothing left to release */
  }
}

/** See the module documentation. */
export class HandlePool {
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  /** Slots reserved for handles being opened or lent by {@link HandlePool.useOnce}. */
  #reserved = 0;
  /** Handles lent by {@link HandlePool.useOnce} (open, outside the entries). */
  #lent = 0;
  #waiting: (() => void)[] = [];
  #closed = false;
  /** Handles opened so far (a measure of the churn a too small pool causes). */
  opened = 0;

  constructor(readonly capacity: number = DEFAULT_MAX_OPEN_FILES) {
    if (!Number.isInteger(capacity) || capacity < MIN_MAX_OPEN_FILES) {
      throw new RangeError(
        `Invalid maxOpenFiles ${capacity}: expected an integer of at least ${MIN_MAX_OPEN_FILES}`,
      );
    }
  }

  /** Handles open now (pooled and lent). */
  get size(): number {
    return this.#entries.size + this.#lent;
  }

  /** Handles open, being opened or lent: what the capacity bounds. */
  #count(): number {
    return this.#entries.size + this.#reserved;
  }

  /** True once {@link HandlePool.closeAll} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn` with the pooled handle of `key` (opened with `open` when it is not in the
   * pool), pinned until `fn` settles.
   */
  async use<T>(
    key: string,
    open: () => Promise<FileHandle>,
    fn: (handle: FileHandle) => Promise<T>,
  ): Promise<T> {
    let e = this.#pin(key);
    while (!e) {
      await this.#reserve();
      e = this.#pin(key); // another user may have opened it meanwhile
      if (e) {
        this.#unreserve();
        break;
      }
      let handle: FileHandle;
      try {
        handle = await open();
      } catch (err) {
        this.#unreserve();
        throw err;
      }
      this.#reserved--; // the entry takes the reserved slot
      this.opened++;
      if (this.#closed) {
        closeQuietly(handle);
        throw new Error("The file handle pool is closed");
      }
      e = { handle, pins: 1, doomed: false };
      this.#entries.set(key, e);
    }
    try {
      return await fn(e.handle);
    } finally {
      this.#unpin(key, e);
    }
  }

  /**
   * Runs `fn` with a handle of its own, opened with `open` once a slot is free and closed
   * when `fn` settles (one-off reads: a log read whole at open, metadata).
   */
  async useOnce<T>(
    open: () => Promise<FileHandle>,
    fn: (handle: FileHandle) => Promise<T>,
  ): Promise<T> {
    await this.#reserve(); // the slot stays reserved while the handle is lent
    try {
      const handle = await open();
      this.opened++;
      this.#lent++;
      try {
        return await fn(handle);
      } finally {
        this.#lent--;
        closeQuietly(handle);
      }
    } finally {
      this.#unreserve();
    }
  }

  /** Synchronous {@link HandlePool.use}: never waits (may exceed the capacity briefly). */
  useSync<T>(
    key: string,
    open: () => FileHandle,
    fn: (handle: FileHandle) => T,
  ): T {
    let e = this.#pin(key);
    if (!e) {
      this.#check();
      this.#evict(this.capacity - 1);
      const handle = open();
      this.opened++;
      e = { handle, pins: 1, doomed: false };
      this.#entries.set(key, e);
    }
    try {
      return fn(e.handle);
    } finally {
      this.#unpin(key, e);
    }
  }

  /** Closes the handle of `key` now, or when its current user is done. */
  drop(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    if (e.pins > 0) e.doomed = true;
    else this.#close(key, e);
  }

  /** Closes every handle (those in use once their users are done); later uses throw. */
  closeAll(): void {
    this.#closed = true;
    for (const key of [...this.#entries.keys()]) this.drop(key);
    for (const wake of this.#waiting.splice(0)) wake();
  }

  #check(): void {
    if (this.#closed) throw new Error("The file handle pool is closed");
  }

  #pin(key: string): Entry | undefined {
    this.#check();
    const e = this.#entries.get(key);
    if (!e || e.doomed) return undefined;
    e.pins++;
    this.#entries.delete(key); // move to the most recently used end
    this.#entries.set(key, e);
    return e;
  }

  #unpin(key: string, e: Entry): void {
    e.pins--;
    if (e.pins > 0) return;
    if (e.doomed || this.#closed) this.#close(key, e);
    else this.#evict(this.capacity);
    this.#waiting.shift()?.();
  }

  #close(key: string, e: Entry): void {
    if (this.#entries.get(key) === e) this.#entries.delete(key);
    closeQuietly(e.handle);
  }

  /** Closes unpinned handles, least recently used first, until at most `limit` are open. */
  #evict(limit: number): void {
    if (this.#count() <= limit) return;
    for (const [key, e] of this.#entries) {
      if (this.#count() <= limit) return;
      if (e.pins === 0) this.#close(key, e);
    }
  }

  /**
   * Resolves once a slot is reserved (counted at once, so that concurrent callers
   * cannot take the same free slot): a handle may then be opened within the capacity.
   */
  async #reserve(): Promise<void> {
    for (;;) {
      this.#check();
      this.#evict(this.capacity - 1);
      if (this.#count() < this.capacity) {
        this.#reserved++;
        return;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #unreserve(): void {
    this.#reserved--;
    this.#waiting.shift()?.();
  }
}
