/**
 * The item table of a repository: one entry per item key, and item values. A value is
 * computed once from the item's heads and cached until a commit changes them; an item with
 * one stored commit is read straight from its record, without building a graph.
 *
 * @module
 */

import { decodeStoredBody } from "../commit/commit.ts";
import type { ItemState } from "../merge/merge.ts";
import { joinItemPath, type RepoPath } from "../path.ts";
import type { SchemaRegistry } from "../schema/schema.ts";
import { ItemEntry } from "./item_entry.ts";
import { decodeItemState } from "./item_state.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { LogBytes } from "./log_bytes.ts";

/** The entries and values of one repository's items. */
export class ItemTable {
  constructor(
    private readonly path: RepoPath,
    /** Entries by key, in insertion order (the log index fills it at open). */
    private readonly map: Map<string, ItemEntry>,
    private readonly bytes: LogBytes,
    private readonly history: HistoryLoader,
    private readonly registry: SchemaRegistry,
  ) {}

  /** Number of entries (deleted items included). */
  get size(): number {
    return this.map.size;
  }

  /** The entry of an item key, or undefined. */
  entry(key: string): ItemEntry | undefined {
    return this.map.get(key);
  }

  /** Every entry in insertion order; entries added while iterating are visited. */
  entries(): IterableIterator<ItemEntry> {
    return this.map.values();
  }

  /** Creates or returns the entry for a key (validated when new). */
  ensureEntry(key: string): ItemEntry {
    let e = this.map.get(key);
    if (!e) {
      joinItemPath(this.path, key); // validates the key
      e = new ItemEntry(key, this.path);
      e.graph = this.history.newGraph();
      this.map.set(key, e);
    }
    return e;
  }

  /** The current value of an entry (undefined when it has no commits). */
  valueOf(e: ItemEntry): ItemState | undefined {
    if (e.value !== null) return e.value;
    if (
      e.graph === null && e.start >= 0 && e.more === null && e.hist === null
    ) {
      // One stored commit: its state is the value; no graph or id needed yet.
      try {
        const bytes = this.bytes;
        const buf = bytes.at(e.start, e.end), o = e.start - bytes.shift;
        const { schema, body } = decodeStoredBody(
          buf,
          o + 65,
          o + e.end - e.start,
        );
        if (body.kind === "full") {
          return e.value = decodeItemState(
            this.registry,
            schema,
            body,
            e.path,
          );
        }
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
      }
    }
    let g = this.history.graphOf(e);
    // Several heads merge over their common ancestor, which may be old history.
    if (g.heads.length > 1 && e.hist) g = this.history.fullGraphOf(e);
    return e.value = g.value();
  }

  /** True when the item exists and is not deleted. */
  isLive(e: ItemEntry): boolean {
    // Fast path: an unresolved single-commit item stores its deleted flag as the last byte.
    if (
      e.value === null && e.graph === null && e.more === null &&
      e.start >= 0 && e.hist === null
    ) {
      const buf = this.bytes.at(e.start, e.end);
      return buf[e.end - 1 - this.bytes.shift] === 0xc2;
    }
    const v = this.valueOf(e);
    return v !== undefined && !v.deleted;
  }

  /**
   * Commits decoded (in graphs) and left undecoded (lazy history), and a rough estimate
   * of the bytes this bookkeeping holds (160 per entry, 400 per decoded commit).
   */
  usage(): {
    decodedCommits: number;
    lazyCommits: number;
    bookkeepingBytes: number;
  } {
    let decoded = 0, lazy = 0, lazyBytes = 0;
    for (const e of this.map.values()) {
      if (e.graph) decoded += e.graph.nodes.size;
      if (e.hist) {
        lazy += e.hist.records.length / 2;
        lazyBytes += e.hist.records.byteLength;
      }
    }
    return {
      decodedCommits: decoded,
      lazyCommits: lazy,
      bookkeepingBytes: this.map.size * 160 + decoded * 400 + lazyBytes,
    };
  }

  /** Keys of the items (deleted items only when asked). */
  keys(includeDeleted: boolean): string[] {
    const out: string[] = [];
    for (const e of this.map.values()) {
      if (includeDeleted ? this.valueOf(e) !== undefined : this.isLive(e)) {
        out.push(e.key);
      }
    }
    return out;
  }

  /** Number of items that are not deleted. */
  count(): number {
    let n = 0;
    for (const e of this.map.values()) if (this.isLive(e)) n++;
    return n;
  }
}
