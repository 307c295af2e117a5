/**
 * Sort keys of query results and their total order. Keys are compared by type rank
 * first (missing < boolean < number < string), then by value; strings compare by UTF-16
 * code units (never by locale) so that every replica shows the same order.
 *
 * @module
 */

import type { FieldValue } from "../schema/field_types.ts";

/** A value a query sorts by. Dates sort by their time; other objects count as missing. */
export type SortKey =
  | string
  | number
  | boolean
  | bigint
  | Date
  | null
  | undefined;

/** Type ranks: missing keys sort first, then booleans, numbers, strings. */
const Rank = {
  Missing: 0,
  Boolean: 1,
  Number: 2,
  String: 3,
} as const;

function rankOf(key: SortKey): number {
  switch (typeof key) {
    case "boolean":
      return Rank.Boolean;
    case "number":
      return Number.isNaN(key) ? Rank.Missing : Rank.Number;
    case "bigint":
      return Rank.Number;
    case "string":
      return Rank.String;
    default:
      return key instanceof Date && !Number.isNaN(key.getTime())
        ? Rank.Number
        : Rank.Missing;
  }
}

/**
 * Normalizes a key (or a field value) into a comparable primitive: Dates become their
 * time in ms; sets, maps, NaN and invalid dates become `undefined`.
 *
 * @example
 * ```ts
 * import { normalizeSortKey } from "./sort_key.ts";
 * normalizeSortKey(new Date(5)); // 5
 * normalizeSortKey(new Set([1])); // undefined
 * ```
 */
export function normalizeSortKey(
  value: SortKey | FieldValue,
): string | number | boolean | bigint | undefined {
  if (value instanceof Date) {
    const t = value.getTime();
    return Number.isNaN(t) ? undefined : t;
  }
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
      return value;
    case "number":
      return Number.isNaN(value) ? undefined : value;
    default:
      return undefined;
  }
}

/**
 * Compares two sort keys: negative, zero or positive. Deterministic on every platform.
 *
 * @example
 * ```ts
 * import { compareSortKeys } from "./sort_key.ts";
 * compareSortKeys(1, 2) < 0; // true
 * compareSortKeys(undefined, false) < 0; // true: missing keys sort first
 * ```
 */
export function compareSortKeys(a: SortKey, b: SortKey): number {
  if (a === b) return 0;
  const ra = rankOf(a), rb = rankOf(b);
  if (ra !== rb) return ra - rb;
  if (ra === Rank.Missing) return 0;
  const va = a instanceof Date ? a.getTime() : a!;
  const vb = b instanceof Date ? b.getTime() : b!;
  return va < vb ? -1 : va > vb ? 1 : 0;
}
