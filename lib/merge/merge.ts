/**
 * Deterministic N-way merge of an item's heads against their common ancestor.
 *
 * Heads are applied in `(ts, id)` order. Scalars (`string number boolean date`) are
 * last-writer-wins among the heads that changed them; `set` merges element-wise (an
 * element added by any head is added, one removed by any head is removed); `map` merges
 * key-wise with last-writer-wins per key; `text` merges character ranges; a field's or
 * the schema's own `merge(base, ours, theirs)` replaces the built-in rule. An edit beats
 * a concurrent delete. The result depends only on the set of heads and their ancestor.
 *
 * @module
 */

import {
  copyFieldValue,
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

/** A decoded, upgraded item state. */
export interface ItemState {
  readonly schema: Schema;
  readonly data: ItemData;
  readonly deleted: boolean;
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

function dataChanged(schema: Schema, base: ItemData, data: ItemData): boolean {
  for (const [name, def] of Object.entries(schema.fields)) {
    if (!fieldValuesEqual(def.type, base[name], data[name])) return true;
  }
  return false;
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
  let data: ItemData;
  if (schema.merge) {
    data = foldCustom(schema.merge, baseData, heads.map((h) => h.data)) ?? {};
  } else {
    data = {};
    for (const [name, def] of Object.entries(schema.fields)) {
      const v = mergeField(def, baseData[name], heads.map((h) => h.data[name]));
      if (v !== undefined) data[name] = copyFieldValue(def.type, v);
    }
  }
  // An edit beats a concurrent delete.
  const anyDeleted = heads.some((h) => h.deleted);
  const liveEdit = heads.some((h) =>
    !h.deleted && dataChanged(schema, baseData, h.data)
  );
  const deleted = anyDeleted &&
    (!liveEdit || heads.every((h) => h.deleted));
  return { schema, data, deleted };
}
