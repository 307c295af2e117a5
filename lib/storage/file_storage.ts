/**
 * File storage for Deno (imported by mod.ts and server/, never by client/). A database
 * is one directory; each repository is one append-only file `<type>.<repo>.capra` in it
 * (see log_file.ts for writes and their rollback). A torn or corrupt tail is cut at the
 * exact end of the last intact record on open, and the cut bytes are kept beside the
 * file (`….cut-<time>`). One opener holds the directory (an OS lock, dir_lock.ts). Files
 * are reached through a bounded pool of handles and a file-system seam (fs.ts): the
 * machine's by default, a fault-injecting one in tests.
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import { scanFrames } from "./frames.ts";
import {
  recoveryOf,
  type RepoLog,
  type Storage,
  StorageError,
} from "./storage.ts";
import { concatBytes } from "../encoding/bytes.ts";
import {
  DirectorySync,
  type FileSystem,
  isNotWritable,
  parentDir,
  readWholeFile,
  readWholeFileSync,
  writeFileAtomic as writeFileAtomicOn,
  writeFileAtomicSync,
} from "./fs.ts";
import { denoFileSystem, descriptorLimit } from "./deno_fs.ts";
import { defaultMaxOpenFiles, HandlePool } from "./handle_pool.ts";
import { DirectoryLock } from "./dir_lock.ts";
import { LogFile } from "./log_file.ts";

export {
  DEFAULT_MAX_OPEN_FILES,
  defaultMaxOpenFiles,
  MAX_DEFAULT_OPEN_FILES,
} from "./handle_pool.ts";
export { LOCK_FILE } from "./dir_lock.ts";

const REPO_FILE = /^([a-z0-9_-]{1,64})\.([a-z0-9_-]{1,64})\.capra$/;
const META_NAME = /^[a-z0-9_.-]{1,64}$/;
/** Probe file created and removed at open, when the lock file existed, to prove the directory takes new files. */
const WRITE_PROBE = "LOCK.write-probe";

/** The file name of a repository inside the data directory. */
export function repoFileName(repo: RepoPath): string {
  const [, type, name] = repo.split("/");
  return `${type}.${name}.capra`;
}

/** Options of {@link FileStorage.open}. */
export interface FileStorageOptions {
  /**
   * Most file handles open at once, over all repository logs. Default: a quarter of
   * the process's descriptor limit (256 under the common 1,024), at most 4,096; 256
   * where the limit is unknown.
   */
  readonly maxOpenFiles?: number;
  /** The file system (default: the machine's; tests pass a fault-injecting one). */
  readonly fs?: FileSystem;
  /** The process id written into the lock (default: this process's). */
  readonly pid?: number;
}

/**
 * Writes a file atomically and durably on the machine's file system: temp file, fsync,
 * rename over the target, fsync of the directory.
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): Promise<void> {
  return writeFileAtomicOn(denoFileSystem, path, bytes, mode);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Storage in a directory of files. */
export class FileStorage implements Storage {
  #closed = false;
  readonly #logs = new Set<LogFile>();
  readonly #pool: HandlePool;
  readonly #dirSync: DirectorySync;

  private constructor(
    readonly dir: string,
    private readonly fs: FileSystem,
    private readonly lock: DirectoryLock,
    pool: HandlePool,
  ) {
    this.#pool = pool;
    this.#dirSync = new DirectorySync(fs, dir);
  }

  /**
   * Opens (creating if needed) a data directory and locks it for this storage. Throws a
   * {@link DirectoryLockedError} when another opener holds it, a {@link StorageError}
   * when the directory cannot be created or does not take writes.
   *
   * @example
   * ```ts
   * import { FileStorage } from "./file_storage.ts";
   * const storage = await FileStorage.open("./data", { maxOpenFiles: 64 });
   * await storage.close();
   * ```
   */
  static async open(
    dir: string,
    options: FileStorageOptions = {},
  ): Promise<FileStorage> {
    const fs = options.fs ?? denoFileSystem;
    const pool = new HandlePool(
      options.maxOpenFiles ?? defaultMaxOpenFiles(descriptorLimit()),
    );
    try {
      if (await fs.mkdirAll(dir)) await fs.syncDir(parentDir(dir));
    } catch (e) {
      throw new StorageError(
        `Cannot open database "${dir}": cannot create the directory${
          isNotWritable(e) ? " (its parent is not writable)" : ""
        }: ${reason(e)}`,
        { cause: e, path: dir },
      );
    }
    const lock = await DirectoryLock.acquire(fs, dir, options.pid ?? Deno.pid);
    try {
      // A lock file left behind may be writable in a directory that takes no new
      // files; a lock file created just now proves the directory takes them.
      if (!lock.created) {
        const probe = `${dir}/${WRITE_PROBE}`;
        (await fs.open(probe, { write: true, create: true, mode: 0o600 }))
          .close();
        await fs.remove(probe);
      }
    } catch (e) {
      await lock.release();
      throw new StorageError(
        `Cannot open database "${dir}": the directory is not writable (${
          reason(e)
        })`,
        { cause: e, path: dir },
      );
    }
    return new FileStorage(dir, fs, lock, pool);
  }

  /** Handles open now (at most `maxOpenFiles`, briefly one more for a read). */
  get openHandles(): number {
    return this.#pool.size;
  }

  /** The bound on open handles (`maxOpenFiles`). */
  get maxOpenFiles(): number {
    return this.#pool.capacity;
  }

  #pathOf(repo: RepoPath): string {
    return `${this.dir}/${repoFileName(repo)}`;
  }

  #error(what: string, repo: RepoPath, path: string, e: unknown): StorageError {
    return new StorageError(
      `${what} repository ${repo} (file ${path}): ${reason(e)}`,
      { cause: e, repo, path },
    );
  }

  async openLog(repo: RepoPath): Promise<RepoLog> {
    this.#check();
    const path = this.#pathOf(repo);
    let bytes: Uint8Array | null;
    try {
      // Through the pool: opening many logs at once stays under its bound.
      bytes = await readWholeFile(
        this.fs,
        path,
        (open, fn) => this.#pool.useOnce(open, fn),
      );
    } catch (e) {
      throw this.#error("Cannot open", repo, path, e);
    }
    this.#check();
    return this.#finishOpen(repo, path, bytes);
  }

  /** Synchronous open, used to reopen repositories the database closed automatically. */
  openLogSync(repo: RepoPath): RepoLog {
    this.#check();
    const path = this.#pathOf(repo);
    let bytes: Uint8Array | null;
    try {
      bytes = readWholeFileSync(this.fs, path);
    } catch (e) {
      throw this.#error("Cannot open", repo, path, e);
    }
    return this.#finishOpen(repo, path, bytes);
  }

  /**
   * Scans a log and repairs a torn tail: the cut bytes are kept beside the file, the file
   * is truncated at the end of the last intact record. Synchronous so both opens share it
   * (repairs are rare; the common path does no I/O here).
   */
  #finishOpen(
    repo: RepoPath,
    path: string,
    bytes: Uint8Array | null,
  ): RepoLog {
    const data = bytes ?? new Uint8Array(0);
    const scan = scanFrames(data);
    let preservedAt: string | undefined;
    if (scan.validEnd < data.length) {
      preservedAt = `${path}.cut-${Date.now()}`;
      try {
        writeFileAtomicSync(this.fs, preservedAt, data.subarray(scan.validEnd));
        const file = this.fs.openSync(path, { write: true });
        try {
          file.truncateSync(scan.validEnd);
          file.syncSync();
        } finally {
          file.close();
        }
      } catch (e) {
        throw this.#error("Cannot cut the torn tail of", repo, path, e);
      }
    }
    const recovery = recoveryOf(repo, data, scan, preservedAt);
    const log = new LogFile(
      {
        fs: this.fs,
        pool: this.#pool,
        dirSync: this.#dirSync,
        closed: (l) => this.#logs.delete(l),
      },
      repo,
      path,
      data,
      scan.frames,
      scan.validEnd,
      recovery,
    );
    this.#logs.add(log);
    return log;
  }

  async replaceLog(
    repo: RepoPath,
    frames: readonly Uint8Array[],
  ): Promise<void> {
    this.#check();
    const path = this.#pathOf(repo);
    // Handles of the old file must not outlive it.
    for (const log of this.#logs) if (log.path === path) log.releaseHandles();
    try {
      // temp + fsync + rename + directory fsync: old or new file after a crash.
      await writeFileAtomicOn(this.fs, path, concatBytes(frames), 0o600);
    } catch (e) {
      throw this.#error("Cannot replace the log of", repo, path, e);
    }
  }

  async listRepos(): Promise<RepoPath[]> {
    this.#check();
    const out: RepoPath[] = [];
    let entries;
    try {
      entries = await this.fs.readDir(this.dir);
    } catch (e) {
      throw new StorageError(
        `Cannot list the repositories of "${this.dir}": ${reason(e)}`,
        { cause: e, path: this.dir },
      );
    }
    for (const entry of entries) {
      const m = entry.isFile ? REPO_FILE.exec(entry.name) : null;
      if (m) out.push(`/${m[1]}/${m[2]}` as RepoPath);
    }
    return out.sort();
  }

  async readMeta(name: string): Promise<Uint8Array | null> {
    this.#check();
    const path = `${this.dir}/${metaFile(name)}`;
    try {
      return await readWholeFile(this.fs, path);
    } catch (e) {
      throw new StorageError(
        `Cannot read metadata "${name}" (file ${path}): ${reason(e)}`,
        { cause: e, path },
      );
    }
  }

  async writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    this.#check();
    const path = `${this.dir}/${metaFile(name)}`;
    try {
      await writeFileAtomicOn(this.fs, path, bytes, 0o600);
    } catch (e) {
      throw new StorageError(
        `Cannot write metadata "${name}" (file ${path}): ${reason(e)}`,
        { cause: e, path },
      );
    }
  }

  /**
   * Releases every handle and the directory lock. Logs still open (a database closes
   * its logs first: these are logs whose close failed) get one last attempt to write
   * what they queued; what still fails is dropped, its error already reported.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      [...this.#logs].map((log) => log.flush().catch(() => {})),
    );
    for (const log of [...this.#logs]) log.abandon();
    this.#pool.closeAll();
    await this.lock.release();
  }

  #check(): void {
    if (this.#closed) {
      throw new StorageError(`Storage "${this.dir}" is closed`, {
        path: this.dir,
      });
    }
  }
}

function metaFile(name: string): string {
  if (!META_NAME.test(name)) {
    throw new TypeError(`Invalid metadata name "${name}"`);
  }
  return `${name}.meta`;
}
