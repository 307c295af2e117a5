/**
 * Delta compression of commit bodies. A delta is always taken against the last full
 * snapshot in the commit's ancestry (never the previous commit), so reading any commit
 * needs at most one other commit.
 *
 * @module
 */

import { encode, type Packable } from "../encoding/msgpack.ts";
import type { Schema } from "../schema/schema.ts";
import type { CommitId, DeltaBody, FullBody } from "./commit.ts";
import { applySplice, spliceOf } from "../merge/text.ts";

/** A delta is used only when its encoding is smaller than this share of the full one. */
export const DELTA_MAX_RATIO = 0.5;
/** A full snapshot is forced once this many deltas depend on the current base. */
export const MAX_DELTAS_PER_BASE = 20;

function rawEqual(a: Packable | undefined, b: Packable | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (typeof a !== "object" || typeof b !== "object") return false;
  const ea = encode(a), eb = encode(b);
  if (ea.length !== eb.length) return false;
  for (let i = 0; i < ea.length; i++) if (ea[i] !== eb[i]) return false;
  return true;
}

/**
 * Chooses the body of a new commit: a delta against `base` when one is allowed and
 * small enough, otherwise the full snapshot.
 */
export function chooseBody(
  schema: Schema,
  full: FullBody,
  base: { id: CommitId; body: FullBody; schema: string } | undefined,
  deltasOnBase: number,
): FullBody | DeltaBody {
  if (
    !base || deltasOnBase >= MAX_DELTAS_PER_BASE ||
    base.schema !== `${schema.ns}/${schema.version}`
  ) return full;
  const changed: Record<string, Packable> = {};
  const removed: string[] = [];
  for (const [name, value] of Object.entries(full.data)) {
    const old = base.body.data[name];
    if (rawEqual(old, value)) continue;
    if (
      schema.fields[name]?.type === "text" && typeof old === "string" &&
      typeof value === "string"
    ) {
      const s = spliceOf(old, value);
      if (s.insert.length + 8 < value.length) {
        changed[name] = [s.start, s.deleteCount, s.insert];
        continue;
      }
    }
    changed[name] = value;
  }
  for (const name of Object.keys(base.body.data)) {
    if (!(name in full.data)) removed.push(name);
  }
  const delta: DeltaBody = {
    kind: "delta",
    base: base.id,
    changed,
    removed,
    deleted: full.deleted,
  };
  const fullSize = encode(full.data).length + 2;
  const deltaSize = encode(changed).length + encode(removed).length + 36;
  return deltaSize < fullSize * DELTA_MAX_RATIO ? delta : full;
}

/**
 * True when a delta's change of field `name` is a text splice. A field the schema
 * declares is a splice only when it is a `text` field; a field it does not know (a newer
 * version's, or another replica's field set) is recognised by shape: an array over a
 * string base value, which no other field type encodes (strings are never stored as
 * arrays), so every replica reconstructs the same raw value whatever its schemas.
 */
function isSplice(
  schema: Schema | undefined,
  name: string,
  old: Packable | undefined,
  value: Packable,
): boolean {
  if (!Array.isArray(value) || typeof old !== "string") return false;
  const def = schema && Object.hasOwn(schema.fields, name)
    ? schema.fields[name]
    : undefined;
  return def
    ? def.type === "text"
    : value.length === 3 && typeof value[0] === "number" &&
      typeof value[1] === "number" && typeof value[2] === "string";
}

/** Reconstructs the full data of a delta commit from its base snapshot. */
export function applyDelta(
  schema: Schema | undefined,
  base: FullBody,
  delta: DeltaBody,
): FullBody {
  // No prototype: a field named like an Object.prototype member stays a field.
  const data: Record<string, Packable> = Object.assign(
    Object.create(null),
    base.data,
  );
  for (const name of delta.removed) delete data[name];
  for (const [name, value] of Object.entries(delta.changed)) {
    const old = data[name];
    if (isSplice(schema, name, old, value)) {
      const [start, deleteCount, insert] = value as readonly Packable[];
      if (
        typeof start !== "number" || typeof deleteCount !== "number" ||
        typeof insert !== "string"
      ) {
        throw new SyntaxError(`Invalid text splice for field "${name}"`);
      }
      data[name] = applySplice(old as string, {
        start,
        deleteCount,
        insert,
      });
    } else {
      data[name] = value;
    }
  }
  return { kind: "full", data, deleted: delta.deleted };
}
