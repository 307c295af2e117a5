/**
 * In-memory storage: the same framing and recovery as the file storage, kept in
 * process memory. Used for in-memory databases and tests; its contents survive closing
 * and reopening a database on the same instance.
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import { scanFrames } from "./frames.ts";
import { concatBytes } from "../encoding/bytes.ts";
import {
  recoveryOf,
  type RecoveryReport,
  type RepoLog,
  type Storage,
} from "./storage.ts";

const EMPTY = new Uint8Array(0);

class MemoryLog implements RepoLog {
  #pending: Uint8Array[] = [];
  #closed = false;
  #released = false;
  constructor(
    private readonly owner: MemoryStorage,
    private readonly repo: RepoPath,
    /** The open-time bytes (shared with the storage: no second copy). */
    private readonly base: Uint8Array,
    private readonly openFrames: readonly number[],
    readonly recovery: RecoveryReport | undefined,
  ) {}
  get data(): Uint8Array {
    return this.#released ? EMPTY : this.base;
  }
  get frames(): readonly number[] {
    return this.#released ? [] : this.openFrames;
  }
  read(start: number, end: number): Uint8Array {
    if (!(start >= 0 && start <= end && end <= this.base.length)) {
      throw new RangeError(
        `Cannot read [${start}, ${end}) of ${this.repo}: the log had ${this.base.length} bytes at open`,
      );
    }
    return this.base.subarray(start, end);
  }
  releaseData(): void {
    this.#released = true;
  }
  append(frame: Uint8Array): void {
    if (this.#closed) throw new Error(`Log of ${this.repo} is closed`);
    this.#pending.push(frame);
  }
  flush(): Promise<void> {
    if (this.#pending.length) {
      this.owner.appendBytes(this.repo, concatBytes(this.#pending));
      this.#pending = [];
    }
    return Promise.resolve();
  }
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }
}

/** Storage kept in memory. */
export class MemoryStorage implements Storage {
  readonly #logs = new Map<RepoPath, Uint8Array[]>();
  readonly #meta = new Map<string, Uint8Array>();

  /** The bytes of a repository's log (for tests and tools). */
  bytesOf(repo: RepoPath): Uint8Array {
    return concatBytes(this.#logs.get(repo) ?? []);
  }

  /** Replaces a repository's log bytes (for tests that damage logs). */
  setBytes(repo: RepoPath, bytes: Uint8Array): void {
    this.#logs.set(repo, [bytes.slice()]);
  }

  /** @internal */
  appendBytes(repo: RepoPath, bytes: Uint8Array): void {
    const chunks = this.#logs.get(repo) ?? [];
    chunks.push(bytes);
    this.#logs.set(repo, chunks);
  }

  openLog(repo: RepoPath): Promise<RepoLog> {
    return Promise.resolve(this.openLogSync(repo));
  }

  openLogSync(repo: RepoPath): RepoLog {
    const data = this.bytesOf(repo);
    const scan = scanFrames(data);
    const recovery = recoveryOf(repo, data, scan);
    // The log and the storage share the open-time bytes (appends add chunks).
    const valid = data.subarray(0, scan.validEnd);
    this.#logs.set(repo, valid.length ? [valid] : []);
    return new MemoryLog(this, repo, data, scan.frames, recovery);
  }

  replaceLog(repo: RepoPath, frames: readonly Uint8Array[]): Promise<void> {
    this.setBytes(repo, concatBytes(frames));
    return Promise.resolve();
  }

  listRepos(): Promise<RepoPath[]> {
    return Promise.resolve([...this.#logs.keys()].sort());
  }

  readMeta(name: string): Promise<Uint8Array | null> {
    return Promise.resolve(this.#meta.get(name)?.slice() ?? null);
  }

  writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    this.#meta.set(name, bytes.slice());
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
