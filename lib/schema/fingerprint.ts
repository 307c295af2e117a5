/**
 * Schema fingerprints: a short hash of a schema version's field set (names and types), so
 * that two replicas registering different fields under one `ns/version` notice it. Every
 * local commit records its writer's fingerprint in its data under the reserved key
 * {@link SCHEMA_FINGERPRINT_FIELD} (not a valid field name, so it never collides with a
 * field; older readers ignore it like any field they do not know).
 *
 * @module
 */

import type { FieldDef } from "./schema.ts";

/**
 * The key under which a commit's data records its writer's {@link schemaFingerprint}.
 * Field names match `[A-Za-z_][A-Za-z0-9_]*`, so it is never a field.
 */
export const SCHEMA_FINGERPRINT_FIELD = "$fp";

const cache = new WeakMap<object, number>();

/**
 * The fingerprint of a schema version's field set: FNV-1a (32 bits) over its field names
 * and types, sorted by name. Equal field sets give equal fingerprints on every replica;
 * validators, defaults and merge functions do not count (they do not change what is
 * stored).
 *
 * @example
 * ```ts
 * import { schemaFingerprint } from "./fingerprint.ts";
 * const a = schemaFingerprint({ fields: { text: { type: "string" } } });
 * const b = schemaFingerprint({ fields: { text: { type: "text" } } });
 * console.log(a !== b); // true
 * ```
 */
export function schemaFingerprint(
  schema: { readonly fields: Readonly<Record<string, FieldDef>> },
): number {
  const fields = schema.fields;
  const known = cache.get(fields);
  if (known !== undefined) return known;
  let h = 0x811c9dc5;
  for (const name of Object.keys(fields).sort()) {
    for (const ch of `${name}:${fields[name].type};`) {
      h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
    }
  }
  const fp = h >>> 0;
  cache.set(fields, fp);
  return fp;
}
