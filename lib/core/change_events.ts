/**
 * Change events of a repository: listeners of every item change (live queries) and of
 * single items, and their hand-over to the repository that replaces this one when garbage
 * collection rewrote its log, so live queries and item listeners keep working.
 *
 * @module
 */

import type { ChangeListener, ItemChange, ItemEntry } from "./item_entry.ts";

/** Listeners of one repository's changes. */
export class ChangeEvents {
  readonly #listeners = new Set<ChangeListener>();
  #itemListeners = 0;
  #successor: ChangeEvents | null = null;

  constructor(
    /** Calls a listener, reporting (not propagating) its exceptions. */
    private readonly safeCall: <A>(fn: (arg: A) => void, arg: A) => void,
  ) {}

  /** Number of repository-wide listeners. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** True while any listener (repository-wide or of an item) is registered. */
  get listened(): boolean {
    return this.#listeners.size > 0 || this.#itemListeners > 0;
  }

  /** Listens to every item change; returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    // After a compaction the listener lives on in the successor's events.
    return () => void this.#current().#listeners.delete(listener);
  }

  /** Item listener bookkeeping (item listeners live on their entries). */
  itemListenerAdded(delta: 1 | -1): void {
    this.#itemListeners += delta;
  }

  /** Tells the item's listeners, then the repository-wide ones, that `e` changed. */
  emit(e: ItemEntry, local: boolean): void {
    const change: ItemChange = { path: e.path, key: e.key, local };
    for (const l of [...(e.listeners ?? [])]) this.safeCall(l, change);
    for (const l of [...this.#listeners]) this.safeCall(l, change);
  }

  /**
   * Takes over the listeners of `old` and of its entries (`entryFor` gives this
   * repository's entry of a key).
   */
  adopt(
    old: ChangeEvents,
    oldEntries: Iterable<ItemEntry>,
    entryFor: (key: string) => ItemEntry,
  ): void {
    old.#successor = this;
    for (const l of old.#listeners) this.#listeners.add(l);
    old.#listeners.clear();
    for (const e of oldEntries) {
      if (!e.listeners) continue;
      const mine = entryFor(e.key);
      mine.listeners ??= new Set();
      for (const l of e.listeners) mine.listeners.add(l);
      e.listeners = null;
    }
    this.#itemListeners += old.#itemListeners;
    old.#itemListeners = 0;
  }

  #current(): ChangeEvents {
    return this.#successor ? this.#successor.#current() : this;
  }
}
