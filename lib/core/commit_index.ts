/**
 * The sync index of a repository: which item every commit id belongs to, and the set of
 * signed commit ids offered to peers (an {@link IdSet}, what reconciliation compares).
 * Both are built on first use (sync and ingest need them; plain reads never do) and then
 * kept current as commits are added.
 *
 * @module
 */

import { type Commit, type CommitId, commitIdBytes } from "../commit/commit.ts";
import { IdSet } from "../idset/id_set.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { ItemEntry } from "./item_entry.ts";
import type { ItemGraph } from "./item_graph.ts";
import { commitPayload } from "./log_writer.ts";

/** Commit id → item entry, and the set of signed ids peers reconcile against. */
export class CommitIndex {
  #index: Map<CommitId, ItemEntry> | null = null;
  #idSet: IdSet | null = null;

  constructor(
    private readonly history: HistoryLoader,
    private readonly entries: () => Iterable<ItemEntry>,
    /** Commits collected in place: stored, but no longer offered to peers. */
    private readonly collected: ReadonlySet<CommitId>,
    /** Throws when the repository is closed (listing its ids needs it open). */
    private readonly checkOpen: () => void,
  ) {}

  /** Index of every commit id (loads every item's whole history on first use). */
  map(): Map<CommitId, ItemEntry> {
    if (this.#index) return this.#index;
    const index = new Map<CommitId, ItemEntry>();
    this.history.loadAll(this.entries());
    for (const e of this.entries()) {
      for (const id of this.history.fullGraphOf(e).nodes.keys()) {
        index.set(id, e);
      }
    }
    return this.#index = index;
  }

  /** A commit by id (decoded on demand). */
  commitOf(id: CommitId): Commit | undefined {
    const e = this.map().get(id);
    return e && this.history.graphOf(e).nodes.get(id)?.commit;
  }

  /** The stored record payload (`[kind][sig][commit]`) of a signed commit. */
  commitRecord(id: CommitId): Uint8Array | undefined {
    const e = this.map().get(id);
    const n = e?.graph?.nodes.get(id);
    return n?.sig ? commitPayload(n) : undefined;
  }

  /** Ids of every signed commit offered to peers (collected ones excepted). */
  commitIds(): CommitId[] {
    this.checkOpen();
    const out: CommitId[] = [];
    const collected = this.collected;
    for (const [id, e] of this.map()) {
      if (e.graph!.nodes.get(id)?.sig && !collected.has(id)) out.push(id);
    }
    return out;
  }

  /** The set of signed commit ids, for reconciliation (built on first use). */
  syncSet(): IdSet {
    if (this.#idSet) return this.#idSet;
    const set = new IdSet();
    for (const id of this.commitIds()) set.add(commitIdBytes(id));
    return this.#idSet = set;
  }

  /** Notes a commit added to entry `e` (if the index was built). */
  added(id: CommitId, e: ItemEntry): void {
    this.#index?.set(id, e);
  }

  /** Notes that commit `id` is now signed and stored: peers may be offered it. */
  signed(idBytes: Uint8Array): void {
    this.#idSet?.add(idBytes);
  }

  /** Forgets a commit the graph rejected. */
  removed(id: CommitId): void {
    this.#index?.delete(id);
  }

  /** The ids offered to peers changed other than by additions: rebuild the set on next use. */
  invalidateSyncSet(): void {
    this.#idSet = null;
  }

  /** Indexes every commit of an item whose whole history was just loaded. */
  historyLoaded(e: ItemEntry, g: ItemGraph): void {
    const index = this.#index;
    if (index) { for (const id of g.nodes.keys()) index.set(id, e); }
  }
}
