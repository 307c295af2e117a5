/**
 * `POST /v1/sync/:type/:repo` (one reconciliation round) and `GET /v1/ws` (the
 * WebSocket). A sync request is authenticated from its headers before its body is read:
 * session record, time, nonce and the signature over the declared body hash; then the
 * session's byte quota is checked against the declared length, the body is streamed
 * under the hard cap, the in-flight budget and the read timeout while it is hashed, and
 * only a body that matches the signed hash is decoded.
 *
 * @module
 */

import type { Hono } from "hono";
import { answerSyncBytes } from "../../lib/sync/sync_round.ts";
import { MAX_SYNC_MESSAGE_BYTES } from "../../lib/sync/protocol.ts";
import { requireSignedHeaders } from "../auth.ts";
import { readBody } from "../body.ts";
import type { ServerContext } from "../context.ts";
import { HttpError } from "../errors.ts";

function octets(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: { "content-type": "application/octet-stream" },
  });
}

/** Mounts the sync routes. */
export function mountSyncRoutes(
  app: Hono,
  ctx: ServerContext,
  upgradeWebSocket: (req: Request) => { socket: WebSocket; response: Response },
): void {
  const { db } = ctx;

  app.post("/v1/sync/:type/:repo", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}`;
    const s = ctx.secured;
    const lease = ctx.budget.lease();
    try {
      if (!s) {
        // Without a root key (embedded tests) sync falls back to the database's own trust.
        const body = await readBody(c.req.raw, {
          max: MAX_SYNC_MESSAGE_BYTES,
          lease,
          timeoutMs: ctx.limits.bodyTimeoutMs,
        });
        return octets(
          await answerSyncBytes(async (repo) => {
            if (repo !== path) {
              throw new HttpError(
                400,
                "bad_request",
                `Message for ${repo} posted to ${path}`,
              );
            }
            return await db.open(repo);
          }, body),
        );
      }
      const { session, bodyHash } = await requireSignedHeaders(
        c.req.raw,
        c.req.path,
        s.trust,
        ctx.nonces,
        ctx.now(),
      );
      s.users?.devices.seen(session.id);
      const declared = Number(c.req.header("content-length") ?? 0);
      if (declared > 0) ctx.quotas.checkBytes(session.id, declared);
      const body = await readBody(c.req.raw, {
        max: Math.min(ctx.limits.syncBodyBytes, MAX_SYNC_MESSAGE_BYTES),
        lease,
        timeoutMs: ctx.limits.bodyTimeoutMs,
        expectHash: bodyHash,
      });
      return octets(await s.sync.answer(session, body, path));
    } finally {
      lease.release();
    }
  });

  app.get("/v1/ws", (c) => {
    const s = ctx.secured;
    if (!s) throw new HttpError(503, "no_root_key", "Server has no root key");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(
        426,
        "upgrade_required",
        "Expected a WebSocket upgrade",
      );
    }
    const { socket, response } = upgradeWebSocket(c.req.raw);
    s.hub.attach(socket);
    return response;
  });
}
