/**
 * One repository's append-only log file, written through the file-system seam. Writes
 * are grouped: one write and one fdatasync per batch (plus, after the file's first
 * write in this process, one fsync of the directory, shared by concurrent logs). A write
 * or fsync that fails is rolled back: the file is cut back to the end of its last
 * durable batch, so it never keeps half a batch, and the batch stays queued for the next
 * flush. The file is opened through a bounded handle pool, so an idle log holds no
 * descriptor.
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import { concatBytes } from "../encoding/bytes.ts";
import {
  type DirectorySync,
  type FileHandle,
  type FileSystem,
  writeAll,
} from "./fs.ts";
import type { HandlePool } from "./handle_pool.ts";
import { type RecoveryReport, type RepoLog, StorageError } from "./storage.ts";

/** What a log file shares with the other logs of its storage. */
export interface LogFileContext {
  readonly fs: FileSystem;
  readonly pool: HandlePool;
  /** fsync of the data directory (group commit). */
  readonly dirSync: DirectorySync;
  /** Called once when the log closes. */
  readonly closed: (log: LogFile) => void;
}

const EMPTY = new Uint8Array(0);

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** See the module documentation. */
export class LogFile implements RepoLog {
  #pending: Uint8Array[] = [];
  #appended = 0;
  #durable = 0;
  #waiters: {
    target: number;
    resolve: () => void;
    reject: (e: unknown) => void;
  }[] = [];
  #draining: Promise<void> | null = null;
  #scheduled = false;
  #closed = false;
  #data: Uint8Array | null;
  #frames: readonly number[] | null;
  /** The log's intact size at open (reads stay below it). */
  readonly #openSize: number;
  /** End of the last durable batch: a failed write is cut back to it. */
  #goodSize: number;
  /** A failed write could not be cut back yet: cut before writing again. */
  #rollbackPending = false;
  /** The directory was fsynced after this file's first write in this process. */
  #entryDurable = false;
  readonly #writeKey: string;
  readonly #readKey: string;

  constructor(
    private readonly ctx: LogFileContext,
    readonly repo: RepoPath,
    readonly path: string,
    data: Uint8Array,
    frames: readonly number[],
    /** The file's size once repaired (the end of its last intact record). */
    size: number,
    readonly recovery: RecoveryReport | undefined,
  ) {
    this.#data = data;
    this.#frames = frames;
    this.#openSize = frames.length ? frames[frames.length - 1] : 0;
    this.#goodSize = size;
    this.#writeKey = `w ${path}`;
    this.#readKey = `r ${path}`;
  }

  get data(): Uint8Array {
    return this.#data ?? EMPTY;
  }

  get frames(): readonly number[] {
    return this.#frames ?? [];
  }

  /** True once closed (explicitly, or by the storage's close). */
  get closed(): boolean {
    return this.#closed;
  }

  releaseData(): void {
    this.#data = null;
    this.#frames = null;
  }

  /** A storage error naming this log's repository and file. */
  #error(what: string, e: unknown): StorageError {
    return new StorageError(
      `${what} repository ${this.repo} (file ${this.path}): ${reason(e)}`,
      { cause: e, repo: this.repo, path: this.path },
    );
  }

  /**
   * Reads `[start, end)` of the open-time log: from memory while `data` is held, else
   * with a positioned read through a read handle of the pool (the write handle's
   * position belongs to the writer).
   */
  read(start: number, end: number): Uint8Array {
    if (!(start >= 0 && start <= end && end <= this.#openSize)) {
      throw new RangeError(
        `Cannot read [${start}, ${end}) of repository ${this.repo} (file ${this.path}): the log had ${this.#openSize} intact bytes at open`,
      );
    }
    if (this.#data) return this.#data.subarray(start, end);
    const out = new Uint8Array(end - start);
    const readAll = (file: FileHandle) => {
      let o = 0;
      while (o < out.length) {
        const n = file.readAtSync(out.subarray(o), start + o);
        if (n === null || n === 0) {
          throw new Error(
            `the file ends at ${start + o} bytes, shorter than at open`,
          );
        }
        o += n;
      }
      return out;
    };
    const open = () => this.ctx.fs.openSync(this.path, { read: true });
    try {
      if (!this.#closed && !this.ctx.pool.closed) {
        return this.ctx.pool.useSync(this.#readKey, open, readAll);
      }
      const file = open(); // closed: a short-lived handle
      try {
        return readAll(file);
      } finally {
        file.close();
      }
    } catch (e) {
      throw this.#error(`Cannot read bytes [${start}, ${end}) of`, e);
    }
  }

  append(frame: Uint8Array): void {
    if (this.#closed) {
      throw new StorageError(
        `Cannot append to repository ${this.repo} (file ${this.path}): the log is closed`,
        { repo: this.repo, path: this.path },
      );
    }
    this.#pending.push(frame);
    this.#appended++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        this.#drain().catch(() => {}); // errors reach flush() callers
      }, 0);
    }
  }

  flush(): Promise<void> {
    if (this.#durable >= this.#appended) return Promise.resolve();
    if (this.#closed) {
      return Promise.reject(
        this.#error(
          `${this.#appended - this.#durable} records were not written to`,
          new Error("the storage was closed before they were"),
        ),
      );
    }
    const target = this.#appended;
    const p = new Promise<void>((resolve, reject) =>
      this.#waiters.push({ target, resolve, reject })
    );
    this.#drain().catch(() => {});
    return p;
  }

  #drain(): Promise<void> {
    if (!this.#draining) {
      this.#draining = this.#drainLoop().finally(() => this.#draining = null);
    }
    return this.#draining;
  }

  async #drainLoop(): Promise<void> {
    while (this.#pending.length && !this.#closed) {
      const batch = this.#pending;
      const upTo = this.#appended;
      this.#pending = [];
      const bytes = concatBytes(batch);
      try {
        await this.#writeDurably(bytes);
      } catch (e) {
        // Nothing of the batch is in the file: keep it for the next flush.
        this.#pending = [...batch, ...this.#pending];
        const error = this.#error(`Cannot write ${bytes.length} bytes to`, e);
        for (const w of this.#waiters.splice(0)) w.reject(error);
        throw error;
      }
      this.#durable = upTo;
      this.#waiters = this.#waiters.filter((w) => {
        if (w.target > upTo) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Appends `bytes` at the end of the last durable batch and makes them durable. */
  async #writeDurably(bytes: Uint8Array): Promise<void> {
    const { fs, pool, dirSync } = this.ctx;
    const open = () =>
      fs.open(this.path, {
        write: true,
        append: true,
        create: true,
        mode: 0o600,
      });
    await pool.use(this.#writeKey, open, async (file) => {
      if (this.#rollbackPending) {
        await file.truncate(this.#goodSize);
        await file.syncData();
        this.#rollbackPending = false;
      }
      try {
        await writeAll(file, bytes);
        await file.syncData();
        // The file may be new: its directory entry must be durable too.
        if (!this.#entryDurable) await dirSync.sync();
      } catch (e) {
        await this.#rollBack(file);
        throw e;
      }
    });
    this.#entryDurable = true;
    this.#goodSize += bytes.length;
  }

  /** Cuts the file back to its last durable batch (or marks it to be cut next time). */
  async #rollBack(file: FileHandle): Promise<void> {
    try {
      await file.truncate(this.#goodSize);
      await file.syncData();
    } catch {
      // The handle may be broken: reopen it, and cut before the next write.
      this.#rollbackPending = true;
      this.ctx.pool.drop(this.#writeKey);
    }
  }

  /** Closes the pooled handles of this log (reopened on the next use). */
  releaseHandles(): void {
    this.ctx.pool.drop(this.#writeKey);
    this.ctx.pool.drop(this.#readKey);
  }

  /**
   * Flushes and closes the log. When the flush fails, the log stays open with its
   * records queued (a later flush or close retries them) but holds no handle.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.releaseHandles();
    }
    this.abandon();
  }

  /**
   * Closes the log without flushing (the storage is closing): queued records are
   * dropped and their flushes rejected; handles are released.
   */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    const lost = this.#appended - this.#durable;
    if (lost > 0) {
      const error = this.#error(
        `${lost} records were not written to`,
        new Error("the storage was closed before they were"),
      );
      for (const w of this.#waiters.splice(0)) w.reject(error);
    }
    this.#pending = [];
    this.releaseHandles();
    this.ctx.closed(this);
  }
}
