/**
 * Typed schemas: the TypeScript types of an item's fields, inferred from its schema
 * definition. `defineSchema({...} as const)` keeps the definition's literal types, so
 * `db.create(path, todo, data)` checks `data` against the fields, the item it returns
 * reads `item.get("done")` as a `boolean`, `set`/`update` accept only values of the
 * field's type, and a query over `schema: todo` hands typed items to its predicate.
 *
 * What a read returns: a `required` field or one with a `default` is never undefined;
 * any other field is `T | undefined`. What a write takes: the field's type (a `set`
 * field also takes an array); `undefined` removes an optional field.
 *
 * @example
 * ```ts
 * import { defineSchema, type FieldsOf } from "./typed.ts";
 *
 * const todo = defineSchema({
 *   ns: "todo",
 *   version: 1,
 *   fields: {
 *     text: { type: "string", required: true },
 *     done: { type: "boolean", default: false },
 *     tags: { type: "set" },
 *   },
 * } as const);
 * type Todo = FieldsOf<typeof todo>; // { text: string; done: boolean; tags: ReadonlySet<…> | undefined }
 * const t: Todo["done"] = true;
 * console.log(t);
 * ```
 *
 * @module
 */

import type { FieldValue, MapValue, SetElement } from "./field_types.ts";
import {
  type FieldDef,
  type Schema,
  validateSchemaDefinition,
} from "./schema.ts";

/** The value a field of each type holds, as reads return it. */
export interface FieldTypeValues {
  string: string;
  text: string;
  number: number;
  boolean: boolean;
  date: Date;
  set: ReadonlySet<SetElement>;
  map: ReadonlyMap<string, MapValue>;
}

/** What a write of each field type accepts. */
export interface FieldTypeWrites extends Omit<FieldTypeValues, "set"> {
  set: ReadonlySet<SetElement> | readonly SetElement[];
}

/** A schema's field definitions. */
export type FieldDefs = Readonly<Record<string, FieldDef>>;

/** True (as a type) when a field always has a value: required or defaulted. */
type AlwaysSet<D> = D extends { readonly required: true } ? true
  : D extends { readonly default: unknown } ? true
  : false;

/** The type a read of field definition `D` returns. */
export type ReadValue<D extends FieldDef> = AlwaysSet<D> extends true
  ? FieldTypeValues[D["type"]]
  : FieldTypeValues[D["type"]] | undefined;

/** The type a write of field definition `D` accepts. */
export type WriteValue<D extends FieldDef> = D extends
  { readonly required: true } ? FieldTypeWrites[D["type"]]
  : FieldTypeWrites[D["type"]] | undefined;

/** The field definitions of a schema type. */
export type DefsOf<S extends Pick<Schema, "fields">> = S["fields"];

/**
 * Field definitions of an untyped item (a schema only known at run time): any field
 * name goes, and every typed item is also an untyped one (`Item<typeof todo.fields>`
 * is assignable to `Item`).
 */
// deno-lint-ignore no-explicit-any
export type UntypedDefs = any;

/** True (as a type) for {@link UntypedDefs}: any field name goes. */
export type IsUntyped<D extends FieldDefs> = string extends keyof D ? true
  : false;

/** Field names of a typed item (any string for an untyped one). */
export type FieldName<D extends FieldDefs> = keyof D & string;

/** What `item.get(field)` returns: the field's read type (untyped: any field value). */
export type GetResult<D extends FieldDefs, K extends string> =
  IsUntyped<D> extends true ? FieldValue | undefined
    : K extends keyof D ? ReadValue<D[K]>
    : never;

/** What `item.set(field, value)` takes (untyped: anything, checked at run time). */
export type SetArg<D extends FieldDefs, K extends string> = IsUntyped<D> extends
  true ? unknown
  : K extends keyof D ? WriteValue<D[K]>
  : never;

/** What `item.toObject()` returns: every field with a value (defaults filled in). */
export type ObjectOf<D extends FieldDefs> = IsUntyped<D> extends true
  ? Record<string, FieldValue>
  :
    & { [K in keyof D]?: FieldTypeValues[D[K]["type"]] }
    & {
      [K in keyof D as AlwaysSet<D[K]> extends true ? K : never]:
        FieldTypeValues[D[K]["type"]];
    };

/**
 * What each field reads as: `FieldsOf<typeof todoSchema>` is
 * `{ text: string; done: boolean; … }`.
 */
export type FieldsOf<S extends Pick<Schema, "fields">> = {
  -readonly [K in keyof DefsOf<S>]: ReadValue<DefsOf<S>[K]>;
};

type RequiredNames<D extends FieldDefs> = {
  [K in keyof D]: D[K] extends { readonly required: true }
    ? D[K] extends { readonly default: unknown } ? never : K
    : never;
}[keyof D];

/**
 * The data `db.create` takes for a schema: required fields without a default must be
 * given, the others may be.
 */
export type CreateData<D extends FieldDefs> = IsUntyped<D> extends true
  ? Record<string, unknown>
  :
    & { [K in RequiredNames<D>]: FieldTypeWrites[D[K]["type"]] }
    & {
      [K in Exclude<keyof D, RequiredNames<D>>]?: WriteValue<D[K]>;
    };

/** The changes `item.update` takes: any subset of the fields. */
export type UpdateData<D extends FieldDefs> = IsUntyped<D> extends true
  ? Record<string, unknown>
  : { [K in keyof D]?: WriteValue<D[K]> };

/**
 * Refuses `undefined` for a required field in changes `C` (an optional property would
 * accept it otherwise): `update({ text: undefined })` does not compile (a value that
 * may be undefined still compiles; the run-time check refuses it).
 */
export type KeepRequired<D extends FieldDefs, C> = IsUntyped<D> extends true
  ? unknown
  : {
    [K in keyof C]: K extends RequiredNames<D>
      ? [C[K]] extends [undefined] ? never : C[K]
      : C[K];
  };

/**
 * Declares a schema with its TypeScript types: returns the definition itself (checked
 * at once: a bad definition throws a TypeError here rather than at registration), with
 * the literal types that typed items, creates and queries are inferred from. Write it
 * `defineSchema({...} as const)` (the `as const` is optional: the definition's literal
 * types are kept either way).
 */
export function defineSchema<const S extends Schema>(schema: S): S {
  validateSchemaDefinition(schema);
  return schema;
}
