/**
 * File storage for Deno (the one part of lib/ that uses `Deno.*`; imported by mod.ts and
 * server/, never by client/). A database is one directory; each repository is one
 * append-only file `<type>.<repo>.capra` in it. Writes are grouped: one write and one
 * fsync per batch. A torn or corrupt tail is cut at the exact end of the last intact
 * record on open, and the cut bytes are kept beside the file (`….cut-<time>`).
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import { scanFrames } from "./frames.ts";
import {
  recoveryOf,
  type RecoveryReport,
  type RepoLog,
  type Storage,
} from "./storage.ts";
import { concatBytes } from "../encoding/bytes.ts";

const REPO_FILE = /^([a-z0-9_-]{1,64})\.([a-z0-9_-]{1,64})\.capra$/;
const LOCK_FILE = "LOCK";
const META_NAME = /^[a-z0-9_.-]{1,64}$/;

/** The file name of a repository inside the data directory. */
export function repoFileName(repo: RepoPath): string {
  const [, type, name] = repo.split("/");
  return `${type}.${name}.capra`;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await file.write(bytes.subarray(o));
}

function openForAppend(path: string): Promise<Deno.FsFile> {
  return Deno.open(path, {
    write: true,
    append: true,
    create: true,
    mode: 0o600,
  });
}

/** Reads a file into one preallocated buffer (faster than readFile's growing buffer). */
async function readWholeFile(path: string): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint8Array(0);
    throw e;
  }
  try {
    const size = (await file.stat()).size;
    let buf = new Uint8Array(size);
    let o = 0;
    for (;;) {
      if (o === buf.length) {
        // Full: check for the end with a small probe before growing (the file should
        // not grow while we hold the lock), so the usual read allocates exactly once.
        const probe = new Uint8Array(4096);
        const n = await file.read(probe);
        if (n === null) break;
        const bigger = new Uint8Array(buf.length * 2 + 4096);
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
  } finally {
    file.close();
  }
}

function isAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // Without /proc we cannot tell: assume alive unless /proc exists at all.
      try {
        Deno.statSync("/proc/self");
        return false;
      } catch {
        return true;
      }
    }
    return true;
  }
}

/** Writes a file atomically: temp file, fsync, rename over the target. */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode,
  });
  try {
    await writeAll(file, bytes);
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.chmod(tmp, mode).catch(() => {});
  await Deno.rename(tmp, path);
}

/** Synchronous twin of {@link writeFileAtomic} (used only by rare repairs). */
function writeFileAtomicSync(
  path: string,
  bytes: Uint8Array,
  mode = 0o600,
): void {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = Deno.openSync(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode,
  });
  try {
    let o = 0;
    while (o < bytes.length) o += file.writeSync(bytes.subarray(o));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
}

const EMPTY = new Uint8Array(0);

class FileLog implements RepoLog {
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
  /** The log's size at open (reads stay below it). */
  readonly #openSize: number;
  /** Read handle for {@link FileLog.read}, opened on first use. */
  #reader: Deno.FsFile | null = null;

  constructor(
    readonly path: string,
    private file: Deno.FsFile | null,
    data: Uint8Array,
    frames: readonly number[],
    readonly recovery: RecoveryReport | undefined,
  ) {
    this.#data = data;
    this.#frames = frames;
    this.#openSize = frames.length ? frames[frames.length - 1] : 0;
  }

  get data(): Uint8Array {
    return this.#data ?? EMPTY;
  }

  get frames(): readonly number[] {
    return this.#frames ?? [];
  }

  releaseData(): void {
    this.#data = null;
    this.#frames = null;
  }

  /**
   * Reads `[start, end)` of the open-time log: from memory while `data` is held, else
   * with a positioned read through a separate read-only handle (the append handle's
   * position belongs to the writer).
   */
  read(start: number, end: number): Uint8Array {
    if (!(start >= 0 && start <= end && end <= this.#openSize)) {
      throw new RangeError(
        `Cannot read [${start}, ${end}) of ${this.path}: the log had ${this.#openSize} intact bytes at open`,
      );
    }
    if (this.#data) return this.#data.subarray(start, end);
    const reader = this.#reader ?? Deno.openSync(this.path, { read: true });
    try {
      reader.seekSync(start, Deno.SeekMode.Start);
      const out = new Uint8Array(end - start);
      let o = 0;
      while (o < out.length) {
        const n = reader.readSync(out.subarray(o));
        if (n === null) {
          throw new Error(
            `Cannot read [${start}, ${end}) of ${this.path}: the file is shorter than at open`,
          );
        }
        o += n;
      }
      return out;
    } finally {
      // After close, reads use a short-lived handle; before, the handle is kept.
      if (this.#closed) reader.close();
      else this.#reader = reader;
    }
  }

  append(frame: Uint8Array): void {
    if (this.#closed) {
      throw new Error(`Cannot append to ${this.path}: log is closed`);
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
    while (this.#pending.length) {
      const batch = this.#pending;
      const upTo = this.#appended;
      this.#pending = [];
      const bytes = concatBytes(batch);
      try {
        this.file ??= await openForAppend(this.path);
        await writeAll(this.file, bytes);
        await this.file.syncData();
      } catch (e) {
        // Keep the batch so a later flush retries it; fail the waiters now.
        this.#pending = [...batch, ...this.#pending];
        const error = new Error(
          `Cannot write ${bytes.length} bytes to ${this.path}: ${
            (e as Error).message
          }`,
          { cause: e },
        );
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

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    this.file?.close();
    this.#reader?.close();
    this.#reader = null;
  }
}

/** Storage in a directory of files. */
export class FileStorage implements Storage {
  #closed = false;
  private constructor(readonly dir: string) {}

  /**
   * Opens (creating if needed) a data directory and locks it for this process. Throws
   * when another live process holds the lock.
   */
  static async open(dir: string): Promise<FileStorage> {
    await Deno.mkdir(dir, { recursive: true });
    const lock = `${dir}/${LOCK_FILE}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const f = await Deno.open(lock, {
          write: true,
          createNew: true,
          mode: 0o600,
        });
        await writeAll(f, new TextEncoder().encode(String(Deno.pid)));
        f.close();
        return new FileStorage(dir);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        const pid = Number(
          (await Deno.readTextFile(lock).catch(() => "")).trim(),
        );
        if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) {
          throw new Error(
            `Cannot open database "${dir}": it is locked by process ${pid}${
              pid === Deno.pid
                ? " (this process: close the other Database first)"
                : ""
            }`,
          );
        }
        await Deno.remove(lock).catch(() => {}); // stale lock of a dead process
      }
    }
    throw new Error(`Cannot open database "${dir}": could not take ${lock}`);
  }

  async openLog(repo: RepoPath): Promise<RepoLog> {
    this.#check();
    const path = `${this.dir}/${repoFileName(repo)}`;
    return this.#finishOpen(repo, path, await readWholeFile(path));
  }

  /** Synchronous open, used to reopen repositories the database closed automatically. */
  openLogSync(repo: RepoPath): RepoLog {
    this.#check();
    const path = `${this.dir}/${repoFileName(repo)}`;
    let data: Uint8Array;
    try {
      data = Deno.readFileSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      data = new Uint8Array(0);
    }
    return this.#finishOpen(repo, path, data);
  }

  /**
   * Scans a log and repairs a torn tail: the cut bytes are kept beside the file, the file
   * is truncated at the end of the last intact record. Synchronous so both opens share it
   * (repairs are rare; the common path does no I/O here).
   */
  #finishOpen(repo: RepoPath, path: string, data: Uint8Array): RepoLog {
    const scan = scanFrames(data);
    let file: Deno.FsFile | null = null;
    let preservedAt: string | undefined;
    if (scan.validEnd < data.length) {
      preservedAt = `${path}.cut-${Date.now()}`;
      writeFileAtomicSync(preservedAt, data.subarray(scan.validEnd));
      Deno.truncateSync(path, scan.validEnd);
    }
    const recovery = recoveryOf(repo, data, scan, preservedAt);
    // A repository that was never written has no file: it is created on first append,
    // so reading a missing repository leaves no trace on disk.
    if (data.length > 0) {
      file = Deno.openSync(path, {
        write: true,
        append: true,
        create: true,
        mode: 0o600,
      });
      if (recovery?.cutBytes) file.syncSync();
    }
    return new FileLog(path, file, data, scan.frames, recovery);
  }

  async replaceLog(
    repo: RepoPath,
    frames: readonly Uint8Array[],
  ): Promise<void> {
    this.#check();
    const bytes = concatBytes(frames);
    // temp + fsync + rename: a crash leaves the old or the new file, never a mix.
    await writeFileAtomic(`${this.dir}/${repoFileName(repo)}`, bytes, 0o600);
    try {
      const d = await Deno.open(this.dir, { read: true });
      await d.sync().catch(() => {}); // make the rename durable where supported
      d.close();
    } catch { /* directories cannot be opened on some platforms */ }
  }

  async listRepos(): Promise<RepoPath[]> {
    this.#check();
    const out: RepoPath[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      const m = entry.isFile ? REPO_FILE.exec(entry.name) : null;
      if (m) out.push(`/${m[1]}/${m[2]}` as RepoPath);
    }
    return out.sort();
  }

  async readMeta(name: string): Promise<Uint8Array | null> {
    this.#check();
    try {
      return await Deno.readFile(`${this.dir}/${metaFile(name)}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  async writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    this.#check();
    await writeFileAtomic(`${this.dir}/${metaFile(name)}`, bytes, 0o600);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Deno.remove(`${this.dir}/${LOCK_FILE}`).catch(() => {});
  }

  #check(): void {
    if (this.#closed) throw new Error(`Storage "${this.dir}" is closed`);
  }
}

function metaFile(name: string): string {
  if (!META_NAME.test(name)) {
    throw new TypeError(`Invalid metadata name "${name}"`);
  }
  return `${name}.meta`;
}
