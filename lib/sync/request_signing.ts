/**
 * Signed requests. Every sync request carries its session record, a time, a random nonce,
 * the SHA-256 of its body and an Ed25519 signature by the session key over method, path,
 * body hash, time and nonce. The receiver checks the record (root signature, revocation,
 * and that it has not expired: an expired session's requests fail with
 * `session_expired`, and the client must obtain a new session), the signature, the time
 * window and that the nonce was not seen before.
 *
 * Because the body hash travels in a header, a server authenticates a request from its
 * headers alone ({@link verifyRequestHeaders}) before it reads a byte of the body, then
 * checks the body against the signed hash while streaming it under its cap.
 *
 * @module
 */

import { sha256 } from "../crypto/sha256.ts";
import { type SigningKey, verifySignature } from "../crypto/keys.ts";
import { decodeBase64Url, encodeBase64Url } from "../encoding/base64url.ts";
const utf8 = new TextEncoder();
import {
  decodeSessionRecord,
  type SessionRecord,
  validAt,
} from "../core/session.ts";
import type { RootSessionTrust } from "./root_trust.ts";

/** Header names of a signed request. */
export const SIGNED_HEADERS = {
  session: "capra-session",
  time: "capra-time",
  nonce: "capra-nonce",
  signature: "capra-signature",
  /** Base64url SHA-256 of the body (what the signature covers). */
  bodyHash: "capra-body-sha256",
} as const;
/** Largest accepted difference between a request's time and the receiver's clock. */
export const MAX_REQUEST_SKEW_MS = 60_000;
/** Random bytes of a nonce. */
export const NONCE_BYTES = 16;
/** Most remembered nonces per session (within the skew window). */
export const MAX_NONCES_PER_SESSION = 20_000;
/** Most sessions whose nonces are remembered. */
export const MAX_NONCE_SESSIONS = 50_000;
/** Largest encoded session record accepted in a header. */
export const MAX_SESSION_HEADER_CHARS = 1024;

/** Base64url SHA-256 of a request body, as signed and sent in `capra-body-sha256`. */
export function bodyHashOf(body: Uint8Array): string {
  return encodeBase64Url(sha256(body));
}

/** A refused request: `status` is 401 (authentication) or 429 (too many). */
export class RequestAuthError extends Error {
  constructor(
    readonly status: 401 | 429,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "RequestAuthError";
  }
}

/** The bytes a request signature covers. */
export function requestSignedBytes(
  method: string,
  path: string,
  body: Uint8Array | { readonly hash: string },
  time: number,
  nonce: string,
): Uint8Array {
  const hash = body instanceof Uint8Array ? bodyHashOf(body) : body.hash;
  return utf8.encode(
    `capra-request-v1\n${method.toUpperCase()}\n${path}\n${hash}\n${time}\n${nonce}`,
  );
}

/** Signed-request fields (sent as headers over HTTP, inside the hello over WebSocket). */
export type SignedFields = Record<
  typeof SIGNED_HEADERS[keyof typeof SIGNED_HEADERS],
  string
>;

/**
 * Signs a request with the session key.
 *
 * @example
 * ```ts ignore
 * const headers = await signRequest(key, record, "POST", "/v1/sync/todo/a", body);
 * await fetch(url, { method: "POST", headers, body });
 * ```
 */
export async function signRequest(
  signer: Pick<SigningKey, "sign">,
  sessionRecord: Uint8Array,
  method: string,
  path: string,
  body: Uint8Array,
  now: number = Date.now(),
): Promise<SignedFields> {
  const nonceBytes = new Uint8Array(NONCE_BYTES);
  crypto.getRandomValues(nonceBytes);
  const nonce = encodeBase64Url(nonceBytes);
  const hash = bodyHashOf(body);
  const sig = await signer.sign(
    requestSignedBytes(method, path, { hash }, now, nonce),
  );
  return {
    [SIGNED_HEADERS.session]: encodeBase64Url(sessionRecord),
    [SIGNED_HEADERS.time]: String(now),
    [SIGNED_HEADERS.nonce]: nonce,
    [SIGNED_HEADERS.signature]: encodeBase64Url(sig),
    [SIGNED_HEADERS.bodyHash]: hash,
  };
}

/** Remembers recent nonces per session to refuse replays; bounded in size and time. */
export class NonceCache {
  readonly #bySession = new Map<string, Map<string, number>>();

  /** Records a nonce; false when it was already seen (a replay). */
  remember(
    sessionId: string,
    nonce: string,
    time: number,
    now: number,
  ): boolean {
    let m = this.#bySession.get(sessionId);
    if (!m) {
      if (this.#bySession.size >= MAX_NONCE_SESSIONS) this.#prune(now);
      if (this.#bySession.size >= MAX_NONCE_SESSIONS) {
        throw new RequestAuthError(
          429,
          "too_many_sessions",
          "Too many active sessions, retry later",
        );
      }
      m = new Map();
      this.#bySession.set(sessionId, m);
    }
    if (m.has(nonce)) return false;
    if (m.size >= MAX_NONCES_PER_SESSION) {
      for (const [n, t] of m) {
        if (t < now - MAX_REQUEST_SKEW_MS) m.delete(n);
      }
      if (m.size >= MAX_NONCES_PER_SESSION) {
        throw new RequestAuthError(
          429,
          "too_many_requests",
          `More than ${MAX_NONCES_PER_SESSION} requests within ${MAX_REQUEST_SKEW_MS} ms`,
        );
      }
    }
    m.set(nonce, time);
    return true;
  }

  #prune(now: number): void {
    for (const [id, m] of this.#bySession) {
      for (const [n, t] of m) {
        if (t < now - MAX_REQUEST_SKEW_MS) m.delete(n);
      }
      if (m.size === 0) this.#bySession.delete(id);
    }
  }

  /** Sessions with remembered nonces. */
  get size(): number {
    return this.#bySession.size;
  }
}

function fail(code: string, message: string): never {
  throw new RequestAuthError(401, code, message);
}

/** A request authenticated from its headers; its body is still to be checked. */
export interface AuthenticatedHeaders {
  readonly session: SessionRecord;
  /** The signed body hash (base64url SHA-256): the body must hash to exactly this. */
  readonly bodyHash: string;
}

/**
 * Verifies a signed request from its fields alone (the body is not needed: its hash is
 * the signed `capra-body-sha256` field) and returns its session and that hash; throws
 * {@link RequestAuthError}. The caller must then check that the body hashes to
 * `bodyHash` (see {@link verifyRequest} for a body already in memory).
 */
export async function verifyRequestHeaders(
  get: (name: string) => string | null | undefined,
  method: string,
  path: string,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<AuthenticatedHeaders> {
  const bodyHash = get(SIGNED_HEADERS.bodyHash);
  if (!bodyHash) {
    fail(
      "unsigned",
      `Request must be signed: header ${SIGNED_HEADERS.bodyHash} (base64url SHA-256 of the body) is required`,
    );
  }
  if (!BODY_HASH.test(bodyHash)) {
    fail("bad_signature", `Malformed ${SIGNED_HEADERS.bodyHash} field`);
  }
  const session = await verifySigned(
    get,
    method,
    path,
    bodyHash,
    trust,
    nonces,
    now,
  );
  return { session, bodyHash };
}

/** A base64url SHA-256 (43 characters). */
const BODY_HASH = /^[A-Za-z0-9_-]{43}$/;

/**
 * Verifies a signed request whose body is in memory and returns its session; throws
 * {@link RequestAuthError}. `get` reads a field (a header) by name; the body hash field
 * is optional here, and must match the body when present.
 */
export async function verifyRequest(
  get: (name: string) => string | null | undefined,
  method: string,
  path: string,
  body: Uint8Array,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<SessionRecord> {
  const hash = bodyHashOf(body);
  const claimed = get(SIGNED_HEADERS.bodyHash);
  if (claimed && claimed !== hash) {
    fail("bad_signature", "The body does not match its signed hash");
  }
  return await verifySigned(get, method, path, hash, trust, nonces, now);
}

async function verifySigned(
  get: (name: string) => string | null | undefined,
  method: string,
  path: string,
  bodyHash: string,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<SessionRecord> {
  const recordText = get(SIGNED_HEADERS.session);
  const timeText = get(SIGNED_HEADERS.time);
  const nonce = get(SIGNED_HEADERS.nonce);
  const sigText = get(SIGNED_HEADERS.signature);
  if (!recordText || !timeText || !nonce || !sigText) {
    fail(
      "unsigned",
      `Request must be signed: headers ${
        Object.values(SIGNED_HEADERS).join(", ")
      } are required`,
    );
  }
  if (recordText.length > MAX_SESSION_HEADER_CHARS) {
    fail("bad_session", "Session record is too large");
  }
  const time = checkTime(timeText, now);
  let recordBytes: Uint8Array, sig: Uint8Array;
  try {
    recordBytes = decodeBase64Url(recordText);
    sig = decodeBase64Url(sigText);
    if (decodeBase64Url(nonce).length !== NONCE_BYTES) throw new Error();
  } catch {
    fail("bad_signature", "Malformed session, nonce or signature field");
  }
  const { admitted, refused } = await trust.admit([recordBytes]);
  const session = admitted[0];
  if (!session) {
    let revoked = false;
    try {
      revoked = trust.isRevoked(decodeSessionRecord(recordBytes).id);
    } catch { /* malformed: reported below */ }
    fail(
      revoked ? "session_revoked" : "bad_session",
      `Session refused: ${refused[0]?.reason}`,
    );
  }
  if (!validAt(session, now)) {
    fail(
      "session_expired",
      `Session ${session.id} expired at ${
        new Date(session.expiresAt!).toISOString()
      }: obtain a new session (POST /v1/sessions) and retry`,
    );
  }
  const ok = await verifySignature(
    session.publicKey,
    sig,
    requestSignedBytes(method, path, { hash: bodyHash }, time, nonce),
  );
  if (!ok) fail("bad_signature", "Request signature does not verify");
  if (!nonces.remember(session.id, nonce, time, now)) {
    fail("replayed_request", `Nonce ${nonce} was already used`);
  }
  return session;
}

/** The request time of `timeText`, refused when outside the skew window. */
export function checkTime(timeText: string, now: number): number {
  const time = Number(timeText);
  if (!Number.isSafeInteger(time)) fail("bad_time", `Invalid time ${timeText}`);
  if (Math.abs(time - now) > MAX_REQUEST_SKEW_MS) {
    fail(
      "stale_request",
      `Request time ${time} is more than ${MAX_REQUEST_SKEW_MS} ms from server time ${now}`,
    );
  }
  return time;
}
