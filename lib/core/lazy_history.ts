/**
 * Lazy history: an item's commit graph is decoded from the log on first access, and with
 * a checkpoint only partly. The records the checkpoint named (heads and the snapshots they
 * are deltas of) are decoded for reads; the item's older records stay byte offsets until
 * something needs every commit: `history()`, a merge of several heads, a later commit whose
 * parent is old, sync and ingest (the commit index), compaction.
 *
 * @module
 */

import { type CommitId, commitIdBytes } from "../commit/commit.ts";
import { MsgpackReader } from "../encoding/msgpack.ts";
import type { SchemaRegistry } from "../schema/schema.ts";
import { type CommitNode, ItemGraph } from "./item_graph.ts";
import type { ItemEntry } from "./item_entry.ts";
import type { LogBytes } from "./log_bytes.ts";

/** Decodes item graphs from a log, as far as reads need or whole. */
export class HistoryLoader {
  constructor(
    private readonly bytes: LogBytes,
    private readonly registry: SchemaRegistry,
    /** Parents removed by garbage collection: treated as present. */
    readonly pruned: ReadonlySet<CommitId>,
    /** Called when an item's whole history was loaded into `graph`. */
    private readonly onFullyLoaded: (e: ItemEntry, graph: ItemGraph) => void,
  ) {}

  /** A new, empty graph for an item. */
  newGraph(): ItemGraph {
    return new ItemGraph(this.registry, this.pruned);
  }

  /**
   * Builds (once) and returns the commit graph of an entry. With lazy history the graph
   * holds what reads need (heads and their snapshots, later commits); use
   * {@link HistoryLoader.fullGraphOf} for every commit.
   */
  graphOf(e: ItemEntry): ItemGraph {
    if (e.graph) return e.graph;
    const g = this.newGraph();
    const loaded: CommitNode[] = [];
    const later: CommitNode[] = [];
    const named = e.hist?.named;
    let trusted = true;
    const locs = e.start < 0 ? [] : [e.start, e.end, ...(e.more ?? [])];
    for (let i = 0; i < locs.length; i += 2) {
      const prefix = named?.get(locs[i]);
      const node = this.bytes.decodeRecord(locs[i], locs[i + 1]);
      if (!node) {
        if (prefix !== undefined) trusted = false;
        continue;
      }
      if (prefix !== undefined && node.commit.id.startsWith(prefix)) {
        loaded.push(node);
      } else {
        if (prefix !== undefined) trusted = false;
        later.push(node);
      }
    }
    e.start = e.end = -1;
    e.more = null;
    if (e.hist) e.hist.named = null;
    if (!trusted) {
      // The checkpoint does not match the log (damage): load the history whole.
      for (const n of [...loaded, ...later]) g.add(n);
      e.graph = g;
      return this.fullGraphOf(e);
    }
    // Records the checkpoint named were complete: their ancestors are lazy history.
    if (loaded.length) g.addLoaded(loaded);
    for (const n of later) g.add(n);
    e.graph = g;
    // A later commit whose parents are not loaded (an old ancestor, say): load it all.
    if (e.hist && g.waitingCount > 0) return this.fullGraphOf(e);
    return g;
  }

  /** The commit graph of an entry with its whole history loaded. */
  fullGraphOf(e: ItemEntry): ItemGraph {
    const partial = e.graph ?? this.graphOf(e);
    if (!e.hist) return partial;
    const lazy = e.hist.records;
    e.hist = null;
    const g = this.newGraph();
    for (let i = 0; i < lazy.length; i += 2) {
      const node = this.bytes.decodeRecord(lazy[i], lazy[i + 1]);
      if (node) g.add(node);
    }
    for (const n of partial.nodes.values()) g.add(n);
    for (const n of partial.waitingNodes()) g.add(n);
    e.graph = g;
    this.onFullyLoaded(e, g);
    return g;
  }

  /**
   * Loads every item's whole history, reading the log back from storage in one read
   * (not one read per record) when its bytes were released.
   */
  loadAll(entries: Iterable<ItemEntry>): void {
    const all = [...entries];
    if (!all.some((e) => e.hist)) return;
    this.bytes.withWholeLog(() => {
      for (const e of all) this.fullGraphOf(e);
    });
  }

  /** Every item's whole graph (compaction reads all of them). */
  allGraphs(entries: Iterable<ItemEntry>): ItemGraph[] {
    const all = [...entries];
    this.loadAll(all);
    return all.map((e) => this.fullGraphOf(e));
  }

  /**
   * How many deltas use `base` as their snapshot: those in the graph plus those in lazy
   * history, which are stored after the snapshot (only those records are peeked).
   */
  deltasOn(e: ItemEntry, g: ItemGraph, base: CommitNode): number {
    const id = base.commit.id;
    const hist = e.hist;
    if (!hist) return g.deltasOn(id);
    const lazy = hist.records;
    if (hist.base !== id) {
      const want = commitIdBytes(id);
      const from = base.at ?? -1;
      let n = 0;
      for (let i = 0; i < lazy.length; i += 2) {
        const start = lazy[i], end = lazy[i + 1];
        if (start <= from) continue;
        const buf = this.bytes.at(start, end), o = start - this.bytes.shift;
        if (deltaBaseIs(buf, o + 65, o + end - start, want)) n++;
      }
      hist.base = id;
      hist.deltas = n;
    }
    return g.deltasOn(id) + hist.deltas;
  }
}

/** True when the commit bytes `[start, end)` are a delta on the snapshot `base`. */
function deltaBaseIs(
  bytes: Uint8Array,
  start: number,
  end: number,
  base: Uint8Array,
): boolean {
  try {
    const r = new MsgpackReader(bytes, start, end);
    if (r.readArrayHeader() !== 7) return false;
    for (let i = 0; i < 6; i++) r.skipValue();
    if (r.readArrayHeader() !== 5 || r.readNumber() !== 1) return false;
    const b = r.readBinary();
    if (b.length !== base.length) return false;
    for (let i = 0; i < b.length; i++) if (b[i] !== base[i]) return false;
    return true;
  } catch {
    return false;
  }
}
