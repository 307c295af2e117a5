/**
 * Reports about schemas that do not match the data: a commit written under a schema id
 * whose field set differs here (another replica registered other fields under the same
 * `ns/version`), and upgrades that failed. Each distinct problem is reported once: to the
 * database's `onError` and, for mismatches, to `onSchemaMismatch` listeners and the list
 * `db.schemaMismatches`. Nothing is dropped because of a mismatch: fields this replica does
 * not know are carried through writes and merges unchanged (see lib/core/item_state.ts).
 *
 * @module
 */

/** `"ns/version"` (the same as `SchemaId` of schema.ts, which imports this module). */
type SchemaId = string;

/** Distinct mismatches kept in {@link SchemaReports.mismatches}; later ones are counted. */
export const MAX_KEPT_SCHEMA_MISMATCHES = 100;

/** Distinct problems remembered for de-duplication before the memory is cleared. */
const MAX_REMEMBERED = 1000;

/** One schema id whose field set differs between this replica and a writer. */
export interface SchemaMismatch {
  /** The schema id, `"ns/version"`. */
  readonly schema: SchemaId;
  /** The item where it was first seen. */
  readonly path: string;
  /** Stored fields the local schema of that id does not declare (carried through raw). */
  readonly unknownFields: readonly string[];
  /** Stored fields whose value is not of the type the local schema declares (kept raw). */
  readonly invalidFields: readonly string[];
  /** The writer's and the local fingerprint, when the commit records one and they differ. */
  readonly fingerprint?: { readonly writer: number; readonly local: number };
  /** A sentence for logs and error reports. */
  readonly message: string;
}

/** The error `onError` receives for a {@link SchemaMismatch}. */
export class SchemaMismatchError extends Error {
  /** What differs. */
  readonly mismatch: SchemaMismatch;
  constructor(mismatch: SchemaMismatch) {
    super(mismatch.message);
    this.name = "SchemaMismatchError";
    this.mismatch = mismatch;
  }
}

/** What was found about one commit's data (see {@link SchemaReports.noteMismatch}). */
export interface MismatchFinding {
  readonly schema: SchemaId;
  readonly path: string;
  readonly unknownFields: readonly string[];
  readonly invalidFields: readonly string[];
  readonly writerFingerprint?: number;
  readonly localFingerprint: number;
}

function mismatchMessage(f: MismatchFinding): string {
  const parts: string[] = [];
  if (
    f.writerFingerprint !== undefined &&
    f.writerFingerprint !== f.localFingerprint
  ) {
    parts.push(
      `it was written by a replica whose "${f.schema}" has another field set (fingerprint ${
        hex(f.writerFingerprint)
      }, here ${hex(f.localFingerprint)})`,
    );
  }
  if (f.unknownFields.length) {
    parts.push(
      `fields ${
        f.unknownFields.map((n) => `"${n}"`).join(", ")
      } are not declared here`,
    );
  }
  if (f.invalidFields.length) {
    parts.push(
      `fields ${
        f.invalidFields.map((n) => `"${n}"`).join(", ")
      } hold values of another type than declared here`,
    );
  }
  return `Schema mismatch for "${f.schema}" at ${f.path}: ${
    parts.join("; ")
  }. Fields this replica cannot read are kept and carried through unchanged; give each field set its own schema version.`;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** Schema problems of one database, each reported once. */
export class SchemaReports {
  readonly #seen = new Set<string>();
  readonly #mismatches: SchemaMismatch[] = [];
  readonly #listeners = new Set<(m: SchemaMismatch) => void>();
  #sink: ((error: Error) => void) | null = null;
  #dropped = 0;

  /** Mismatches found so far (the first {@link MAX_KEPT_SCHEMA_MISMATCHES}). */
  get mismatches(): readonly SchemaMismatch[] {
    return this.#mismatches;
  }

  /** Distinct mismatches found beyond those kept. */
  get droppedMismatches(): number {
    return this.#dropped;
  }

  /** Where errors go (the database's `onError`). */
  reportErrorsTo(sink: (error: Error) => void): void {
    this.#sink = sink;
  }

  /** Calls `listener` for every new mismatch; returns an unsubscribe function. */
  onMismatch(listener: (m: SchemaMismatch) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  #first(key: string): boolean {
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= MAX_REMEMBERED) this.#seen.clear();
    this.#seen.add(key);
    return true;
  }

  /** Reports a mismatch unless an equal one (same id, fingerprint, fields) was reported. */
  noteMismatch(f: MismatchFinding): void {
    const fp = f.writerFingerprint !== undefined &&
        f.writerFingerprint !== f.localFingerprint
      ? f.writerFingerprint
      : undefined;
    if (
      fp === undefined && !f.unknownFields.length && !f.invalidFields.length
    ) return;
    const key = `m|${f.schema}|${fp ?? ""}|${f.unknownFields.join(",")}|${
      f.invalidFields.join(",")
    }`;
    if (!this.#first(key)) return;
    const m: SchemaMismatch = {
      schema: f.schema,
      path: f.path,
      unknownFields: [...f.unknownFields],
      invalidFields: [...f.invalidFields],
      ...(fp !== undefined
        ? { fingerprint: { writer: fp, local: f.localFingerprint } }
        : {}),
      message: mismatchMessage(f),
    };
    if (this.#mismatches.length < MAX_KEPT_SCHEMA_MISMATCHES) {
      this.#mismatches.push(m);
    } else this.#dropped++;
    for (const l of [...this.#listeners]) {
      try {
        l(m);
      } catch (e) {
        this.#sink?.(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.#sink?.(new SchemaMismatchError(m));
  }

  /** Reports once that items of `schema` cannot be read here, and why. */
  noteUnreadable(schema: SchemaId, path: string, reason: string): void {
    if (!this.#first(`u|${schema}|${reason}`)) return;
    this.#sink?.(new TypeError(`Cannot read ${path}: ${reason}`));
  }
}
