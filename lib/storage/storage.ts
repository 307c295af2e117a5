/**
 * Storage interfaces. A storage holds one append-only log per repository plus a few
 * small metadata blobs (the session key). Implementations: memory, file (Deno) and
 * IndexedDB (browser); all run through one conformance suite.
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import type { DamagedRange, ScanResult } from "./frames.ts";

/** Options of {@link StorageError}. */
export interface StorageErrorOptions {
  /** The underlying error (kept as `cause`). */
  readonly cause?: unknown;
  /** The repository concerned, if any. */
  readonly repo?: RepoPath;
  /** The file (or data directory) concerned. */
  readonly path?: string;
}

/**
 * A storage operation failed. The message names the repository (or metadata) and the
 * file; `code` is the file system's error code (`ENOSPC`, `EROFS`, `EISDIR`...) when it
 * gave one, and `cause` the original error.
 */
export class StorageError extends Error {
  override name = "StorageError";
  readonly repo?: RepoPath;
  readonly path?: string;
  readonly code?: string;
  constructor(message: string, options: StorageErrorOptions = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    if (options.repo) this.repo = options.repo;
    if (options.path) this.path = options.path;
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === "string") this.code = code;
  }
}

/** A data directory is held by another opener (another process, or this one). */
export class DirectoryLockedError extends StorageError {
  override name = "DirectoryLockedError";
  constructor(
    readonly dir: string,
    /** The holder's process id, when it could be read. */
    readonly pid: number | null,
    ownPid?: number,
  ) {
    super(
      `Cannot open database "${dir}": it is locked by ${
        pid === null
          ? "another process (its pid is not recorded)"
          : `process ${pid}`
      }${
        pid !== null && pid === ownPid
          ? " (this process: close the other Database first)"
          : ""
      }`,
      { path: dir },
    );
  }
}

/** What opening a log found and repaired. */
export interface RecoveryReport {
  readonly repo: RepoPath;
  /** bytes cut from a torn or corrupt tail */
  readonly cutBytes: number;
  /** where the cut bytes were preserved, if anywhere */
  readonly preservedAt?: string;
  /** damaged ranges between intact records, skipped */
  readonly skipped: readonly DamagedRange[];
}

/**
 * What opening a log with these scanned `data` must report: the cut tail and the skipped
 * damaged ranges; undefined when the log is intact.
 */
export function recoveryOf(
  repo: RepoPath,
  data: Uint8Array,
  scan: ScanResult,
  preservedAt?: string,
): RecoveryReport | undefined {
  if (scan.validEnd === data.length && !scan.skipped.length) return undefined;
  return {
    repo,
    cutBytes: data.length - scan.validEnd,
    ...(preservedAt ? { preservedAt } : {}),
    skipped: scan.skipped,
  };
}

/** An opened repository log. */
export interface RepoLog {
  /** The log's bytes at open time (only intact records are referenced by `frames`). */
  readonly data: Uint8Array;
  /** Payload start/end offsets into `data`, two numbers per record. */
  readonly frames: readonly number[];
  /** Set when the log was damaged and repaired on open. */
  readonly recovery?: RecoveryReport;
  /**
   * Reads bytes `[start, end)` of the log as it was at open (offsets from `frames`),
   * synchronously, also after {@link RepoLog.releaseData}. Lets a repository keep only
   * the records it needs in memory and read older history on demand. Optional: without
   * it (or without `releaseData`) callers keep `data`.
   */
  read?(start: number, end: number): Uint8Array;
  /**
   * Drops the log's references to `data` and `frames` (both read as empty from then on)
   * so they can be garbage-collected; `read` still serves every range of the open-time
   * log.
   */
  releaseData?(): void;
  /** Buffers one framed record for writing. */
  append(frame: Uint8Array): void;
  /** Resolves when every record appended before the call is durable. */
  flush(): Promise<void>;
  /** Flushes and releases the log. */
  close(): Promise<void>;
}

/** A database's storage. */
export interface Storage {
  /** Opens (creating if needed) a repository's log. */
  openLog(repo: RepoPath): Promise<RepoLog>;
  /**
   * Opens a log synchronously, when the storage can (memory, files). The database uses it
   * to reopen a repository it closed automatically, so items keep working.
   */
  openLogSync?(repo: RepoPath): RepoLog;
  /**
   * Replaces a repository's whole log atomically (garbage collection): after a crash at
   * any point the log is either the old or the new one, never a mix.
   */
  replaceLog?(repo: RepoPath, frames: readonly Uint8Array[]): Promise<void>;
  /** Repositories that have a log. */
  listRepos(): Promise<RepoPath[]>;
  /** Reads a metadata blob, or null when absent. */
  readMeta(name: string): Promise<Uint8Array | null>;
  /** Replaces a metadata blob atomically. */
  writeMeta(name: string, bytes: Uint8Array): Promise<void>;
  /** Releases the storage (logs must be closed first). */
  close(): Promise<void>;
}
