/**
 * The testing entry: engine internals that Capra's own tests and tools (the CLI under
 * server/cli/) need and the public entry (mod.ts) does not offer. It is not in the
 * `exports` of deno.json, so packages that depend on Capra cannot import it; the import
 * check (scripts/check_imports.ts) makes tests/ and server/cli/ reach lib/core, lib/query
 * and lib/database only through mod.ts or this file.
 *
 * @module
 */

export {
  CHECKPOINT_MIN_HISTORY,
  CHECKPOINT_MIN_RECORDS,
} from "./lib/core/checkpoint.ts";
export {
  type OpenRepository,
  openRepositoryOf,
} from "./lib/core/open_repository.ts";
export {
  type CheckpointRecord,
  COMMIT_RECORD_HEADER,
  decodeCheckpointRecord,
  decodeHorizonRecord,
  type HorizonRecord,
  RecordKind,
} from "./lib/core/records.ts";
export {
  decodeSessionRecord,
  encodeSessionRecord,
  type SessionRecord,
  sessionSignedBytes,
} from "./lib/core/session.ts";
