/**
 * A live item: read fields synchronously, write them (grouped into one commit per tick),
 * delete softly, and listen to changes from this replica or from peers.
 *
 * @module
 */

import type { CommitId } from "../commit/commit.ts";
import type { Packable } from "../encoding/msgpack.ts";
import { copyFieldValue, type FieldValue } from "../schema/field_types.ts";
import {
  defaultValue,
  type Schema,
  type SchemaId,
  schemaIdOf,
} from "../schema/schema.ts";
import type { ItemState, RawFields } from "../merge/merge.ts";
import type { ItemPath, RepoPath } from "../path.ts";
import type { ItemChange, ItemEntry } from "./item_entry.ts";
import type { CommitInfo } from "./item_history.ts";
import type { OpenRepository } from "./open_repository.ts";
import { checkFieldWrite } from "./write_check.ts";
import type {
  FieldDefs,
  FieldName,
  GetResult,
  KeepRequired,
  ObjectOf,
  SetArg,
  UntypedDefs,
  UpdateData,
} from "../schema/typed.ts";
import { encodeItemState } from "./item_state.ts";
import { SCHEMA_FINGERPRINT_FIELD } from "../schema/fingerprint.ts";

/**
 * An item's stored data in its raw (encoded) form: what `item.raw()` and `db.rawItem()`
 * give, also for an item this replica cannot read. Sets are sorted arrays, maps plain
 * objects, dates epoch milliseconds, as in commits.
 */
export interface RawItem {
  /** `/type/repo/item` */
  readonly path: ItemPath;
  /**
   * The schema id the data follows: the one it was written under when the item cannot
   * be read here, else the (newest registered) schema its value is upgraded to.
   */
  readonly schema: SchemaId;
  /** Every stored field, raw (fields this replica does not know included). */
  readonly data: RawFields;
  readonly deleted: boolean;
  /** Why the item cannot be read on this replica; absent when it can. */
  readonly unreadable?: string;
}

/** A deep copy of a raw value with plain objects (the caller may change it freely). */
function plainCopy(v: Packable): Packable {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(plainCopy);
  const out: Record<string, Packable> = {};
  for (const k of Object.keys(v)) {
    Object.defineProperty(out, k, {
      value: plainCopy((v as Record<string, Packable>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The raw form of a state (see {@link RawItem}). */
export function rawItemOf(path: ItemPath, s: ItemState): RawItem {
  const stored = encodeItemState(s);
  const data: Record<string, Packable> = {};
  for (const k of Object.keys(stored)) {
    if (k === SCHEMA_FINGERPRINT_FIELD) continue;
    // Defined, not assigned: a field named like a prototype member stays own data.
    Object.defineProperty(data, k, {
      value: plainCopy(stored[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return {
    path,
    schema: schemaIdOf(s.schema),
    data,
    deleted: s.deleted,
    ...(s.unreadable !== undefined ? { unreadable: s.unreadable } : {}),
  };
}

/** Constructs an item (set by the class: its constructor is private). */
let newItem: (repo: OpenRepository, entry: ItemEntry) => Item;

/** The handle of an entry: one per entry, created on first use. */
export function itemHandle<D extends FieldDefs = UntypedDefs>(
  repo: OpenRepository,
  entry: ItemEntry,
): Item<D> {
  if (!(entry.handle instanceof Item)) entry.handle = newItem(repo, entry);
  return entry.handle as Item<D>;
}

/**
 * A live item. `D` is its schema's field definitions when the schema was declared with
 * `defineSchema` (see lib/schema/typed.ts): `get`, `set` and `update` are then typed by
 * field; without it any field name goes and values are checked at run time only.
 *
 * @example
 * ```ts ignore
 * const todo = db.create("/todo/home", "todo", { text: "milk" });
 * todo.set("done", true);
 * const off = todo.onChange(() => console.log(todo.get("done")));
 * off();
 * ```
 */
export class Item<D extends FieldDefs = UntypedDefs> {
  #repo: OpenRepository;
  #entry: ItemEntry;

  /** Items come from `db.create()`, `db.item()`, `db.load()` and query results. */
  private constructor(repo: OpenRepository, entry: ItemEntry) {
    this.#repo = repo;
    this.#entry = entry;
  }

  static {
    newItem = (repo, entry) => new Item(repo, entry);
  }

  /** `/type/repo/item` */
  get path(): ItemPath {
    return this.#entry.path;
  }

  /** The item key (last path segment). */
  get key(): string {
    return this.#entry.key;
  }

  /** `/type/repo` */
  get repo(): RepoPath {
    return this.#repo.path;
  }

  /**
   * The repository, reopened transparently when the database closed it automatically
   * (idle or memory budget); an explicit close still makes the item unusable.
   */
  #live(): OpenRepository {
    if (this.#repo.closed && this.#repo.closeReason !== "explicit") {
      const repo = this.#repo.ctx.reopen(this.#repo.path);
      this.#entry = repo.items.entry(this.#entry.key) ??
        repo.items.ensureEntry(this.#entry.key);
      this.#repo = repo;
    }
    this.#repo.checkOpen();
    return this.#repo;
  }

  #anyState(): ItemState {
    this.#live();
    const v = this.#repo.items.valueOf(this.#entry);
    if (!v) throw new Error(`Item ${this.path} has no value`);
    return v;
  }

  /** The state, when this replica can read it (else a TypeError naming why). */
  #state(what = "read"): ItemState {
    const v = this.#anyState();
    if (v.unreadable !== undefined) {
      throw new TypeError(
        `Cannot ${what} ${this.path}: ${v.unreadable}; item.raw() gives its stored data`,
      );
    }
    return v;
  }

  /**
   * The schema the item's data follows (the newest registered version). Throws a
   * TypeError when the item cannot be read here ({@link Item.isReadable}).
   */
  get schema(): Schema {
    return this.#state().schema;
  }

  /**
   * The id of the schema the item's data follows, `"ns/version"`; for an item this
   * replica cannot read, the id it was written under. Never throws.
   */
  get schemaId(): SchemaId {
    return schemaIdOf(this.#anyState().schema);
  }

  /**
   * False when this replica cannot read the item: it was written under a schema that is
   * not registered here (a newer version, say) or its upgrade failed. Such an item is
   * kept, listed, counted and synced unchanged; queries leave it out; reading or writing
   * its fields throws a TypeError; {@link Item.raw} gives its stored data.
   */
  get isReadable(): boolean {
    return this.#anyState().unreadable === undefined;
  }

  /**
   * The item's stored data, raw, with its schema id: works for every item, also one this
   * replica cannot read. Includes fields the local schema does not declare.
   */
  raw(): RawItem {
    return rawItemOf(this.path, this.#anyState());
  }

  /** True once deleted (here or on a peer, unless a concurrent edit won). */
  get isDeleted(): boolean {
    return this.#anyState().deleted;
  }

  /** A field's value (its default when absent). Sets, maps and dates are copies. */
  get<K extends FieldName<D>>(field: K): GetResult<D, K> {
    const s = this.#state();
    const v = s.data[field];
    const def = s.schema.fields[field];
    const out = v === undefined
      ? (def ? defaultValue(def) : undefined)
      : def && typeof v === "object"
      ? copyFieldValue(def.type, v)
      : v;
    return out as GetResult<D, K>;
  }

  /** Sets one field; `undefined` removes an optional field. */
  set<K extends FieldName<D>>(field: K, value: SetArg<D, K>): void {
    this.update({ [field]: value } as UpdateData<D> & KeepRequired<D, never>);
  }

  /**
   * Sets several fields at once; nothing is written when any value is refused. Stored
   * fields the local schema does not know are kept unchanged.
   */
  update<C extends UpdateData<D>>(changes: C & KeepRequired<D, C>): void {
    const s = this.#state("write");
    if (changes === null || typeof changes !== "object") {
      throw new TypeError(
        `Cannot update ${this.path}: changes must be an object`,
      );
    }
    const data = { ...s.data };
    let extra = s.extra;
    for (const [field, value] of Object.entries(changes)) {
      const v = checkFieldWrite(this.path, s.schema, field, value);
      if (v === undefined) delete data[field];
      else data[field] = v;
      if (extra && Object.hasOwn(extra, field)) {
        // A stored value of another type: the written value replaces it.
        const rest: Record<string, RawFields[string]> = Object.create(null);
        for (const k in extra) if (k !== field) rest[k] = extra[k];
        extra = rest;
      }
    }
    this.#repo.writeLocal(
      this.#entry,
      extra
        ? { schema: s.schema, data, deleted: s.deleted, extra }
        : { schema: s.schema, data, deleted: s.deleted },
    );
  }

  /** Marks the item deleted (a concurrent edit on another replica wins over this). */
  delete(): void {
    const s = this.#state("delete");
    if (s.deleted) return;
    this.#repo.writeLocal(this.#entry, { ...s, deleted: true });
  }

  /** A plain copy of the data (defaults filled in). */
  toObject(): ObjectOf<D> {
    const s = this.#state();
    const out: Record<string, FieldValue> = {};
    for (const [name, def] of Object.entries(s.schema.fields)) {
      const v = s.data[name] ?? defaultValue(def);
      if (v !== undefined) out[name] = copyFieldValue(def.type, v);
    }
    return out as ObjectOf<D>;
  }

  /** Calls `listener` after every change of this item; returns an unsubscribe function. */
  onChange(listener: (item: Item<D>, change: ItemChange) => void): () => void {
    const repo = this.#live(); // a listener pins the repository: it stays open
    const e = this.#entry;
    const wrapped = (change: ItemChange) => listener(this, change);
    (e.listeners ??= new Set()).add(wrapped);
    repo.itemListenerAdded(1);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      // The listener may have moved to a successor repository (after compaction).
      const now = repo.current;
      const entry = now === repo ? e : now.items.entry(e.key);
      entry?.listeners?.delete(wrapped);
      if (entry?.listeners?.size === 0) entry.listeners = null;
      now.itemListenerAdded(-1);
    };
  }

  /** The item's commits, oldest first (a write made this tick included). */
  history(): CommitInfo[] {
    const repo = this.#live();
    repo.commitPending(this.#entry);
    return repo.history(this.key);
  }

  /**
   * The item as commit `id` of its history left it: every field with a value (defaults
   * filled in) and whether it was deleted; undefined when `id` is not in its history.
   */
  valueAt(id: string): { data: ObjectOf<D>; deleted: boolean } | undefined {
    const repo = this.#live();
    repo.commitPending(this.#entry);
    const st = repo.stateAt(this.key, id);
    if (!st) return undefined;
    const data: Record<string, FieldValue> = {};
    for (const [name, def] of Object.entries(st.schema.fields)) {
      const v = st.data[name] ?? defaultValue(def);
      if (v !== undefined) data[name] = copyFieldValue(def.type, v);
    }
    return { data: data as ObjectOf<D>, deleted: st.deleted };
  }

  /**
   * Brings back the version commit `id` left (an earlier state, or the losing side of
   * a merge) as a new commit on top of the current heads: its fields, without the ones
   * it did not have; a deleted item comes back. Throws a RangeError when `id` is not in
   * the item's history.
   */
  restore(id: string): void {
    const repo = this.#live();
    const old = repo.stateAt(this.key, id);
    if (!old) {
      throw new RangeError(
        `Cannot restore ${this.path}: commit ${id} is not in its history`,
      );
    }
    this.#state("restore"); // the item must still have a value, readable here
    if (old.unreadable !== undefined) {
      throw new TypeError(
        `Cannot restore ${this.path} to commit ${id}: ${old.unreadable}`,
      );
    }
    repo.writeLocal(
      this.#entry,
      old.extra
        ? {
          schema: old.schema,
          data: { ...old.data },
          deleted: false,
          extra: old.extra,
        }
        : { schema: old.schema, data: { ...old.data }, deleted: false },
    );
  }

  /** Current head commit ids. */
  get heads(): CommitId[] {
    this.#live();
    this.#repo.commitPending(this.#entry);
    return this.#repo.graphs.graphOf(this.#entry).heads.map((h) => h.commit.id);
  }
}
