/**
 * Between stored commit data and item states. Decoding never throws for data this
 * replica's schemas do not fit:
 *
 * - an item written under a schema id that is not registered here (a newer version from a
 *   peer, say) is kept as it is: an *unreadable* state whose raw data `item.raw()` gives;
 *   listing, counting, queries and sync go on;
 * - a stored field the local schema does not declare, or whose value is not of the
 *   declared type, is kept raw in the state's `extra` and written back unchanged by every
 *   later write and merge, and the mismatch is reported (`db.onSchemaMismatch`);
 * - a failed upgrade makes the item unreadable with the upgrade's error as the reason.
 *
 * Encoding writes the typed fields, the raw fields carried through, and the writer's schema
 * fingerprint (see lib/schema/fingerprint.ts).
 *
 * @module
 */

import type { FullBody, RawData } from "../commit/commit.ts";
import type { Packable } from "../encoding/msgpack.ts";
import type { ItemState } from "../merge/merge.ts";
import { decodeFieldValue, encodeFieldValue } from "../schema/field_types.ts";
import {
  SCHEMA_FINGERPRINT_FIELD,
  schemaFingerprint,
} from "../schema/fingerprint.ts";
import {
  type ItemData,
  parseSchemaId,
  type Schema,
  type SchemaId,
  type SchemaRegistry,
} from "../schema/schema.ts";

const placeholders = new Map<SchemaId, Schema>();

/**
 * The stand-in schema of an item this replica cannot read: the id's namespace and
 * version, no fields. Never registered.
 */
export function placeholderSchema(id: SchemaId): Schema {
  let s = placeholders.get(id);
  if (!s) {
    const { ns, version } = parseSchemaId(id);
    s = Object.freeze({ ns, version, fields: Object.freeze({}) });
    if (placeholders.size > 1000) placeholders.clear();
    placeholders.set(id, s);
  }
  return s;
}

/** Why items of `id` cannot be read here (the id is not registered). */
function unregisteredReason(registry: SchemaRegistry, id: SchemaId): string {
  const { ns, version } = parseSchemaId(id);
  const known = registry.versions(ns);
  if (!known.length) {
    return `it is written under schema "${id}", which is not registered here (no version of "${ns}" is)`;
  }
  const newer = known.every((v) => v < version);
  return `it is written under schema "${id}", which is not registered here (${
    newer ? "a newer version; " : ""
  }registered: ${known.map((v) => `${ns}/${v}`).join(", ")})`;
}

/** An object for raw fields: no prototype, so no field name can be special. */
export function rawFields(): Record<string, Packable> {
  return Object.create(null);
}

function rawWithoutFingerprint(data: RawData): Record<string, Packable> {
  const out = rawFields();
  for (const name in data) {
    if (name !== SCHEMA_FINGERPRINT_FIELD) out[name] = data[name];
  }
  return out;
}

/**
 * The state of stored full data written under `schemaId`, upgraded to the newest
 * registered version of its namespace. Never throws for data the schemas do not fit (see
 * the module doc); `path` names the item in reports.
 */
export function decodeItemState(
  registry: SchemaRegistry,
  schemaId: SchemaId,
  full: FullBody,
  path: string,
): ItemState {
  const written = registry.get(schemaId);
  if (!written) {
    return {
      schema: placeholderSchema(schemaId),
      data: {},
      deleted: full.deleted,
      extra: rawWithoutFingerprint(full.data),
      unreadable: unregisteredReason(registry, schemaId),
    };
  }
  const fields = written.fields;
  const raw = full.data;
  const data: ItemData = {};
  let extra: Record<string, Packable> | undefined;
  let unknown: string[] | undefined;
  let invalid: string[] | undefined;
  let writerFp: number | undefined;
  for (const name in raw) {
    const value = raw[name];
    if (name === SCHEMA_FINGERPRINT_FIELD) {
      if (typeof value === "number") writerFp = value;
      continue;
    }
    if (Object.hasOwn(fields, name)) {
      try {
        data[name] = decodeFieldValue(fields[name].type, value);
        continue;
      } catch {
        (invalid ??= []).push(name);
      }
    } else (unknown ??= []).push(name);
    (extra ??= rawFields())[name] = value;
  }
  if (unknown || invalid || writerFp !== undefined) {
    const localFp = schemaFingerprint(written);
    if (unknown || invalid || writerFp !== localFp) {
      registry.reports.noteMismatch({
        schema: schemaId,
        path,
        unknownFields: unknown?.sort() ?? [],
        invalidFields: invalid?.sort() ?? [],
        writerFingerprint: writerFp,
        localFingerprint: localFp,
      });
    }
  }
  const latest = registry.latest(written.ns);
  if (latest === written) {
    return extra
      ? { schema: written, data, deleted: full.deleted, extra }
      : { schema: written, data, deleted: full.deleted };
  }
  let up: { schema: Schema; data: ItemData };
  try {
    up = registry.upgrade(schemaId, data);
  } catch (e) {
    const reason = `upgrading it from "${schemaId}" failed: ${
      (e as Error)?.message ?? String(e)
    }`;
    registry.reports.noteUnreadable(schemaId, path, reason);
    return {
      schema: placeholderSchema(schemaId),
      data: {},
      deleted: full.deleted,
      extra: rawWithoutFingerprint(full.data),
      unreadable: reason,
    };
  }
  // Raw fields the newer version declares are its upgrade's to decide.
  if (extra) {
    for (const name in extra) {
      if (Object.hasOwn(up.schema.fields, name)) delete extra[name];
    }
    if (Object.keys(extra).length === 0) extra = undefined;
  }
  return extra
    ? { schema: up.schema, data: up.data, deleted: full.deleted, extra }
    : { schema: up.schema, data: up.data, deleted: full.deleted };
}

/**
 * The stored data of a state: its typed fields encoded, the raw fields it carries
 * through, and the writer's schema fingerprint.
 */
export function encodeItemState(state: ItemState): RawData {
  const schema = state.schema;
  const out = rawFields();
  for (const name in state.data) {
    const def = schema.fields[name];
    if (def) out[name] = encodeFieldValue(def.type, state.data[name]);
  }
  const extra = state.extra;
  if (extra) {
    for (const name in extra) if (!(name in out)) out[name] = extra[name];
  }
  if (state.unreadable === undefined) {
    out[SCHEMA_FINGERPRINT_FIELD] = schemaFingerprint(schema);
  }
  return out;
}
