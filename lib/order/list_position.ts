/**
 * Positions in an ordered list kept by order keys (see order_key.ts): the key that puts
 * an item at an index, the key that moves an item, and a schema field for the key.
 *
 * @example
 * ```ts
 * import { orderKeyAt, orderKeyForMove } from "./list_position.ts";
 *
 * const keys = ["a0", "a1", "a2"]; // the list's keys, in list order
 * const atStart = orderKeyAt(keys, 0); // before "a0"
 * const lastToFront = orderKeyForMove(keys, 2, 0); // "a2"'s item, moved first
 * console.log(atStart < "a0", lastToFront < "a0"); // true true
 * ```
 *
 * @module
 */

import {
  orderKeyBetween,
  type OrderKeyOptions,
  orderKeyProblem,
} from "./order_key.ts";

function checkIndex(index: number, max: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0 || index > max) {
    throw new RangeError(
      `Invalid ${what} ${index}: expected an integer from 0 to ${max}`,
    );
  }
}

/**
 * The order key that places a new item at `index` of a list whose items, in list order,
 * have the keys `sortedKeys` (0: first, `sortedKeys.length`: last). Neighbours with
 * equal keys (two replicas that picked the same key: less than a one-in-400,000
 * chance) are
 * treated as one position: the item goes right after them.
 */
export function orderKeyAt(
  sortedKeys: readonly string[],
  index: number,
  options?: OrderKeyOptions,
): string {
  checkIndex(index, sortedKeys.length, "index");
  const before = index > 0 ? sortedKeys[index - 1] : null;
  let j = index;
  while (before !== null && j < sortedKeys.length && sortedKeys[j] <= before) {
    j++;
  }
  const after = j < sortedKeys.length ? sortedKeys[j] : null;
  return orderKeyBetween(before, after, options);
}

/**
 * The new order key of the item at `from` when it moves to index `to` of the list
 * (indexes of the list as it is, `sortedKeys` in list order): `orderKeyForMove(keys, 3,
 * 2)` moves the fourth item up by one.
 */
export function orderKeyForMove(
  sortedKeys: readonly string[],
  from: number,
  to: number,
  options?: OrderKeyOptions,
): string {
  checkIndex(from, sortedKeys.length - 1, "from index");
  checkIndex(to, sortedKeys.length - 1, "to index");
  const rest = sortedKeys.filter((_, i) => i !== from);
  return orderKeyAt(rest, to, options);
}

/** A schema field holding an order key (`type: "string"`, refusing anything else). */
export interface OrderFieldDef {
  readonly type: "string";
  readonly required?: boolean;
  readonly validate: (key: string) => true | string;
}

/**
 * A field definition for an order key: a string field whose writes must be valid
 * order keys. Sort a query by it (`sortBy: "order"`) to get the list order.
 *
 * @example
 * ```ts
 * import { orderField } from "./list_position.ts";
 * const fields = { text: { type: "string" }, order: orderField() } as const;
 * console.log(fields.order.type); // "string"
 * ```
 */
export function orderField(
  options: { readonly required?: boolean } = {},
): OrderFieldDef {
  return {
    type: "string",
    ...(options.required ? { required: true } : {}),
    validate: (key: string) => {
      const problem = orderKeyProblem(key);
      return problem === null ? true : `not an order key: ${problem}`;
    },
  };
}
