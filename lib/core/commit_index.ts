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

/** Most received commits that wait for a missing dependency per repository. */
export const MAX_WAITING_COMMITS = 10_000;

/** Commit id → item entry, and the set of signed ids peers reconcile against. */
export class CommitIndex {
  #index: Map<CommitId, ItemEntry> | null = null;
  #idSet: IdSet | null = null;
  /**
   * Received commits waiting for a dependency, oldest first: outside the index and the
   * id set (never offered to peers), tracked only to bound their number.
   */
  readonly #waiting = new Map<CommitId, ItemEntry>();

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

  /**
   * Notes a received commit of entry `e` that waits for a dependency. Returns the
   * oldest waiting commits beyond {@link MAX_WAITING_COMMITS}, for the caller to drop.
   */
  waitingAdded(id: CommitId, e: ItemEntry): [CommitId, ItemEntry][] {
    this.#waiting.set(id, e);
    const over: [CommitId, ItemEntry][] = [];
    for (const entry of this.#waiting) {
      if (this.#waiting.size - over.length <= MAX_WAITING_COMMITS) break;
      over.push(entry);
    }
    return over;
  }

  /** Notes that a waiting commit completed, was refused or dropped. */
  waitingDone(id: CommitId): void {
    this.#waiting.delete(id);
  }

  /** The signature of a received commit that waits for a dependency, if any. */
  waitingSignature(id: CommitId): Uint8Array | null | undefined {
    return this.#waiting.get(id)?.graph?.waitingNode(id)?.sig;
  }

  /** Number of received commits waiting for a dependency. */
  get waitingCount(): number {
    return this.#waiting.size;
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
