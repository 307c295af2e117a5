/**
 * JSON views of items: sets become sorted arrays, maps objects, dates ISO strings.
 *
 * @module
 */

import type { FieldValue, Item } from "../mod.ts";

/** A JSON-safe copy of a field value. */
export function jsonValue(v: FieldValue): unknown {
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Set) return [...v].sort();
  if (v instanceof Map) {
    return Object.fromEntries([...v].sort(([a], [b]) => a < b ? -1 : 1));
  }
  return v;
}

/** The JSON view of an item. */
export function itemJson(item: Item): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item.toObject())) data[k] = jsonValue(v);
  const s = item.schema;
  return {
    path: item.path,
    schema: `${s.ns}/${s.version}`,
    deleted: item.isDeleted,
    heads: item.heads,
    data,
  };
}
