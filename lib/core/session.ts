/**
 * Session records: the public key a replica signs commits with. Each repository log
 * records the sessions whose commits it holds, so a log can be verified on its own.
 * Servers later add a root signature, a user and an expiry (sync layer).
 *
 * @module
 */

import { decode, encode, type Packable } from "../encoding/msgpack.ts";
import {
  PUBLIC_KEY_BYTES,
  type SessionId,
  sessionIdOf,
  SIGNATURE_BYTES,
} from "../crypto/keys.ts";

/** A session: a replica's public key, optionally vouched for by a server root key. */
export interface SessionRecord {
  readonly id: SessionId;
  readonly publicKey: Uint8Array;
  /** Expiry, wall-clock ms; absent for sessions that do not expire (local replicas). */
  readonly expiresAt?: number;
  /** The user the session acts for, when authenticated. */
  readonly userId?: string;
  /** Root signature over the record's other fields, when issued by a server. */
  readonly rootSig?: Uint8Array;
}

/** The canonical bytes a root signature covers. */
export function sessionSignedBytes(
  s: Omit<SessionRecord, "id" | "rootSig">,
): Uint8Array {
  const m: Record<string, Packable> = { pk: s.publicKey };
  if (s.expiresAt !== undefined) m.exp = s.expiresAt;
  if (s.userId !== undefined) m.user = s.userId;
  return encode(m);
}

/** Encodes a session record. */
export function encodeSessionRecord(s: SessionRecord): Uint8Array {
  const m: Record<string, Packable> = { pk: s.publicKey };
  if (s.expiresAt !== undefined) m.exp = s.expiresAt;
  if (s.userId !== undefined) m.user = s.userId;
  if (s.rootSig !== undefined) m.root = s.rootSig;
  return encode(m);
}

/** Decodes and validates a session record; throws a SyntaxError on malformed bytes. */
export function decodeSessionRecord(bytes: Uint8Array): SessionRecord {
  const v = decode(bytes, { maxDepth: 2 }) as Record<string, Packable>;
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new SyntaxError("Invalid session record: expected a map");
  }
  const pk = v.pk;
  if (!(pk instanceof Uint8Array) || pk.length !== PUBLIC_KEY_BYTES) {
    throw new SyntaxError("Invalid session record: pk must be 32 bytes");
  }
  const exp = v.exp, user = v.user, root = v.root;
  if (exp !== undefined && (typeof exp !== "number" || !Number.isFinite(exp))) {
    throw new SyntaxError("Invalid session record: exp must be a number");
  }
  if (user !== undefined && typeof user !== "string") {
    throw new SyntaxError("Invalid session record: user must be a string");
  }
  if (
    root !== undefined &&
    (!(root instanceof Uint8Array) || root.length !== SIGNATURE_BYTES)
  ) {
    throw new SyntaxError("Invalid session record: root must be 64 bytes");
  }
  return {
    id: sessionIdOf(pk),
    publicKey: pk,
    ...(exp !== undefined ? { expiresAt: exp } : {}),
    ...(user !== undefined ? { userId: user } : {}),
    ...(root !== undefined ? { rootSig: root } : {}),
  };
}

/**
 * Decides which sessions' commits a database accepts from peers. The default trusts only
 * sessions added explicitly; the sync layer supplies one that checks root signatures.
 */
export interface SessionTrust {
  /** The trusted session with this id, or undefined (unknown, expired or revoked). */
  lookup(id: SessionId, nowMs: number): SessionRecord | undefined;
  /**
   * The session that may have authored a commit made at `commitMs` (wall-clock ms of its
   * timestamp): known, not revoked, and not yet expired at `commitMs`, whatever the time
   * now. Ingest uses it when present (see ingest.ts), else `lookup(id, now)`.
   */
  author?(id: SessionId, commitMs: number): SessionRecord | undefined;
}

/** True when `a` stays valid longer than `b` (no expiry is forever). */
export function expiresLater(a: SessionRecord, b: SessionRecord): boolean {
  if (b.expiresAt === undefined) return false;
  return a.expiresAt === undefined || a.expiresAt > b.expiresAt;
}

/** True when `session` had not expired at `ms` (valid while `ms < expiresAt`). */
export function validAt(session: SessionRecord, ms: number): boolean {
  return session.expiresAt === undefined || ms < session.expiresAt;
}

/** A set of explicitly trusted sessions. */
export class TrustedSessions implements SessionTrust {
  readonly #sessions = new Map<SessionId, SessionRecord>();

  /** Trusts a session (by record or raw public key). */
  add(session: SessionRecord | Uint8Array): SessionRecord {
    const record = session instanceof Uint8Array
      ? { id: sessionIdOf(session), publicKey: session.slice() }
      : session;
    const known = this.#sessions.get(record.id);
    // Records of one key only ever extend its validity (remove() first to shorten it).
    if (known && !expiresLater(record, known)) return known;
    this.#sessions.set(record.id, record);
    return record;
  }

  /** Stops trusting a session. */
  remove(id: SessionId): boolean {
    return this.#sessions.delete(id);
  }

  lookup(id: SessionId, nowMs: number): SessionRecord | undefined {
    const s = this.#sessions.get(id);
    return s && validAt(s, nowMs) ? s : undefined;
  }

  author(id: SessionId, commitMs: number): SessionRecord | undefined {
    return this.lookup(id, commitMs);
  }
}
