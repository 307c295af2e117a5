/**
 * The real {@link FileSystem} of the file storage, on `Deno.*` (a Deno-only module:
 * imported by file_storage.ts, never by the platform-neutral rest of lib/).
 *
 * @module
 */

import type {
  DirEntry,
  FileHandle,
  FileOpenOptions,
  FileStat,
  FileSystem,
} from "./fs.ts";

function statOf(info: Deno.FileInfo): FileStat {
  return {
    isFile: info.isFile,
    isDirectory: info.isDirectory,
    size: info.size,
    ino: info.ino,
  };
}

function openOptions(o: FileOpenOptions): Deno.OpenOptions {
  return {
    read: o.read ?? false,
    write: o.write ?? false,
    append: o.append ?? false,
    create: o.create ?? false,
    createNew: o.createNew ?? false,
    truncate: o.truncate ?? false,
    ...(o.mode !== undefined ? { mode: o.mode } : {}),
  };
}

class DenoFileHandle implements FileHandle {
  constructor(private readonly file: Deno.FsFile) {}
  write(bytes: Uint8Array): Promise<number> {
    return this.file.write(bytes);
  }
  writeSync(bytes: Uint8Array): number {
    return this.file.writeSync(bytes);
  }
  read(buffer: Uint8Array): Promise<number | null> {
    return this.file.read(buffer);
  }
  readAtSync(buffer: Uint8Array, position: number): number | null {
    this.file.seekSync(position, Deno.SeekMode.Start);
    return this.file.readSync(buffer);
  }
  truncate(length: number): Promise<void> {
    return this.file.truncate(length);
  }
  truncateSync(length: number): void {
    this.file.truncateSync(length);
  }
  sync(): Promise<void> {
    return this.file.sync();
  }
  syncSync(): void {
    this.file.syncSync();
  }
  syncData(): Promise<void> {
    return this.file.syncData();
  }
  async stat(): Promise<FileStat> {
    return statOf(await this.file.stat());
  }
  tryLock(): Promise<boolean> {
    // flock(LOCK_EX | LOCK_NB) never waits: no need for a trip to the thread pool.
    try {
      return Promise.resolve(this.file.tryLockSync(true));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  close(): void {
    this.file.close();
  }
}

/** Directories cannot be fsynced on every platform (Windows): those errors mean "not needed". */
function ignorableDirSyncError(e: unknown): boolean {
  return e instanceof Deno.errors.NotSupported ||
    e instanceof Deno.errors.PermissionDenied ||
    (e as { code?: string }).code === "EINVAL";
}

/** The file system of the machine, through `Deno.*`. */
export const denoFileSystem: FileSystem = {
  async open(path, options) {
    return new DenoFileHandle(await Deno.open(path, openOptions(options)));
  },
  openSync(path, options) {
    return new DenoFileHandle(Deno.openSync(path, openOptions(options)));
  },
  async mkdirAll(path) {
    try {
      if ((await Deno.stat(path)).isDirectory) return false;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await Deno.mkdir(path, { recursive: true });
    return true;
  },
  async readDir(path) {
    const out: DirEntry[] = [];
    for await (const e of Deno.readDir(path)) {
      out.push({
        name: e.name,
        isFile: e.isFile,
        isDirectory: e.isDirectory,
        isSymlink: e.isSymlink,
      });
    }
    return out;
  },
  async stat(path) {
    return statOf(await Deno.stat(path));
  },
  statSync(path) {
    return statOf(Deno.statSync(path));
  },
  rename: (from, to) => Deno.rename(from, to),
  renameSync: (from, to) => Deno.renameSync(from, to),
  remove: (path) => Deno.remove(path),
  chmod: (path, mode) => Deno.chmod(path, mode),
  async syncDir(path) {
    let dir: Deno.FsFile;
    try {
      dir = await Deno.open(path, { read: true });
    } catch (e) {
      if (ignorableDirSyncError(e)) return;
      throw e;
    }
    try {
      await dir.sync();
    } catch (e) {
      if (!ignorableDirSyncError(e)) throw e;
    } finally {
      dir.close();
    }
  },
  syncDirSync(path) {
    let dir: Deno.FsFile;
    try {
      dir = Deno.openSync(path, { read: true });
    } catch (e) {
      if (ignorableDirSyncError(e)) return;
      throw e;
    }
    try {
      dir.syncSync();
    } catch (e) {
      if (!ignorableDirSyncError(e)) throw e;
    } finally {
      dir.close();
    }
  },
};

let knownLimit: number | null | undefined;

/**
 * The soft limit of open descriptors of this process (Linux `/proc/self/limits`), or
 * null where it cannot be read. Read once per process.
 */
export function descriptorLimit(): number | null {
  if (knownLimit === undefined) knownLimit = readDescriptorLimit();
  return knownLimit;
}

function readDescriptorLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m) return null;
    return m[1] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    return null; // not Linux, or no permission to read /proc
  }
}
