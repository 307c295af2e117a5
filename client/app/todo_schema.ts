/**
 * The schema of the demo app's todo items, shared by the app and its tests.
 *
 * @module
 */

import type { Schema } from "../../lib/schema/schema.ts";

/** A todo item: text, done flag, position (fractional ordering) and tags. */
export const TODO_SCHEMA: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    order: { type: "number", default: 0 },
    tags: { type: "set" },
  },
};

/** Repository of a shared list. */
export function listRepo(list: string): string {
  return `/todo/${list}`;
}
