/**
 * Sync protocol messages: a versioned, validated envelope around one repository's
 * reconciliation round. The same bytes travel over every transport (in-memory pair, HTTP
 * rounds, WebSocket). Every limit is a named constant.
 *
 * A message is the canonical MessagePack map
 * `{ v: 1, repo, rc?: bytes, commits?: bytes[], sessions?: bytes[], more?: true,
 * horizon?: int, pruned?: bytes[], error?: { code, message, obsolete?: bytes[] } }` where
 * `rc` is an encoded
 * reconciliation message (see reconcile.ts), `commits` are commit records in their
 * stored, delta-compressed form, `sessions` the encoded session records of their authors
 * (so the receiver can verify), `horizon` the sender's garbage-collection horizon (an
 * HLC timestamp: older history was collected) and `pruned` the 32-byte ids of collected
 * commits that the commits sent still name as parents. An error's `obsolete` lists the
 * ids of received commits ignored because they need history the sender collected (the
 * receiver re-applies them on the current state, see lib/core/refused_edits.ts); readers
 * that predate it ignore it, as they ignore every unknown key of `error`.
 *
 * @module
 */

import { decode, encode, type Packable } from "../encoding/msgpack.ts";
import { type RepoPath, repoPathOf } from "../path.ts";
import { MAX_COMMIT_RECORD_BYTES } from "../core/write_limits.ts";

/** Version of the sync envelope. */
export const SYNC_PROTOCOL_VERSION = 1;
/** Largest encoded sync message accepted. */
export const MAX_SYNC_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Most commit records in one message. */
export const MAX_COMMITS_PER_MESSAGE = 4096;
/** Largest commit record accepted in a message: the largest a local write may produce. */
export { MAX_COMMIT_RECORD_BYTES };
/** Most rounds one sync() runs before giving up (a reconciliation needs O(log n)). */
export const MAX_SYNC_ROUNDS = 64;
/** Most session records in one message. */
export const MAX_SESSIONS_PER_MESSAGE = 1024;
/** Most pruned parent ids in one message. */
export const MAX_PRUNED_PER_MESSAGE = 2 * MAX_COMMITS_PER_MESSAGE;
/** Largest encoded session record accepted in a message. */
export const MAX_SESSION_RECORD_BYTES = 512;

/** An error reported to the peer. */
export interface SyncError {
  readonly code: string;
  readonly message: string;
  /**
   * Ids (32 bytes) of the commits of the peer's message that were ignored because they
   * build on history this side garbage-collected (`obsolete_commits`).
   */
  readonly obsolete?: readonly Uint8Array[];
}

/** One sync message. */
export interface SyncMessage {
  readonly repo: RepoPath;
  /** Encoded reconciliation message; absent when this side has nothing left to ask. */
  readonly rc?: Uint8Array;
  /** Commit records the receiver lacks. */
  readonly commits?: readonly Uint8Array[];
  /** Encoded session records of the commits' authors. */
  readonly sessions?: readonly Uint8Array[];
  /** Set when commits were left out for size: the receiver should reconcile again. */
  readonly more?: boolean;
  /** The sender's garbage-collection horizon (HLC timestamp), when it collected any. */
  readonly horizon?: number;
  /** Ids (32 bytes) of collected commits that `commits` name as parents. */
  readonly pruned?: readonly Uint8Array[];
  readonly error?: SyncError;
}

/** Encodes a sync message. */
export function encodeSyncMessage(m: SyncMessage): Uint8Array {
  const out: Record<string, Packable> = {
    v: SYNC_PROTOCOL_VERSION,
    repo: m.repo,
  };
  if (m.rc) out.rc = m.rc;
  if (m.commits?.length) out.commits = [...m.commits];
  if (m.sessions?.length) out.sessions = [...m.sessions];
  if (m.more) out.more = true;
  if (m.horizon) out.horizon = m.horizon;
  if (m.pruned?.length) out.pruned = [...m.pruned];
  if (m.error) {
    out.error = {
      code: m.error.code,
      message: m.error.message,
      ...(m.error.obsolete?.length ? { obsolete: [...m.error.obsolete] } : {}),
    };
  }
  return encode(out);
}

function bad(what: string): never {
  throw new SyntaxError(`Invalid sync message: ${what}`);
}

/**
 * Decodes and validates a sync message; throws SyntaxError or RangeError. Its byte fields
 * (`rc`, `commits`, `sessions`, `pruned`) are views into `bytes`, not copies: ingest
 * copies the records it keeps, and the other fields are read and dropped.
 */
export function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
  if (!(bytes instanceof Uint8Array)) bad("expected bytes");
  if (bytes.length > MAX_SYNC_MESSAGE_BYTES) {
    throw new RangeError(
      `Sync message of ${bytes.length} bytes exceeds ${MAX_SYNC_MESSAGE_BYTES} bytes`,
    );
  }
  const v = decode(bytes, { maxDepth: 3, views: true });
  if (
    v === null || typeof v !== "object" || Array.isArray(v) ||
    v instanceof Uint8Array
  ) {
    bad("expected a map");
  }
  const m = v as Record<string, Packable>;
  for (const k of Object.keys(m)) {
    if (
      ![
        "v",
        "repo",
        "rc",
        "commits",
        "sessions",
        "more",
        "horizon",
        "pruned",
        "error",
      ].includes(k)
    ) {
      bad(`unknown key "${k}"`);
    }
  }
  if (m.v !== SYNC_PROTOCOL_VERSION) bad(`unsupported version ${String(m.v)}`);
  if (typeof m.repo !== "string") bad("repo must be a string");
  let repo: RepoPath;
  try {
    repo = repoPathOf(m.repo);
  } catch (e) {
    bad((e as Error).message);
  }
  if (m.rc !== undefined && !(m.rc instanceof Uint8Array)) {
    bad("rc must be bytes");
  }
  let commits: Uint8Array[] | undefined;
  if (m.commits !== undefined) {
    if (!Array.isArray(m.commits)) bad("commits must be an array");
    if (m.commits.length > MAX_COMMITS_PER_MESSAGE) {
      throw new RangeError(
        `${m.commits.length} commits exceed the limit of ${MAX_COMMITS_PER_MESSAGE} per message`,
      );
    }
    commits = [];
    for (const c of m.commits) {
      if (!(c instanceof Uint8Array)) bad("every commit must be bytes");
      if (c.length > MAX_COMMIT_RECORD_BYTES) {
        throw new RangeError(`Commit record of ${c.length} bytes is too large`);
      }
      commits.push(c);
    }
  }
  let sessions: Uint8Array[] | undefined;
  if (m.sessions !== undefined) {
    if (!Array.isArray(m.sessions)) bad("sessions must be an array");
    if (m.sessions.length > MAX_SESSIONS_PER_MESSAGE) {
      throw new RangeError(
        `${m.sessions.length} sessions exceed the limit of ${MAX_SESSIONS_PER_MESSAGE} per message`,
      );
    }
    sessions = [];
    for (const s of m.sessions) {
      if (!(s instanceof Uint8Array) || s.length > MAX_SESSION_RECORD_BYTES) {
        bad(
          `every session must be bytes of at most ${MAX_SESSION_RECORD_BYTES}`,
        );
      }
      sessions.push(s);
    }
  }
  if (m.more !== undefined && m.more !== true) {
    bad("more must be true when present");
  }
  if (
    m.horizon !== undefined &&
    !(Number.isSafeInteger(m.horizon) && (m.horizon as number) > 0)
  ) bad("horizon must be a positive integer");
  let pruned: Uint8Array[] | undefined;
  if (m.pruned !== undefined) {
    if (!Array.isArray(m.pruned)) bad("pruned must be an array");
    if (m.pruned.length > MAX_PRUNED_PER_MESSAGE) {
      throw new RangeError(
        `${m.pruned.length} pruned ids exceed the limit of ${MAX_PRUNED_PER_MESSAGE} per message`,
      );
    }
    pruned = [];
    for (const id of m.pruned) {
      if (!(id instanceof Uint8Array) || id.length !== 32) {
        bad("every pruned id must be 32 bytes");
      }
      pruned.push(id);
    }
  }
  let error: SyncError | undefined;
  if (m.error !== undefined) {
    const e = m.error as Record<string, Packable>;
    if (
      e === null || typeof e !== "object" || typeof e.code !== "string" ||
      typeof e.message !== "string"
    ) bad("error must be { code, message }");
    let obsolete: Uint8Array[] | undefined;
    if (e.obsolete !== undefined) {
      if (!Array.isArray(e.obsolete)) bad("error.obsolete must be an array");
      if (e.obsolete.length > MAX_COMMITS_PER_MESSAGE) {
        throw new RangeError(
          `${e.obsolete.length} obsolete ids exceed the limit of ${MAX_COMMITS_PER_MESSAGE} per message`,
        );
      }
      for (const id of e.obsolete) {
        if (!(id instanceof Uint8Array) || id.length !== 32) {
          bad("every obsolete id must be 32 bytes");
        }
      }
      obsolete = e.obsolete as Uint8Array[];
    }
    error = {
      code: e.code,
      message: e.message,
      ...(obsolete ? { obsolete } : {}),
    };
  }
  return {
    repo,
    ...(m.rc !== undefined ? { rc: m.rc as Uint8Array } : {}),
    ...(commits ? { commits } : {}),
    ...(sessions ? { sessions } : {}),
    ...(m.more ? { more: true } : {}),
    ...(m.horizon !== undefined ? { horizon: m.horizon as number } : {}),
    ...(pruned ? { pruned } : {}),
    ...(error ? { error } : {}),
  };
}
