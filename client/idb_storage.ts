/**
 * IndexedDB storage for browsers, with the same record format as the file storage: each
 * repository's log is the concatenation of its append chunks (each chunk holds whole
 * framed records), so open = read chunks in order → `scanFrames` → cut a torn tail.
 * Chunks use auto-increment keys and each is one readwrite transaction, which IndexedDB
 * runs one at a time per object store across every connection: tabs appending to one log
 * never interleave inside a record, and the keys give every chunk a global order. Each
 * open log remembers the highest chunk key it has applied, so a tab can read just the
 * chunks other tabs wrote since ({@link IdbStorage.readTail}; see tab_channel.ts).
 * Metadata blobs (and the session's non-extractable CryptoKey, which structured clone
 * stores as is) live in a second object store.
 *
 * @module
 */

import type { RepoPath } from "../lib/path.ts";
import { scanFrames, type ScanResult } from "../lib/storage/frames.ts";
import { yieldToEventLoop } from "../lib/query/yield.ts";
import {
  recoveryOf,
  type RecoveryReport,
  type RepoLog,
  type Storage,
} from "../lib/storage/storage.ts";
import { concatBytes } from "../lib/encoding/bytes.ts";

/** Version of the IndexedDB schema below. */
const IDB_VERSION = 1;
const CHUNKS = "chunks";
const META = "meta";
const BY_REPO = "repo";

interface Chunk {
  readonly repo: RepoPath;
  readonly bytes: Uint8Array;
}

/** Resolves an IDBRequest. */
function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Resolves when a transaction commits. */
function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });
}

/** Milliseconds of checksumming between two yields while a log opens. */
const OPEN_SLICE_MS = 8;

/**
 * `scanFrames` over the concatenation of `chunks`, one chunk at a time (each holds whole
 * records, so a damaged one resynchronises at the next chunk, as a scan of the whole
 * would), yielding to the event loop every {@link OPEN_SLICE_MS}: opening a large log
 * is no long task.
 */
async function scanChunks(chunks: readonly Uint8Array[]): Promise<ScanResult> {
  const frames: number[] = [];
  const skipped: ScanResult["skipped"][number][] = [];
  let offset = 0, validEnd = 0;
  const total = chunks.reduce((n, c) => n + c.length, 0);
  let sliceStart = performance.now();
  for (const bytes of chunks) {
    const part = scanFrames(bytes);
    for (const f of part.frames) frames.push(offset + f);
    for (const d of part.skipped) {
      skipped.push({ start: offset + d.start, end: offset + d.end });
    }
    if (part.frames.length) validEnd = offset + part.validEnd;
    if (part.validEnd < bytes.length && offset + bytes.length < total) {
      // Damage at the end of a chunk that is not the last: skipped up to the next one.
      skipped.push({
        start: offset + part.validEnd,
        end: offset + bytes.length,
      });
    }
    offset += bytes.length;
    if (performance.now() - sliceStart > OPEN_SLICE_MS) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
  return { frames, validEnd, skipped };
}

/** The record payloads of concatenated chunks (whole records), copied out. */
function payloadsOf(data: Uint8Array): Uint8Array[] {
  const { frames } = scanFrames(data);
  const out: Uint8Array[] = [];
  for (let i = 0; i < frames.length; i += 2) {
    out.push(data.slice(frames[i], frames[i + 1]));
  }
  return out;
}

class IdbLog implements RepoLog {
  /** Highest chunk key whose records this log holds (read at open or in a tail). */
  seenKey: number;
  /** Keys of chunks this log wrote above `seenKey` (a tail read skips them). */
  readonly ownKeys: Set<number> = new Set();
  #pending: Uint8Array[] = [];
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  #scheduled = false;
  constructor(
    private readonly owner: IdbStorage,
    private readonly repo: RepoPath,
    readonly data: Uint8Array,
    readonly frames: readonly number[],
    readonly recovery: RecoveryReport | undefined,
    seenKey: number,
  ) {
    this.seenKey = seenKey;
  }

  append(frame: Uint8Array): void {
    if (this.#closed) throw new Error(`Log of ${this.repo} is closed`);
    this.#pending.push(frame);
    // Group the appends of one task into one transaction, written without waiting for
    // an explicit flush (like the file storage), so a reload loses nothing written.
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        this.flush().catch((e) =>
          console.error(`capra: cannot write ${this.repo}:`, e)
        );
      }, 0);
    }
  }

  flush(): Promise<void> {
    if (this.#pending.length) {
      const bytes = concatBytes(this.#pending);
      this.#pending = [];
      // Chunks are written in order: each waits for the previous one.
      this.#writing = this.#writing.then(async () => {
        const key = await this.owner.appendChunk(this.repo, bytes);
        if (key > this.seenKey) this.ownKeys.add(key);
      });
    }
    return this.#writing;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      this.owner.logClosed(this.repo, this);
    }
  }
}

const byDatabase = new WeakMap<object, IdbStorage>();

/** Storage in one IndexedDB database. */
export class IdbStorage implements Storage {
  #closed = false;
  /** Deleted (logout / clear): later appends are dropped instead of failing. */
  #discarded = false;
  /** Open logs, and repositories whose log is being opened. */
  readonly #logs = new Map<RepoPath, IdbLog>();
  readonly #opening = new Map<RepoPath, number>();
  /**
   * Called when another tab deletes or upgrades this database: the connection is closed
   * at once so that tab is not blocked (logout / clear with many tabs open).
   */
  onClosedElsewhere: (() => void) | null = null;
  /** Called once a chunk of `repo` is committed (tabs announce it to each other). */
  onAppended: ((repo: RepoPath) => void) | null = null;

  private constructor(
    private readonly db: IDBDatabase,
    readonly name: string,
  ) {
    db.onversionchange = () => {
      this.discard();
      this.onClosedElsewhere?.();
    };
  }

  /**
   * Closes the connection for a deletion (logout / clear): unwritten appends are dropped,
   * later ones are ignored, and nothing blocks `indexedDB.deleteDatabase`.
   */
  discard(): void {
    this.#discarded = true;
    if (!this.#closed) {
      this.#closed = true;
      this.db.close();
    }
  }

  /** True once {@link discard}ed (deleted here or in another tab). */
  get discarded(): boolean {
    return this.#discarded;
  }

  /** True while a log of `repo` is open or being opened in this storage. */
  hasOpenLog(repo: string): boolean {
    return this.#logs.has(repo as RepoPath) ||
      this.#opening.has(repo as RepoPath);
  }

  /** Repositories with an open log. */
  openRepos(): RepoPath[] {
    return [...this.#logs.keys()];
  }

  /** @internal */
  logClosed(repo: RepoPath, log: IdbLog): void {
    if (this.#logs.get(repo) === log) this.#logs.delete(repo);
  }

  /** The storage of a database opened by openBrowserDatabase, if any. */
  static of(db: object): IdbStorage | undefined {
    return byDatabase.get(db);
  }

  /** @internal Records that `db` runs on this storage (see {@link IdbStorage.of}). */
  attach(db: object): void {
    byDatabase.set(db, this);
  }

  /** Opens (creating if needed) the IndexedDB database `name`. */
  static async open(
    name: string,
    factory: IDBFactory = indexedDB,
  ): Promise<IdbStorage> {
    const req = factory.open(name, IDB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(CHUNKS)) {
        const chunks = db.createObjectStore(CHUNKS, { autoIncrement: true });
        chunks.createIndex(BY_REPO, BY_REPO);
      }
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    const db = await done(req);
    return new IdbStorage(db, name);
  }

  #tx(stores: string[], mode: IDBTransactionMode): IDBTransaction {
    if (this.#closed) throw new Error(`Storage "${this.name}" is closed`);
    return this.db.transaction(stores, mode, { durability: "strict" });
  }

  /**
   * @internal Appends one chunk (whole records) to a repository's log; resolves with its
   * key once committed (-1 when the database was deleted: the chunk is dropped).
   */
  async appendChunk(repo: RepoPath, bytes: Uint8Array): Promise<number> {
    if (this.#discarded) return -1;
    const tx = this.#tx([CHUNKS], "readwrite");
    const key = done(
      tx.objectStore(CHUNKS).add({ repo, bytes } satisfies Chunk),
    );
    await committed(tx);
    this.onAppended?.(repo);
    return await key as number;
  }

  async openLog(repo: RepoPath): Promise<RepoLog> {
    this.#opening.set(repo, (this.#opening.get(repo) ?? 0) + 1);
    try {
      const log = await this.#openLog(repo);
      this.#logs.set(repo, log);
      return log;
    } finally {
      const n = this.#opening.get(repo)! - 1;
      if (n) this.#opening.set(repo, n);
      else this.#opening.delete(repo);
    }
  }

  async #openLog(repo: RepoPath): Promise<IdbLog> {
    const tx = this.#tx([CHUNKS], "readonly");
    const index = tx.objectStore(CHUNKS).index(BY_REPO);
    const [chunks, keys] = await Promise.all([
      done(index.getAll(repo)) as Promise<Chunk[]>,
      done(index.getAllKeys(repo)) as Promise<IDBValidKey[]>,
    ]);
    let seenKey = 0;
    for (const k of keys) seenKey = Math.max(seenKey, k as number);
    const data = concatBytes(chunks.map((c) => c.bytes));
    const scan = await scanChunks(chunks.map((c) => c.bytes));
    const recovery = recoveryOf(repo, data, scan);
    if (recovery) {
      if (scan.validEnd < data.length) {
        seenKey = await this.#replaceLog(repo, data.slice(0, scan.validEnd));
      }
    }
    return new IdbLog(this, repo, data, scan.frames, recovery, seenKey);
  }

  /**
   * Replaces a log by one chunk in one transaction (repair of a torn tail); resolves
   * with the new chunk's key.
   */
  async #replaceLog(repo: RepoPath, bytes: Uint8Array): Promise<number> {
    const tx = this.#tx([CHUNKS], "readwrite");
    const store = tx.objectStore(CHUNKS);
    const keys = await done(store.index(BY_REPO).getAllKeys(repo));
    for (const k of keys) store.delete(k);
    const key = bytes.length
      ? done(store.add({ repo, bytes } satisfies Chunk))
      : Promise.resolve(0);
    await committed(tx);
    return await key as number;
  }

  /**
   * The record payloads (`[kind][body]`) that other writers (tabs) appended to an open
   * log since this log last read or opened it, in log order; advances the log past them.
   * Empty when the log is not open here.
   */
  async readTail(repo: string): Promise<Uint8Array[]> {
    const log = this.#logs.get(repo as RepoPath);
    if (!log || this.#closed) return [];
    const from = log.seenKey;
    const tx = this.#tx([CHUNKS], "readonly");
    const index = tx.objectStore(CHUNKS).index(BY_REPO);
    const found: Uint8Array[] = [];
    let last = from;
    await new Promise<void>((resolve, reject) => {
      const req = index.openCursor(IDBKeyRange.only(repo));
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return resolve();
        const key = cursor.primaryKey as number;
        // Jump straight past what this log already holds.
        if (key <= from) return cursor.continuePrimaryKey(repo, from + 1);
        last = key;
        if (!log.ownKeys.has(key)) found.push((cursor.value as Chunk).bytes);
        cursor.continue();
      };
    });
    if (last > log.seenKey) log.seenKey = last;
    for (const k of log.ownKeys) if (k <= log.seenKey) log.ownKeys.delete(k);
    return payloadsOf(concatBytes(found));
  }

  /**
   * The highest chunk key of an open log such that this log holds every chunk of the
   * repository up to it (what it read at open or in a tail, and what it wrote itself);
   * 0 when the log is not open here. Everything up to it is in this tab's replica.
   */
  async heldThrough(repo: string): Promise<number> {
    const log = this.#logs.get(repo as RepoPath);
    if (!log || this.#closed) return 0;
    const tx = this.#tx([CHUNKS], "readonly");
    const keys = await done(
      tx.objectStore(CHUNKS).index(BY_REPO).getAllKeys(IDBKeyRange.only(repo)),
    ) as number[];
    let held = log.seenKey;
    for (const k of keys) {
      if (k <= held) continue;
      if (!log.ownKeys.has(k)) break; // another writer's chunk, not read yet
      held = k;
    }
    return held;
  }

  /**
   * The record payloads (`[kind][body]`) of a repository's chunks with a key above
   * `afterKey`, in log order (read-only: no log state changes).
   */
  async readChunksAfter(repo: string, afterKey: number): Promise<Uint8Array[]> {
    if (this.#closed) return [];
    const tx = this.#tx([CHUNKS], "readonly");
    const index = tx.objectStore(CHUNKS).index(BY_REPO);
    const found: Uint8Array[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = index.openCursor(IDBKeyRange.only(repo));
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return resolve();
        const key = cursor.primaryKey as number;
        if (key <= afterKey) {
          return cursor.continuePrimaryKey(repo, afterKey + 1);
        }
        found.push((cursor.value as Chunk).bytes);
        cursor.continue();
      };
    });
    return payloadsOf(concatBytes(found));
  }

  /** @internal Raw append, for tests that damage a log. */
  async appendRaw(repo: RepoPath, bytes: Uint8Array): Promise<void> {
    await this.appendChunk(repo, bytes);
  }

  async listRepos(): Promise<RepoPath[]> {
    const tx = this.#tx([CHUNKS], "readonly");
    const index = tx.objectStore(CHUNKS).index(BY_REPO);
    const out: RepoPath[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = index.openKeyCursor(null, "nextunique");
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const cursor = req.result;
        if (!cursor) return resolve();
        out.push(cursor.key as RepoPath);
        cursor.continue();
      };
    });
    return out.sort();
  }

  /** Reads any structured-clone value stored under `name` (e.g. a CryptoKey pair). */
  async readValue<T>(name: string): Promise<T | undefined> {
    const tx = this.#tx([META], "readonly");
    return await done(tx.objectStore(META).get(name)) as T | undefined;
  }

  /** Stores a structured-clone value under `name`, atomically. */
  async writeValue(name: string, value: unknown): Promise<void> {
    const tx = this.#tx([META], "readwrite");
    tx.objectStore(META).put(value, name);
    await committed(tx);
  }

  async readMeta(name: string): Promise<Uint8Array | null> {
    const v = await this.readValue<unknown>(name);
    return v instanceof Uint8Array ? v.slice() : null;
  }

  writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    return this.writeValue(name, bytes.slice());
  }

  /** Deletes every log and metadata value (logout / clear). */
  async clear(): Promise<void> {
    const tx = this.#tx([CHUNKS, META], "readwrite");
    tx.objectStore(CHUNKS).clear();
    tx.objectStore(META).clear();
    await committed(tx);
  }

  close(): Promise<void> {
    this.onAppended = null;
    if (!this.#closed) {
      this.#closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}
