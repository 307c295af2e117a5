/**
 * `POST /v1/sessions` (issuance, signed by the key it registers) and
 * `DELETE /v1/sessions/:id` (revocation by the session itself, its user, the root or an
 * admin user).
 *
 * Issuance order, cheapest refusal first: the per-address rate limit (before any byte of
 * the body is read), the small pre-authentication body cap and the in-flight budget, the
 * proof of possession, the user's credentials (or the anonymous switch), the per-user
 * rate limit, then the per-key serialized issue itself.
 *
 * @module
 */

import type { Hono } from "hono";
import type { SessionId } from "../../lib/crypto/keys.ts";
import { encodeBase64Url } from "../../lib/encoding/base64url.ts";
import { RequestAuthError } from "../../lib/sync/request_signing.ts";
import {
  SESSIONS_PATH,
  verifySessionRequest,
} from "../../lib/sync/session_request.ts";
import { callerOf } from "../auth.ts";
import { readBody } from "../body.ts";
import {
  clientAddress,
  type SecuredContext,
  type ServerContext,
} from "../context.ts";
import { HttpError } from "../errors.ts";
import { tooMany } from "../quotas.ts";

/** Largest session request body when the server has a user system (sign-in answers). */
export const MAX_SIGN_IN_BODY_BYTES = 16 * 1024;

function needSecured(ctx: ServerContext): SecuredContext {
  if (!ctx.secured) {
    throw new HttpError(503, "no_root_key", "Server has no root key");
  }
  return ctx.secured;
}

/** Mounts the session routes. */
export function mountSessionRoutes(app: Hono, ctx: ServerContext): void {
  app.post(SESSIONS_PATH, async (c) => {
    const s = needSecured(ctx);
    const address = clientAddress(c);
    const wait = s.issuesPerAddress.take(address);
    if (wait > 0) {
      ctx.metrics.requestsThrottled++;
      throw tooMany(
        "too_many_sessions",
        `More than ${ctx.limits.sessionsPerAddressPerMinute} session requests per minute from ${address}`,
        wait,
      );
    }
    const lease = ctx.budget.lease();
    let body: Uint8Array;
    try {
      body = await readBody(c.req.raw, {
        // A passkey's attestation does not fit the small cap: sign-ins get a larger one.
        max: s.users
          ? Math.max(ctx.limits.preAuthBodyBytes, MAX_SIGN_IN_BODY_BYTES)
          : ctx.limits.preAuthBodyBytes,
        lease,
        timeoutMs: ctx.limits.bodyTimeoutMs,
      });
    } finally {
      lease.release();
    }
    let verified;
    try {
      verified = await verifySessionRequest(
        (name) => c.req.header(name),
        body,
        ctx.nonces,
        ctx.now(),
      );
    } catch (e) {
      if (e instanceof RequestAuthError) {
        throw new HttpError(e.status, e.code, e.message);
      }
      if (e instanceof SyntaxError) {
        throw new HttpError(400, "bad_request", e.message);
      }
      throw e;
    }
    const userId = (await s.signIn(c.req.raw, verified.body, address)) ??
      undefined;
    if (userId === undefined && !s.anonymousSessions) {
      throw new HttpError(
        401,
        "credentials_required",
        s.users
          ? "This server issues sessions to users only: sign in (signIn in the body) or send Authorization: Bearer <token>"
          : "This server issues sessions to users only: send Authorization: Bearer <token>",
      );
    }
    if (userId !== undefined) {
      const w = s.issuesPerUser.take(userId);
      if (w > 0) {
        ctx.metrics.requestsThrottled++;
        throw tooMany(
          "too_many_sessions",
          `More than ${ctx.limits.sessionsPerUserPerMinute} session requests per minute for user ${userId}`,
          w,
        );
      }
    }
    const collectedBefore = s.sessions.collected;
    const { record, encoded } = await s.sessions.issue(
      verified.publicKey,
      userId,
    );
    ctx.metrics.sessionsCollected += s.sessions.collected - collectedBefore;
    ctx.metrics.sessionsIssued++;
    await s.users?.issued(record, verified.body);
    return c.json({
      id: record.id,
      record: encodeBase64Url(encoded),
      expiresAt: record.expiresAt,
      ...(record.userId !== undefined ? { userId: record.userId } : {}),
      rootPublicKey: encodeBase64Url(s.root.publicKey),
      rules: ctx.rules.published(),
      ...(s.retentionMs ? { retentionMs: s.retentionMs } : {}),
    }, 201);
  });

  app.delete(`${SESSIONS_PATH}/:id`, async (c) => {
    const s = needSecured(ctx);
    const caller = await callerOf(
      c.req.raw,
      c.req.path,
      s.trust,
      ctx.nonces,
      ctx.now(),
      s.authenticate,
    );
    if (caller.kind === "anonymous") {
      throw new HttpError(
        401,
        "unsigned",
        "Revoking a session needs a signed request or a bearer user",
      );
    }
    const id = c.req.param("id") as SessionId;
    const target = await s.sessions.find(id);
    if (!target) throw new HttpError(404, "not_found", `No session ${id}`);
    const user = caller.session.userId;
    const allowed = caller.session.id === id ||
      (user !== undefined &&
        (user === target.userId || await s.isAdmin(user))) ||
      s.trust.isRoot(caller.session.id);
    if (!allowed) {
      throw new HttpError(
        403,
        "forbidden",
        `${
          caller.kind === "user"
            ? `User ${user}`
            : `Session ${caller.session.id}`
        } may not revoke ${id}`,
      );
    }
    if (s.users) await s.users.revokeDevice(id);
    else await s.sessions.revoke(id);
    return c.json({ id, revoked: true });
  });
}
