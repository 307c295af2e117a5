/**
 * Request authentication of the HTTP routes: signed requests verified from their headers
 * (before any body is read), signed requests with an empty body, bearer users, and the
 * anonymous reader of public repositories; each failure mapped to an HTTP error.
 *
 * @module
 */

import type { SessionRecord } from "../lib/core/session.ts";
import type { SessionId } from "../lib/crypto/keys.ts";
import {
  type AuthenticatedHeaders,
  type NonceCache,
  RequestAuthError,
  SIGNED_HEADERS,
  verifyRequest,
  verifyRequestHeaders,
} from "../lib/sync/request_signing.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { ANONYMOUS_READER } from "../lib/sync/rules.ts";
import { HttpError } from "./errors.ts";

/** Authenticates a request as a user: the user's name, null without credentials. */
export type Authenticator = (
  request: Request,
  /** The verified JSON body of a session request (signed by the key it registers). */
  body?: Readonly<Record<string, unknown>>,
) => Promise<string | null> | string | null;

function mapped(e: unknown): never {
  if (e instanceof RequestAuthError) {
    throw new HttpError(e.status, e.code, e.message);
  }
  throw e;
}

/** Verifies a signed request whose body is `body`; 401 (or 429) with a clear code. */
export async function requireSession(
  req: Request,
  path: string,
  body: Uint8Array,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<SessionRecord> {
  try {
    return await verifyRequest(
      (name) => req.headers.get(name),
      req.method,
      path,
      body,
      trust,
      nonces,
      now,
    );
  } catch (e) {
    mapped(e);
  }
}

/**
 * Verifies a signed request from its headers alone, before its body is read; the body
 * must then hash to the returned `bodyHash`.
 */
export async function requireSignedHeaders(
  req: Request,
  path: string,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<AuthenticatedHeaders> {
  try {
    return await verifyRequestHeaders(
      (name) => req.headers.get(name),
      req.method,
      path,
      trust,
      nonces,
      now,
    );
  } catch (e) {
    mapped(e);
  }
}

/** Who a read or a revocation comes from. */
export type Caller =
  | { readonly kind: "session"; readonly session: SessionRecord }
  | {
    readonly kind: "user";
    readonly userId: string;
    readonly session: SessionRecord;
  }
  | { readonly kind: "anonymous"; readonly session: SessionRecord };

/** The session a bearer user reads as (rules see its `userId`). */
export function bearerReader(userId: string): SessionRecord {
  return {
    id: `user:${userId}` as SessionId,
    publicKey: new Uint8Array(32),
    userId,
  };
}

/**
 * The caller of a request without a body: a signed session when it carries the signed
 * headers, a bearer user when it carries `Authorization`, else the anonymous reader.
 */
export async function callerOf(
  req: Request,
  path: string,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
  authenticate: Authenticator | undefined,
): Promise<Caller> {
  if (req.headers.has(SIGNED_HEADERS.signature)) {
    return {
      kind: "session",
      session: await requireSession(
        req,
        path,
        new Uint8Array(0),
        trust,
        nonces,
        now,
      ),
    };
  }
  if (req.headers.has("authorization") && authenticate) {
    const userId = await authenticate(req);
    if (userId !== null) {
      return { kind: "user", userId, session: bearerReader(userId) };
    }
  }
  return { kind: "anonymous", session: ANONYMOUS_READER };
}
