/**
 * The schemas of the demo app's todo items, shared by the app and its tests. Version 2
 * keeps an item's position as an order key (fractional indexing, lib/order); version 1
 * kept a number, and its items are upgraded on read.
 *
 * @module
 */

import type { Schema } from "../../lib/schema/schema.ts";
import { orderKeyOfNumber } from "../../lib/order/order_key.ts";
import { orderField } from "../../lib/order/list_position.ts";

/** Version 1: the position was a number (midpoints of the neighbours' numbers). */
export const TODO_SCHEMA_V1: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    order: { type: "number", default: 0 },
    tags: { type: "set" },
  },
};

/** A todo item: text, done flag, position (an order key) and tags. */
export const TODO_SCHEMA: Schema = {
  ns: "todo",
  version: 2,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    order: orderField(),
    tags: { type: "set" },
  },
  upgrade: (data) => ({
    ...data,
    order: orderKeyOfNumber(typeof data.order === "number" ? data.order : 0),
  }),
};

/** Every version, oldest first: register all of them to read old items. */
export const TODO_SCHEMAS: readonly Schema[] = [TODO_SCHEMA_V1, TODO_SCHEMA];

/** Repository of a shared list. */
export function listRepo(list: string): string {
  return `/todo/${list}`;
}
