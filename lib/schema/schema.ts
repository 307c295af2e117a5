/**
 * Schemas describe the fields of an item. They are versioned by `(ns, version)`; data
 * written under an older version is upgraded lazily, on read and on merge, through the
 * `upgrade` function of each newer version.
 *
 * @module
 */

import {
  checkFieldValue,
  copyFieldValue,
  type FieldType,
  type FieldValue,
  isFieldType,
} from "./field_types.ts";
import { SchemaReports } from "./schema_reports.ts";

/** The data of an item: field name → value. Absent fields are missing keys. */
export type ItemData = Record<string, FieldValue>;

/** A deterministic merge function: must give the same result on every replica. */
export type MergeFunction<T> = (
  base: T | undefined,
  ours: T | undefined,
  theirs: T | undefined,
) => T | undefined;

/** One field of a schema. */
export interface FieldDef {
  /** The value type. */
  readonly type: FieldType;
  /** Creation fails when the field has no value and no default. */
  readonly required?: boolean;
  /** Used when the field is absent (a function is called for a fresh value). */
  readonly default?: FieldValue | (() => FieldValue);
  /** Returns false or a message to refuse a value at write time. */
  readonly validate?: (value: never) => boolean | string;
  /** Replaces the built-in per-type merge for this field. */
  readonly merge?: MergeFunction<never>;
}

/** A schema version. */
export interface Schema {
  /** Namespace, `[a-z0-9_-]`, e.g. `"todo"`. */
  readonly ns: string;
  /** Positive integer; bump it when fields change. */
  readonly version: number;
  readonly fields: Readonly<Record<string, FieldDef>>;
  /** Converts data written under an older version of this namespace into this one. */
  readonly upgrade?: (data: ItemData, fromVersion: number) => ItemData;
  /** Replaces the per-field merge for the whole item. */
  readonly merge?: MergeFunction<ItemData>;
}

/** `"ns/version"`, as recorded in commits. */
export type SchemaId = string;

/** The schema id of a schema. */
export function schemaIdOf(schema: Pick<Schema, "ns" | "version">): SchemaId {
  return `${schema.ns}/${schema.version}`;
}

const NS = /^[a-z0-9_-]{1,64}$/;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** True when `name` may name a field (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 characters). */
export function isFieldName(name: string): boolean {
  return FIELD_NAME.test(name);
}

/** Parses `"ns/version"`; throws a TypeError for anything else. */
export function parseSchemaId(id: string): { ns: string; version: number } {
  const slash = id.lastIndexOf("/");
  const ns = id.slice(0, slash);
  const version = Number(id.slice(slash + 1));
  if (
    slash < 0 || !NS.test(ns) || !Number.isSafeInteger(version) || version < 1
  ) {
    throw new TypeError(`Invalid schema id "${id}": expected "ns/version"`);
  }
  return { ns, version };
}

/** Throws a TypeError describing the first problem of a schema definition. */
export function validateSchemaDefinition(schema: Schema): void {
  if (schema === null || typeof schema !== "object") {
    throw new TypeError(
      `Invalid schema: expected an object, got ${String(schema)}`,
    );
  }
  if (typeof schema.ns !== "string" || !NS.test(schema.ns)) {
    throw new TypeError(
      `Invalid schema ns ${
        JSON.stringify(schema.ns)
      }: must be 1-64 characters of [a-z0-9_-]`,
    );
  }
  const id = `${schema.ns}/${String(schema.version)}`;
  if (!Number.isSafeInteger(schema.version) || schema.version < 1) {
    throw new TypeError(
      `Invalid schema "${id}": version must be a positive integer`,
    );
  }
  if (schema.fields === null || typeof schema.fields !== "object") {
    throw new TypeError(`Invalid schema "${id}": fields must be an object`);
  }
  for (const [name, def] of Object.entries(schema.fields)) {
    if (!FIELD_NAME.test(name)) {
      throw new TypeError(
        `Invalid schema "${id}": field name "${name}" must match ${FIELD_NAME}`,
      );
    }
    if (def === null || typeof def !== "object" || !isFieldType(def.type)) {
      throw new TypeError(
        `Invalid schema "${id}": field "${name}" has unknown type ${
          JSON.stringify((def as { type?: unknown } | null)?.type)
        }`,
      );
    }
    for (const fn of ["validate", "merge"] as const) {
      if (def[fn] !== undefined && typeof def[fn] !== "function") {
        throw new TypeError(
          `Invalid schema "${id}": field "${name}".${fn} must be a function`,
        );
      }
    }
    if (def.default !== undefined && typeof def.default !== "function") {
      const checked = checkFieldValue(def.type, def.default);
      if (!checked.ok) {
        throw new TypeError(
          `Invalid schema "${id}": default of field "${name}": ${checked.problem}`,
        );
      }
    }
  }
  for (const fn of ["upgrade", "merge"] as const) {
    if (schema[fn] !== undefined && typeof schema[fn] !== "function") {
      throw new TypeError(`Invalid schema "${id}": ${fn} must be a function`);
    }
  }
}

/** The default value of a field, or undefined when it has none. */
export function defaultValue(def: FieldDef): FieldValue | undefined {
  if (def.default === undefined) return undefined;
  if (typeof def.default === "function") return def.default();
  return copyFieldValue(def.type, def.default);
}

/**
 * Checks what an upgrade function returned against the schema it upgrades to: an object
 * whose every field is declared there with a value of its type (a lone surrogate, say,
 * could never be stored). Returns private copies; throws a TypeError naming the field.
 */
function checkUpgradeOutput(
  to: Schema,
  fromId: SchemaId,
  out: unknown,
): ItemData {
  const id = schemaIdOf(to);
  if (out === null || typeof out !== "object" || Array.isArray(out)) {
    throw new TypeError(
      `The upgrade of "${id}" returned ${
        out === null ? "null" : Array.isArray(out) ? "an array" : typeof out
      } for data of "${fromId}": expected an object of fields`,
    );
  }
  const data: ItemData = {};
  for (const [name, value] of Object.entries(out)) {
    if (value === undefined) continue;
    const def = Object.hasOwn(to.fields, name) ? to.fields[name] : undefined;
    if (!def) {
      throw new TypeError(
        `The upgrade of "${id}" returned field "${name}", which "${id}" does not declare`,
      );
    }
    const checked = checkFieldValue(def.type, value);
    if (!checked.ok) {
      throw new TypeError(
        `The upgrade of "${id}" returned an invalid field "${name}": ${checked.problem}`,
      );
    }
    data[name] = checked.value;
  }
  return data;
}

/** Schemas known to a database, by namespace and version. */
export class SchemaRegistry {
  readonly #byNs = new Map<string, Schema[]>();
  readonly #byId = new Map<string, Schema>();
  /** Mismatches and failed upgrades found while reading data, each reported once. */
  readonly reports: SchemaReports = new SchemaReports();

  /** Registers a schema version; re-registering the same version replaces it. */
  register(schema: Schema): void {
    validateSchemaDefinition(schema);
    const versions = this.#byNs.get(schema.ns) ?? [];
    const i = versions.findIndex((s) => s.version === schema.version);
    if (i >= 0) versions[i] = schema;
    else versions.push(schema);
    versions.sort((a, b) => a.version - b.version);
    this.#byNs.set(schema.ns, versions);
    this.#byId.set(schemaIdOf(schema), schema);
  }

  /** The newest registered version of a namespace. */
  latest(ns: string): Schema | undefined {
    const versions = this.#byNs.get(ns);
    return versions?.[versions.length - 1];
  }

  /** The registered versions of a namespace, oldest first (empty when none). */
  versions(ns: string): readonly number[] {
    return (this.#byNs.get(ns) ?? []).map((s) => s.version);
  }

  /** A specific version, by id `"ns/version"`. */
  get(id: SchemaId): Schema | undefined {
    const known = this.#byId.get(id);
    if (known) return known;
    const { ns, version } = parseSchemaId(id);
    return this.#byNs.get(ns)?.find((s) => s.version === version);
  }

  /**
   * Resolves a schema argument (a namespace, an id `"ns/version"` or a schema object)
   * to a registered schema; throws a TypeError naming what is unknown.
   */
  resolve(schema: string | Schema): Schema {
    if (typeof schema === "object" && schema !== null) {
      const known = this.get(schemaIdOf(schema));
      if (known !== schema) this.register(schema);
      return schema;
    }
    if (typeof schema !== "string") {
      throw new TypeError(`Unknown schema ${String(schema)}: expected a name`);
    }
    const found = schema.includes("/") ? this.get(schema) : this.latest(schema);
    if (!found) {
      throw new TypeError(
        `Unknown schema "${schema}": register it with db.registerSchema() first`,
      );
    }
    return found;
  }

  /**
   * Upgrades data written under `fromId` to the newest registered version of its
   * namespace, applying each newer version's `upgrade` in turn. Returns the schema the
   * data now follows. Each upgrade's output is checked against its version (declared
   * fields, values of their type): a TypeError names what is wrong.
   */
  upgrade(
    fromId: SchemaId,
    data: ItemData,
  ): { schema: Schema; data: ItemData } {
    const { ns, version } = parseSchemaId(fromId);
    const versions = this.#byNs.get(ns);
    if (!versions || !versions.some((s) => s.version >= version)) {
      throw new TypeError(
        `Unknown schema "${fromId}": register it (or a newer version) to read this item`,
      );
    }
    let current = version;
    let out = data;
    for (const s of versions) {
      if (s.version <= version) continue;
      if (!s.upgrade) {
        throw new TypeError(
          `Cannot upgrade data from "${ns}/${current}" to "${ns}/${s.version}": schema has no upgrade function`,
        );
      }
      out = checkUpgradeOutput(
        s,
        `${ns}/${current}`,
        s.upgrade({ ...out }, current),
      );
      current = s.version;
    }
    return { schema: this.get(`${ns}/${current}`)!, data: out };
  }
}
