/**
 * Deterministic N-way merge of an item's heads against their common ancestor.
 *
 * Heads are applied in `(ts, id)` order. Scalars (`string number boolean date`) are
 * last-writer-wins among the heads that changed them; `set` merges element-wise (an
 * element added by any head is added, one removed by any head is removed); `map` merges
 * key-wise with last-writer-wins per key; `text` merges character ranges; a field's or
 * the schema's own `merge(base, ours, theirs)` replaces the built-in rule. An edit beats
 * a concurrent delete. Fields the schema does not know (kept raw, see
 * {@link ItemState.extra}) are last-writer-wins on their raw encoded value. The result
 * depends only on the set of heads and their ancestor.
 *
 * @module
 */

import { encode, type Packable } from "../encoding/msgpack.ts";
import {
  copyFieldValue,
  decodeFieldValue,
  encodeFieldValue,
  type FieldType,
  type FieldValue,
  fieldValuesEqual,
  type MapValue,
  type SetElement,
} from "../schema/field_types.ts";
import type {
  FieldDef,
  ItemData,
  MergeFunction,
  Schema,
} from "../schema/schema.ts";
import { mergeText } from "./text.ts";

/** Stored field values in their encoded (raw) form, by field name. */
export type RawFields = Readonly<Record<string, Packable>>;

/** A decoded, upgraded item state. */
export interface ItemState {
  readonly schema: Schema;
  readonly data: ItemData;
  readonly deleted: boolean;
  /**
   * Stored fields this replica cannot read under `schema`, raw: fields it does not
   * declare (another replica registered more fields under the same id) or whose value is
   * not of the declared type. Writes and merges carry them through unchanged.
   */
  readonly extra?: RawFields;
  /**
   * Set when the item cannot be read here, with the reason (its schema is not registered,
   * or upgrading it failed). `schema` is then a placeholder without fields, `extra` holds
   * the whole stored data, and the item is read-only on this replica.
   */
  readonly unreadable?: string;
}

function mergeScalar(
  type: FieldType,
  base: FieldValue | undefined,
  values: readonly (FieldValue | undefined)[],
): FieldValue | undefined {
  let result = base;
  for (const v of values) {
    if (!fieldValuesEqual(type, v, base)) result = v;
  }
  return result;
}

function mergeSet(
  base: ReadonlySet<SetElement> | undefined,
  values: readonly (ReadonlySet<SetElement> | undefined)[],
): ReadonlySet<SetElement> | undefined {
  const empty = new Set<SetElement>();
  const b = base ?? empty;
  const out = new Set(b);
  let present = base !== undefined;
  for (const v of values) {
    if (v === undefined) continue;
    present = true;
    for (const e of v) if (!b.has(e)) out.add(e);
    for (const e of b) if (!v.has(e)) out.delete(e);
  }
  return present ? out : undefined;
}

const ABSENT = Symbol("absent");

function mergeMap(
  base: ReadonlyMap<string, MapValue> | undefined,
  values: readonly (ReadonlyMap<string, MapValue> | undefined)[],
): ReadonlyMap<string, MapValue> | undefined {
  const b = base ?? new Map<string, MapValue>();
  const keys = new Set(b.keys());
  for (const v of values) if (v) { for (const k of v.keys()) keys.add(k); }
  const out = new Map<string, MapValue>();
  for (const k of [...keys].sort()) {
    const bv = b.has(k) ? b.get(k)! : ABSENT;
    let result: MapValue | typeof ABSENT = bv;
    for (const v of values) {
      if (v === undefined) continue; // a head without the field did not touch its keys
      const hv = v.has(k) ? v.get(k)! : ABSENT;
      if (hv !== bv) result = hv;
    }
    if (result !== ABSENT) out.set(k, result);
  }
  if (base === undefined && values.every((v) => v === undefined)) {
    return undefined;
  }
  return out;
}

function mergeTextField(
  base: string | undefined,
  values: readonly (string | undefined)[],
): string | undefined {
  let result = base;
  const b = base ?? "";
  for (const v of values) {
    if (v === base) continue;
    if (v === undefined) {
      result = undefined;
      continue;
    }
    result = mergeText(b, result ?? "", v);
  }
  return result;
}

function foldCustom<T>(
  merge: MergeFunction<T>,
  base: T | undefined,
  values: readonly (T | undefined)[],
): T | undefined {
  let acc = values[0];
  for (let i = 1; i < values.length; i++) acc = merge(base, acc, values[i]);
  return acc;
}

function mergeField(
  def: FieldDef,
  base: FieldValue | undefined,
  values: readonly (FieldValue | undefined)[],
): FieldValue | undefined {
  if (def.merge) {
    return foldCustom(
      def.merge as unknown as MergeFunction<FieldValue>,
      base,
      values,
    );
  }
  switch (def.type) {
    case "set":
      return mergeSet(
        base as ReadonlySet<SetElement> | undefined,
        values as (ReadonlySet<SetElement> | undefined)[],
      );
    case "map":
      return mergeMap(
        base as ReadonlyMap<string, MapValue> | undefined,
        values as (ReadonlyMap<string, MapValue> | undefined)[],
      );
    case "text":
      return mergeTextField(
        base as string | undefined,
        values as (string | undefined)[],
      );
    default:
      return mergeScalar(def.type, base, values);
  }
}

/** True when two raw values encode to the same bytes. */
export function rawValuesEqual(
  a: Packable | undefined,
  b: Packable | undefined,
): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (typeof a !== "object" || typeof b !== "object") {
    return a !== a && b !== b; // NaN
  }
  if (a === null || b === null) return false;
  const ea = encode(a), eb = encode(b);
  if (ea.length !== eb.length) return false;
  for (let i = 0; i < ea.length; i++) if (ea[i] !== eb[i]) return false;
  return true;
}

function extraOf(s: ItemState | undefined, name: string): Packable | undefined {
  const x = s?.extra;
  return x !== undefined && Object.hasOwn(x, name) ? x[name] : undefined;
}

function dataChanged(
  schema: Schema,
  base: ItemState | undefined,
  head: ItemState,
): boolean {
  const b = base?.data ?? {};
  for (const [name, def] of Object.entries(schema.fields)) {
    if (!fieldValuesEqual(def.type, b[name], head.data[name])) return true;
  }
  for (const s of [base, head]) {
    for (const name in s?.extra) {
      if (!rawValuesEqual(extraOf(base, name), extraOf(head, name))) {
        return true;
      }
    }
  }
  return false;
}

/** A field's raw value in a state (its encoding when the state holds it typed). */
function rawFieldOf(
  s: ItemState | undefined,
  name: string,
  def: FieldDef | undefined,
): Packable | undefined {
  const x = extraOf(s, name);
  if (x !== undefined) return x;
  const v = s?.data[name];
  return v === undefined || !def ? undefined : encodeFieldValue(def.type, v);
}

/** Last writer wins on raw values: the last head (in `(ts, id)` order) that changed it. */
function mergeRaw(
  base: Packable | undefined,
  values: readonly (Packable | undefined)[],
): Packable | undefined {
  let result = base;
  for (const v of values) if (!rawValuesEqual(v, base)) result = v;
  return result;
}

/**
 * Merges head states (sorted by `(ts, id)`, oldest first, all upgraded to `schema`)
 * against their common ancestor `base` (undefined when they share none).
 */
export function mergeStates(
  schema: Schema,
  base: ItemState | undefined,
  heads: readonly ItemState[],
): ItemState {
  if (heads.length === 1) return heads[0];
  const baseData: ItemData = base?.data ?? {};
  // Fields some state holds raw are merged raw (last writer wins on the encoded value).
  const rawNames = new Set<string>();
  for (const s of [base, ...heads]) {
    for (const name in s?.extra) rawNames.add(name);
  }
  let data: ItemData;
  if (schema.merge) {
    data = foldCustom(schema.merge, baseData, heads.map((h) => h.data)) ?? {};
  } else {
    data = {};
    for (const [name, def] of Object.entries(schema.fields)) {
      if (rawNames.has(name)) continue;
      const v = mergeField(def, baseData[name], heads.map((h) => h.data[name]));
      if (v !== undefined) data[name] = copyFieldValue(def.type, v);
    }
  }
  let extra: Record<string, Packable> | undefined;
  for (const name of [...rawNames].sort()) {
    const def = Object.hasOwn(schema.fields, name)
      ? schema.fields[name]
      : undefined;
    const raw = mergeRaw(
      rawFieldOf(base, name, def),
      heads.map((h) => rawFieldOf(h, name, def)),
    );
    delete data[name];
    if (raw === undefined) continue;
    if (def) {
      try {
        data[name] = decodeFieldValue(def.type, raw);
        continue;
      } catch {
        // Not of the declared type: stays raw.
      }
    }
    (extra ??= Object.create(null) as Record<string, Packable>)[name] = raw;
  }
  // An edit beats a concurrent delete.
  const anyDeleted = heads.some((h) => h.deleted);
  const liveEdit = heads.some((h) =>
    !h.deleted && dataChanged(schema, base, h)
  );
  const deleted = anyDeleted &&
    (!liveEdit || heads.every((h) => h.deleted));
  return extra ? { schema, data, deleted, extra } : { schema, data, deleted };
}

/** A state as raw fields only (for merging with states this replica cannot read). */
function asRaw(s: ItemState, schema: Schema): ItemState {
  if (s.unreadable !== undefined) return s;
  const extra: Record<string, Packable> = Object.create(null);
  for (const [name, v] of Object.entries(s.data)) {
    const def = s.schema.fields[name];
    if (def) extra[name] = encodeFieldValue(def.type, v);
  }
  for (const name in s.extra) extra[name] = s.extra[name];
  return { schema, data: {}, deleted: s.deleted, extra };
}

/**
 * The value of several heads (sorted by `(ts, id)`, oldest first) over their merge base:
 * heads of one namespace merge (see {@link mergeStates}); heads of different namespaces
 * give the newest head. When a head cannot be read here, the item cannot either: its raw
 * fields merge last-writer-wins, under the newest unreadable head's schema id.
 */
export function mergeHeadStates(
  heads: readonly ItemState[],
  base: ItemState | undefined,
): ItemState {
  if (heads.length === 1) return heads[0];
  let opaque: ItemState | undefined;
  for (let i = heads.length - 1; i >= 0 && !opaque; i--) {
    if (heads[i].unreadable !== undefined) opaque = heads[i];
  }
  if (opaque) {
    const schema = opaque.schema;
    const merged = mergeStates(
      schema,
      base && asRaw(base, schema),
      heads.map((h) => asRaw(h, schema)),
    );
    return { ...merged, unreadable: opaque.unreadable };
  }
  const newest = heads[heads.length - 1];
  const ns = newest.schema.ns;
  if (heads.some((s) => s.schema.ns !== ns)) return newest;
  return mergeStates(
    newest.schema,
    base?.schema.ns === ns && base.unreadable === undefined ? base : undefined,
    heads,
  );
}
