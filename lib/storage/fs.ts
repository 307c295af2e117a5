/**
 * The file-system seam of the file storage: the few operations it uses, so that tests
 * can run it on a fault-injecting file system (power cuts that lose unsynced bytes,
 * failing writes and fsyncs, short writes) instead of the disk. The real implementation
 * is `denoFileSystem` (deno_fs.ts); {@link FaultyFileSystem} (faulty_fs.ts) is the test
 * one. Platform-neutral: no `Deno.*` here.
 *
 * @module
 */

/** How to open a file (the subset of POSIX `open` flags the storage uses). */
export interface FileOpenOptions {
  readonly read?: boolean;
  readonly write?: boolean;
  /** Every write goes to the end of the file (implies write). */
  readonly append?: boolean;
  readonly create?: boolean;
  /** Fails with `EEXIST` when the file exists (implies create). */
  readonly createNew?: boolean;
  readonly truncate?: boolean;
  /** Permission bits of a created file. */
  readonly mode?: number;
}

/** What `stat` tells. */
export interface FileStat {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly size: number;
  /** Identity of the file (inode number) where known, to tell a replaced file apart. */
  readonly ino: number | null;
}

/** One entry of a directory listing. */
export interface DirEntry {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
}

/** An open file. Writes may be short: callers loop ({@link writeAll}). */
export interface FileHandle {
  /** Writes some bytes of `bytes` (at the end for append handles); returns how many. */
  write(bytes: Uint8Array): Promise<number>;
  /** Synchronous {@link FileHandle.write}. */
  writeSync(bytes: Uint8Array): number;
  /** Reads into `buffer` from the current position; null at the end of the file. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Reads into `buffer` from byte `position` (moves this handle's position). */
  readAtSync(buffer: Uint8Array, position: number): number | null;
  /** Cuts (or extends) the file to `length` bytes. */
  truncate(length: number): Promise<void>;
  /** Synchronous {@link FileHandle.truncate}. */
  truncateSync(length: number): void;
  /** fsync: data and metadata reach the disk. */
  sync(): Promise<void>;
  /** Synchronous {@link FileHandle.sync}. */
  syncSync(): void;
  /** fdatasync: data (and the size) reach the disk. */
  syncData(): Promise<void>;
  stat(): Promise<FileStat>;
  /** Takes an exclusive advisory lock without waiting; false when another holds it. */
  tryLock(): Promise<boolean>;
  /** Closes the handle (and releases its lock). */
  close(): void;
}

/** The file operations of the file storage. */
export interface FileSystem {
  open(path: string, options: FileOpenOptions): Promise<FileHandle>;
  openSync(path: string, options: FileOpenOptions): FileHandle;
  /** Creates a directory and its missing parents; true when it created any. */
  mkdirAll(path: string): Promise<boolean>;
  readDir(path: string): Promise<DirEntry[]>;
  stat(path: string): Promise<FileStat>;
  statSync(path: string): FileStat;
  /** Atomically replaces `to` with `from` (same directory). */
  rename(from: string, to: string): Promise<void>;
  /** Synchronous {@link FileSystem.rename}. */
  renameSync(from: string, to: string): void;
  remove(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** fsync of a directory: makes its entries (creates, renames, removes) durable. */
  syncDir(path: string): Promise<void>;
  /** Synchronous {@link FileSystem.syncDir}. */
  syncDirSync(path: string): void;
}

/** The POSIX error code of a file-system error (`ENOENT`, `ENOSPC`...), if any. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** True when `e` says the file does not exist. */
export function isNotFound(e: unknown): boolean {
  return errorCode(e) === "ENOENT" || (e as Error)?.name === "NotFound";
}

/** True when `e` says the file exists already. */
export function isAlreadyExists(e: unknown): boolean {
  return errorCode(e) === "EEXIST" || (e as Error)?.name === "AlreadyExists";
}

/** True when `e` says the file system or directory refuses writes. */
export function isNotWritable(e: unknown): boolean {
  const code = errorCode(e);
  return code === "EROFS" || code === "EACCES" || code === "EPERM" ||
    (e as Error)?.name === "PermissionDenied";
}

/** The parent directory of a path (`.` for a bare name). */
export function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Writes all of `bytes`, looping over short writes. */
export async function writeAll(
  file: FileHandle,
  bytes: Uint8Array,
): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await file.write(bytes.subarray(o));
}

/** Synchronous {@link writeAll}. */
export function writeAllSync(file: FileHandle, bytes: Uint8Array): void {
  let o = 0;
  while (o < bytes.length) o += file.writeSync(bytes.subarray(o));
}

function tempNameOf(path: string): string {
  return `${path}.tmp-${crypto.randomUUID().slice(0, 13)}`;
}

/**
 * Replaces a file atomically and durably: write a temp file, fsync it, rename it over
 * the target, fsync the directory. After a crash at any point the file holds the old or
 * the new bytes, never a mix; once this resolves, the new bytes survive a power cut.
 */
export async function writeFileAtomic(
  fs: FileSystem,
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): Promise<void> {
  const tmp = tempNameOf(path);
  const file = await fs.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode,
  });
  try {
    await writeAll(file, bytes);
    await file.sync();
  } catch (e) {
    file.close();
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    // The creation mode is subject to the umask; some file systems have no modes.
    await fs.chmod(tmp, mode).catch(() => {});
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
  await fs.syncDir(parentDir(path));
}

/** Synchronous {@link writeFileAtomic} (for rare repairs on the synchronous open). */
export function writeFileAtomicSync(
  fs: FileSystem,
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): void {
  const tmp = tempNameOf(path);
  const file = fs.openSync(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode,
  });
  try {
    writeAllSync(file, bytes);
    file.syncSync();
  } finally {
    file.close();
  }
  fs.renameSync(tmp, path);
  fs.syncDirSync(parentDir(path));
}

/**
 * Group commit for directory fsyncs: concurrent requests share one fsync (a request that
 * arrives while one runs waits for the next, which covers its change).
 */
export class DirectorySync {
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  constructor(private readonly fs: FileSystem, readonly dir: string) {}

  /** Resolves once every entry change made before the call is durable. */
  sync(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (!this.#running) return this.#run();
    const queued = this.#running.catch(() => {}).then(() => {
      this.#queued = null;
      return this.#run();
    });
    this.#queued = queued;
    return queued;
  }

  #run(): Promise<void> {
    const p = this.fs.syncDir(this.dir).finally(() => {
      if (this.#running === p) this.#running = null;
    });
    this.#running = p;
    return p;
  }
}

function isADirectoryError(path: string): Error {
  return Object.assign(
    new Error(`Is a directory (os error 21): read '${path}'`),
    { name: "IsADirectory", code: "EISDIR" },
  );
}

/** A probe read size used to detect the end of a file that grew after `stat`. */
const END_PROBE_BYTES = 4096;

/**
 * Reads a whole file into one buffer of its size (faster than a growing buffer); null
 * when it does not exist. A directory is an error (`EISDIR`), not an empty file.
 */
export async function readWholeFile(
  fs: FileSystem,
  path: string,
  /** Runs the read with a handle (default: opened and closed around it). */
  withHandle: <T>(
    open: () => Promise<FileHandle>,
    fn: (file: FileHandle) => Promise<T>,
  ) => Promise<T> = async (open, fn) => {
    const file = await open();
    try {
      return await fn(file);
    } finally {
      file.close();
    }
  },
): Promise<Uint8Array | null> {
  try {
    return await withHandle(
      () => fs.open(path, { read: true }),
      (file) => readToEnd(file, path),
    );
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

async function readToEnd(file: FileHandle, path: string): Promise<Uint8Array> {
  const info = await file.stat();
  if (info.isDirectory) throw isADirectoryError(path);
  let buf = new Uint8Array(info.size);
  let o = 0;
  for (;;) {
    if (o === buf.length) {
      // Full: probe for the end before growing, so the usual read allocates once.
      const probe = new Uint8Array(END_PROBE_BYTES);
      const n = await file.read(probe);
      if (n === null) break;
      const bigger = new Uint8Array(buf.length * 2 + END_PROBE_BYTES);
      bigger.set(buf);
      bigger.set(probe.subarray(0, n), o);
      buf = bigger;
      o += n;
      continue;
    }
    const n = await file.read(buf.subarray(o));
    if (n === null) break;
    o += n;
  }
  return o === buf.length ? buf : buf.subarray(0, o);
}

/** Synchronous {@link readWholeFile}. */
export function readWholeFileSync(
  fs: FileSystem,
  path: string,
): Uint8Array | null {
  let info: FileStat;
  try {
    info = fs.statSync(path);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  if (info.isDirectory) throw isADirectoryError(path);
  const file = fs.openSync(path, { read: true });
  try {
    let buf = new Uint8Array(info.size);
    let o = 0;
    for (;;) {
      if (o === buf.length) {
        const probe = new Uint8Array(END_PROBE_BYTES);
        const n = file.readAtSync(probe, o);
        if (n === null || n === 0) break;
        const bigger = new Uint8Array(buf.length * 2 + END_PROBE_BYTES);
        bigger.set(buf);
        bigger.set(probe.subarray(0, n), o);
        buf = bigger;
        o += n;
        continue;
      }
      const n = file.readAtSync(buf.subarray(o), o);
      if (n === null || n === 0) break;
      o += n;
    }
    return o === buf.length ? buf : buf.subarray(0, o);
  } finally {
    file.close();
  }
}
