/**
 * IndexedDB storage for browsers, with the same record format as the file storage: each
 * repository's log is the concatenation of its append chunks (each chunk holds whole
 * framed records), so open = read chunks in order → `scanFrames` → cut a torn tail.
 * Chunks use auto-increment keys, so several tabs appending to one log never collide.
 * Metadata blobs (and the session's non-extractable CryptoKey, which structured clone
 * stores as is) live in a second object store.
 *
 * @module
 */

import type { RepoPath } from "../lib/path.ts";
import { scanFrames } from "../lib/storage/frames.ts";
import type {
  RecoveryReport,
  RepoLog,
  Storage,
} from "../lib/storage/storage.ts";

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

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

class IdbLog implements RepoLog {
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
  ) {}

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
      const bytes = concat(this.#pending);
      this.#pending = [];
      // Chunks are written in order: each waits for the previous one.
      this.#writing = this.#writing.then(() =>
        this.owner.appendChunk(this.repo, bytes)
      );
    }
    return this.#writing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }
}

/** Storage in one IndexedDB database. */
export class IdbStorage implements Storage {
  #closed = false;
  /**
   * Called when another tab deletes or upgrades this database: the connection is closed
   * at once so that tab is not blocked (logout / clear with many tabs open).
   */
  onClosedElsewhere: (() => void) | null = null;

  private constructor(
    private readonly db: IDBDatabase,
    readonly name: string,
  ) {
    db.onversionchange = () => {
      this.#closed = true;
      db.close();
      this.onClosedElsewhere?.();
    };
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

  /** @internal Appends one chunk (whole records) to a repository's log. */
  async appendChunk(repo: RepoPath, bytes: Uint8Array): Promise<void> {
    const tx = this.#tx([CHUNKS], "readwrite");
    tx.objectStore(CHUNKS).add({ repo, bytes } satisfies Chunk);
    await committed(tx);
  }

  async openLog(repo: RepoPath): Promise<RepoLog> {
    const tx = this.#tx([CHUNKS], "readonly");
    const chunks = await done(
      tx.objectStore(CHUNKS).index(BY_REPO).getAll(repo),
    ) as Chunk[];
    const data = concat(chunks.map((c) => c.bytes));
    const scan = scanFrames(data);
    let recovery: RecoveryReport | undefined;
    if (scan.validEnd < data.length || scan.skipped.length) {
      recovery = {
        repo,
        cutBytes: data.length - scan.validEnd,
        skipped: scan.skipped,
      };
      if (scan.validEnd < data.length) {
        await this.#replaceLog(repo, data.slice(0, scan.validEnd));
      }
    }
    return new IdbLog(this, repo, data, scan.frames, recovery);
  }

  /** Replaces a log by one chunk in one transaction (repair of a torn tail). */
  async #replaceLog(repo: RepoPath, bytes: Uint8Array): Promise<void> {
    const tx = this.#tx([CHUNKS], "readwrite");
    const store = tx.objectStore(CHUNKS);
    const keys = await done(store.index(BY_REPO).getAllKeys(repo));
    for (const k of keys) store.delete(k);
    if (bytes.length) store.add({ repo, bytes } satisfies Chunk);
    await committed(tx);
  }

  /** @internal Raw append, for tests that damage a log. */
  appendRaw(repo: RepoPath, bytes: Uint8Array): Promise<void> {
    return this.appendChunk(repo, bytes);
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
    if (!this.#closed) {
      this.#closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}
