/**
 * Write-time validation: every value is checked against its schema before anything is
 * recorded, and refused with an error that names the item, the field and the value:
 * its type, strings that cannot be stored (a lone surrogate has no UTF-8 form: the index
 * is named), its size (`MAX_VALUE_BYTES`, write_limits.ts) and the field's `validate`. The size of
 * the whole commit is checked where every write goes (write_limits.ts, local_writes.ts).
 *
 * @module
 */

import { checkFieldValue, type FieldValue } from "../schema/field_types.ts";
import {
  defaultValue,
  type ItemData,
  type Schema,
  schemaIdOf,
} from "../schema/schema.ts";
import { checkValueSize } from "./write_limits.ts";

function show(v: unknown): string {
  if (typeof v === "string") {
    return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  }
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Set) return `Set(${v.size})`;
  if (v instanceof Map) return `Map(${v.size})`;
  return String(v);
}

/** Checks one field write; returns the value to store (undefined removes the field). */
export function checkFieldWrite(
  path: string,
  schema: Schema,
  field: string,
  value: unknown,
): FieldValue | undefined {
  const def = Object.hasOwn(schema.fields, field)
    ? schema.fields[field]
    : undefined;
  if (!def) {
    throw new TypeError(
      `Cannot set field "${field}" of ${path}: schema "${
        schemaIdOf(schema)
      }" has no such field`,
    );
  }
  if (value === undefined) {
    if (def.required) {
      throw new TypeError(
        `Cannot remove field "${field}" of ${path}: it is required by schema "${
          schemaIdOf(schema)
        }"`,
      );
    }
    return undefined;
  }
  const checked = checkFieldValue(def.type, value);
  if (!checked.ok) {
    throw new TypeError(
      `Cannot set field "${field}" of ${path}: ${checked.problem}`,
    );
  }
  checkValueSize(path, field, def.type, checked.value);
  if (def.validate) {
    let verdict: boolean | string;
    try {
      verdict = (def.validate as (v: FieldValue) => boolean | string)(
        checked.value,
      );
    } catch (e) {
      throw new RangeError(
        `Cannot set field "${field}" of ${path}: validate threw on ${
          show(value)
        }: ${(e as Error)?.message ?? e}`,
        { cause: e },
      );
    }
    if (verdict !== true) {
      throw new RangeError(
        `Cannot set field "${field}" of ${path}: value ${
          show(value)
        } refused by validate${
          typeof verdict === "string" ? `: ${verdict}` : ""
        }`,
      );
    }
  }
  return checked.value;
}

/** Checks the initial data of a new item, filling defaults; throws on any problem. */
export function checkNewItem(
  path: string,
  schema: Schema,
  data: Record<string, unknown>,
): ItemData {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new TypeError(`Cannot create ${path}: data must be an object`);
  }
  const out: ItemData = {};
  for (const [field, value] of Object.entries(data)) {
    const v = checkFieldWrite(path, schema, field, value);
    if (v !== undefined) out[field] = v;
  }
  for (const [field, def] of Object.entries(schema.fields)) {
    if (out[field] !== undefined) continue;
    let d = defaultValue(def);
    if (d !== undefined && typeof def.default === "function") {
      // A default function's result is checked like a written value.
      const checked = checkFieldValue(def.type, d);
      if (!checked.ok) {
        throw new TypeError(
          `Cannot create ${path}: the default of field "${field}" of schema "${
            schemaIdOf(schema)
          }" is invalid: ${checked.problem}`,
        );
      }
      checkValueSize(path, field, def.type, d = checked.value);
    }
    if (d !== undefined) out[field] = d;
    else if (def.required) {
      throw new TypeError(
        `Cannot create ${path}: required field "${field}" of schema "${
          schemaIdOf(schema)
        }" is missing`,
      );
    }
  }
  return out;
}
