/**
 * What the user routes share: the user system of a server (503 without one), signed
 * requests with small JSON bodies (authenticated from the headers before the body is
 * read), the caller's user, and JSON body fields with clear 400 errors.
 *
 * @module
 */

import type { Context } from "hono";
import type { SessionRecord } from "../../lib/core/session.ts";
import { requireSignedHeaders } from "../auth.ts";
import { readBody } from "../body.ts";
import type { SecuredContext, ServerContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import type { UserService } from "../users/user_service.ts";

/** Largest JSON body of a user route. */
export const MAX_AUTH_BODY_BYTES = 16 * 1024;

/** The secured context and its user system; 503 when the server has none. */
export function userSystem(
  ctx: ServerContext,
): { s: SecuredContext; users: UserService } {
  const s = ctx.secured;
  if (!s?.users) {
    throw new HttpError(
      503,
      "no_user_system",
      "This server has no user system (createServer({ security: { users } }))",
    );
  }
  return { s, users: s.users };
}

/** A verified signed request: its session and its JSON body (empty object without). */
export interface SignedCall {
  readonly session: SessionRecord;
  readonly body: Record<string, unknown>;
  readonly isRoot: boolean;
}

/**
 * Verifies a signed request (headers first, then a body of at most
 * {@link MAX_AUTH_BODY_BYTES} that must hash to the signed value) and parses its JSON
 * body.
 */
export async function signedCall(
  c: Context,
  ctx: ServerContext,
): Promise<SignedCall> {
  const { s, users } = userSystem(ctx);
  const { session, bodyHash } = await requireSignedHeaders(
    c.req.raw,
    c.req.path,
    s.trust,
    ctx.nonces,
    ctx.now(),
  );
  users.devices.seen(session.id);
  const lease = ctx.budget.lease();
  let bytes: Uint8Array;
  try {
    bytes = await readBody(c.req.raw, {
      max: MAX_AUTH_BODY_BYTES,
      lease,
      timeoutMs: ctx.limits.bodyTimeoutMs,
      expectHash: bodyHash,
    });
  } finally {
    lease.release();
  }
  let body: Record<string, unknown> = {};
  if (bytes.length) {
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new HttpError(400, "bad_request", "The body must be JSON");
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new HttpError(400, "bad_request", "The body must be a JSON object");
    }
    body = v as Record<string, unknown>;
  }
  return { session, body, isRoot: s.trust.isRoot(session.id) };
}

/** The signed-in user of a call; 403 `not_signed_in` for an anonymous session. */
export function userOf(call: SignedCall): string {
  const user = call.session.userId;
  if (user === undefined) {
    throw new HttpError(
      403,
      "not_signed_in",
      "This needs a signed-in user: sign in first (POST /v1/sessions with signIn)",
    );
  }
  return user;
}

/** The root, or an admin user; 403 otherwise. Returns who acts ("root" or the name). */
export async function requireAdmin(
  call: SignedCall,
  users: UserService,
): Promise<string> {
  if (call.isRoot) return "root";
  const user = userOf(call);
  if (!await users.isAdmin(user)) {
    throw new HttpError(403, "forbidden", `User ${user} is not an admin`);
  }
  return user;
}

/** A string field of a JSON body; 400 naming it otherwise. */
export function stringField(
  body: Record<string, unknown>,
  name: string,
  max = 256,
): string {
  const v = body[name];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new HttpError(
      400,
      "bad_request",
      `"${name}" must be a string of 1-${max} characters, got ${
        JSON.stringify(v)?.slice(0, 60) ?? String(v)
      }`,
    );
  }
  return v;
}

/** Refuses unknown keys of a JSON body (a typo never goes unnoticed). */
export function onlyKeys(
  body: Record<string, unknown>,
  keys: readonly string[],
): void {
  for (const k of Object.keys(body)) {
    if (!keys.includes(k)) {
      throw new HttpError(
        400,
        "bad_request",
        `Unknown field "${k}" (expected ${keys.join(", ") || "none"})`,
      );
    }
  }
}
