/**
 * Checks of commits received from peers that concern their data (ingest.ts runs them
 * beside its checks of ids, sessions and signatures):
 *
 * - {@link receivedRecordProblem}: a record larger than a local write may produce
 *   ({@link MAX_COMMIT_RECORD_BYTES}) is refused alone;
 * - {@link receivedDataProblem}: field names must be field names (or the reserved
 *   fingerprint key), so no stored name can collide with anything else; strings are valid
 *   UTF-8 already (the decoder refuses an encoded lone surrogate, naming it);
 * - {@link noteReceivedSchema}: a commit written under a schema id whose field set differs
 *   here is reported as a mismatch (never refused: its fields are carried through), and
 *   one of a schema id not registered here is kept as it is (readable raw).
 *
 * @module
 */

import type { Commit } from "../commit/commit.ts";
import {
  SCHEMA_FINGERPRINT_FIELD,
  schemaFingerprint,
} from "../schema/fingerprint.ts";
import { isFieldName, type SchemaRegistry } from "../schema/schema.ts";
import { MAX_COMMIT_RECORD_BYTES } from "./write_limits.ts";

/** Why a received commit record is refused for its size, or undefined. */
export function receivedRecordProblem(record: Uint8Array): string | undefined {
  if (record.length <= MAX_COMMIT_RECORD_BYTES) return undefined;
  return `commit record of ${record.length} bytes exceeds MAX_COMMIT_RECORD_BYTES (${MAX_COMMIT_RECORD_BYTES} bytes)`;
}

function badName(name: string): boolean {
  return name !== SCHEMA_FINGERPRINT_FIELD && !isFieldName(name);
}

/** Why a received commit's data is refused, or undefined. */
export function receivedDataProblem(c: Commit): string | undefined {
  const b = c.body;
  const names = b.kind === "full"
    ? Object.keys(b.data)
    : [...Object.keys(b.changed), ...b.removed];
  const bad = names.find(badName);
  if (bad === undefined) return undefined;
  return `commit ${c.id} of ${c.key} has a field named ${
    JSON.stringify(bad.length > 70 ? bad.slice(0, 70) + "…" : bad)
  }, which is not a field name`;
}

/**
 * Reports a received commit whose writer's schema differs from the local schema of the
 * same id: another fingerprint, or fields the local schema does not declare.
 */
export function noteReceivedSchema(
  registry: SchemaRegistry,
  c: Commit,
): void {
  const local = registry.get(c.schema);
  if (!local) return; // not registered here: kept and shown raw
  const raw = c.body.kind === "full" ? c.body.data : c.body.changed;
  const fp = raw[SCHEMA_FINGERPRINT_FIELD];
  const unknown = Object.keys(raw).filter((n) =>
    n !== SCHEMA_FINGERPRINT_FIELD && !Object.hasOwn(local.fields, n)
  );
  const localFp = schemaFingerprint(local);
  if (!unknown.length && (typeof fp !== "number" || fp === localFp)) return;
  registry.reports.noteMismatch({
    schema: c.schema,
    path: c.key,
    unknownFields: unknown.sort(),
    invalidFields: [],
    writerFingerprint: typeof fp === "number" ? fp : undefined,
    localFingerprint: localFp,
  });
}
