/**
 * The lock that gives one opener a data directory: an exclusive, non-blocking OS lock
 * (`flock`) on the directory's `LOCK` file. The operating system releases it when its
 * holder exits, however it exits, so the lock of a dead process is never stale; the pid
 * written into the file only names the holder in the error of the openers that lose.
 *
 * @module
 */

import {
  type FileHandle,
  type FileSystem,
  isAlreadyExists,
  isNotFound,
  isNotWritable,
  writeAll,
} from "./fs.ts";
import { DirectoryLockedError, StorageError } from "./storage.ts";

/** File name of the lock inside a data directory. */
export const LOCK_FILE = "LOCK";
/** Attempts to lock when the lock file is replaced by a closing holder meanwhile. */
const LOCK_ATTEMPTS = 8;
/** How long a losing opener waits for the winner to record its pid. */
const HOLDER_PID_WAIT_MS = 250;
const HOLDER_PID_POLL_MS = 10;
/** Bytes read from a lock file for the holder's pid. */
const PID_BYTES = 32;

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The holder's pid as written in the lock file, or null while it writes none. */
function pidIn(file: FileHandle): number | null {
  const buf = new Uint8Array(PID_BYTES);
  const n = file.readAtSync(buf, 0) ?? 0;
  const text = new TextDecoder().decode(buf.subarray(0, n)).trim();
  const pid = Number(text);
  return text !== "" && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

async function holderPid(file: FileHandle): Promise<number | null> {
  const deadline = Date.now() + HOLDER_PID_WAIT_MS;
  for (;;) {
    const pid = pidIn(file);
    if (pid !== null || Date.now() >= deadline) return pid;
    await new Promise((r) => setTimeout(r, HOLDER_PID_POLL_MS));
  }
}

/** A held directory lock. */
export class DirectoryLock {
  private constructor(
    private readonly fs: FileSystem,
    readonly path: string,
    private readonly file: FileHandle,
    /**
     * This opener created the lock file: the directory takes new entries. (A lock file
     * left by a crashed holder proves nothing about that.)
     */
    readonly created: boolean,
  ) {}

  /**
   * Takes the lock of `dir` for process `pid`. Throws {@link DirectoryLockedError} when
   * another opener holds it, a {@link StorageError} when the directory is not writable.
   */
  static async acquire(
    fs: FileSystem,
    dir: string,
    pid: number,
  ): Promise<DirectoryLock> {
    const path = `${dir}/${LOCK_FILE}`;
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      let file: FileHandle;
      let created = true;
      const options = { read: true, write: true, mode: 0o600 };
      try {
        try {
          file = await fs.open(path, { ...options, createNew: true });
        } catch (e) {
          if (!isAlreadyExists(e)) throw e;
          created = false;
          file = await fs.open(path, { ...options, create: true });
        }
      } catch (e) {
        throw new StorageError(
          isNotWritable(e)
            ? `Cannot open database "${dir}": the directory is not writable (${
              reason(e)
            })`
            : `Cannot open database "${dir}": cannot open its lock file ${path}: ${
              reason(e)
            }`,
          { cause: e, path: dir },
        );
      }
      try {
        if (!await file.tryLock()) {
          throw new DirectoryLockedError(dir, await holderPid(file), pid);
        }
        // Ours, unless we opened an existing file that a closing holder removed before
        // we locked it: then the lock is on a file nobody else will look at, so lock
        // the current one. (A file we created is the current one: only its holder
        // removes it.)
        if (!created) {
          const mine = await file.stat();
          const current = await fs.stat(path).catch((e) => {
            if (isNotFound(e)) return null;
            throw e;
          });
          if (!current || (mine.ino !== null && mine.ino !== current.ino)) {
            file.close();
            continue;
          }
        }
        // Write, then cut what an older, longer pid left (a truncate to zero before the
        // write would make ext4 flush the file on close: milliseconds per open).
        const text = new TextEncoder().encode(`${pid}\n`);
        await writeAll(file, text);
        if (!created) await file.truncate(text.length);
        return new DirectoryLock(fs, path, file, created);
      } catch (e) {
        try {
          file.close();
        } catch { /* closed above */ }
        if (e instanceof StorageError) throw e;
        throw new StorageError(
          `Cannot open database "${dir}": cannot lock ${path}: ${reason(e)}`,
          { cause: e, path: dir },
        );
      }
    }
    throw new StorageError(
      `Cannot open database "${dir}": its lock file ${path} kept being replaced (${LOCK_ATTEMPTS} attempts)`,
      { path: dir },
    );
  }

  /** Releases the lock (the file is removed first, while still held). */
  async release(): Promise<void> {
    await this.fs.remove(this.path).catch(() => {});
    try {
      this.file.close();
    } catch { /* already released */ }
  }
}
