/**
 * Byte residency of a repository's log: which of its stored bytes stay in memory. At open
 * the whole log is held; when a checkpoint leaves most history undecoded, only the records
 * reads need are copied into one compact buffer and the log's bytes are released. Any
 * other record is read back from storage when something needs it.
 *
 * @module
 */

import { type Commit, decodeCommit } from "../commit/commit.ts";
import type { RepoLog } from "../storage/storage.ts";
import type { CommitNode } from "./item_graph.ts";
import type { ItemEntry } from "./item_entry.ts";

/** The stored bytes of one repository log, held whole, in part, or read on demand. */
export class LogBytes {
  /** The open-time log bytes, while held (null: released; see #hot). */
  #data: Uint8Array | null;
  /** Copies of the records reads need, once `#data` was released. */
  #hot: Uint8Array | null = null;
  /** Sorted log offsets of the records in `#hot`, and their positions in it. */
  #hotStarts: Float64Array | null = null;
  #hotPos: Float64Array | null = null;
  /** Set by {@link LogBytes.at}: buffer index = log offset - shift. */
  shift = 0;
  #storageReads = 0;

  constructor(
    private readonly log: RepoLog,
    data: Uint8Array,
    /** Size of the log at open. */
    private readonly openSize: number,
  ) {
    this.#data = data;
  }

  /** Log bytes held in memory (the whole log, or only the records reads need). */
  get bytesInMemory(): number {
    return (this.#data?.length ?? 0) + (this.#hot?.length ?? 0);
  }

  /** Records read back from storage on demand since open. */
  get storageReads(): number {
    return this.#storageReads;
  }

  /**
   * When reads need only a small part of the log (the undecoded records of `entries`),
   * copies that part into one buffer and releases the log's bytes.
   */
  keepOnlyRecordsOf(entries: Iterable<ItemEntry>): void {
    const log = this.log, data = this.#data;
    if (!data || !log.read || !log.releaseData) return;
    const pairs: number[] = [];
    let bytes = 0;
    for (const e of entries) {
      if (e.start < 0) continue;
      pairs.push(e.start, e.end);
      bytes += e.end - e.start;
      const more = e.more;
      if (more) {
        for (let i = 0; i < more.length; i += 2) {
          pairs.push(more[i], more[i + 1]);
          bytes += more[i + 1] - more[i];
        }
      }
    }
    if (bytes * 2 > data.length) return;
    const n = pairs.length / 2;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      pairs[2 * a] - pairs[2 * b]
    );
    const hot = new Uint8Array(bytes);
    const starts = new Float64Array(n), pos = new Float64Array(n);
    let o = 0;
    for (let k = 0; k < n; k++) {
      const i = order[k], start = pairs[2 * i], end = pairs[2 * i + 1];
      hot.set(data.subarray(start, end), o);
      starts[k] = start;
      pos[k] = o;
      o += end - start;
    }
    this.#hot = hot;
    this.#hotStarts = starts;
    this.#hotPos = pos;
    this.#data = null;
    log.releaseData();
  }

  /**
   * A buffer holding the log bytes `[start, end)` of one record: the log itself, the
   * compact copy, or a read from storage. Sets `shift` (buffer index = offset - shift).
   */
  at(start: number, end: number): Uint8Array {
    if (this.#data) {
      this.shift = 0;
      return this.#data;
    }
    const starts = this.#hotStarts;
    if (starts) {
      let lo = 0, hi = starts.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1, v = starts[mid];
        if (v === start) {
          this.shift = start - this.#hotPos![mid];
          return this.#hot!;
        }
        if (v < start) lo = mid + 1;
        else hi = mid - 1;
      }
    }
    this.#storageReads++;
    this.shift = start;
    return this.log.read!(start, end);
  }

  /** Decodes the commit record stored at `[start, end)` (undefined when undecodable). */
  decodeRecord(start: number, end: number): CommitNode | undefined {
    const buf = this.at(start, end), o = start - this.shift;
    let commit: Commit;
    try {
      commit = decodeCommit(buf.subarray(o + 65, o + end - start));
    } catch {
      return undefined; // reported by `verify`
    }
    return { commit, sig: buf.subarray(o + 1, o + 65), at: start };
  }

  /**
   * Runs `fn` with the whole open-time log in memory, reading it back from storage in one
   * read (not one read per record) when its bytes were released.
   */
  withWholeLog(fn: () => void): void {
    const held = this.#data;
    if (!held) {
      this.#storageReads++;
      this.#data = this.log.read!(0, this.openSize);
    }
    try {
      fn();
    } finally {
      this.#data = held;
    }
  }
}
