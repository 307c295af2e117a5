/**
 * The Hono application as a function of its dependencies. Routes are tested in-process
 * with `app.request()`; only server/main.ts binds a socket.
 *
 * @module
 */

import { Hono } from "hono";
import type { Database } from "../mod.ts";
import type { SigningKey } from "../lib/crypto/keys.ts";
import type { SessionId } from "../lib/crypto/keys.ts";
import { decodeBase64Url, encodeBase64Url } from "../lib/encoding/base64url.ts";
import { parsePath, repoPathOf } from "../lib/path.ts";
import { MAX_SYNC_MESSAGE_BYTES } from "../lib/sync/protocol.ts";
import { answerSyncBytes } from "../lib/sync/sync_round.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { AccessRules, type RepoRule } from "../lib/sync/rules.ts";
import { NonceCache } from "../lib/sync/request_signing.ts";
import type { SessionRecord } from "../lib/core/session.ts";
import { errorResponse, HttpError } from "./errors.ts";
import { itemJson } from "./json_view.ts";
import { ServerMetrics } from "./metrics.ts";
import { SessionService } from "./sessions.ts";
import { SyncService } from "./sync_service.ts";
import { WsHub } from "./ws_hub.ts";
import { readBody, requireSession } from "./auth.ts";
import { mountAssets, type WebAssets } from "./assets.ts";
import { GcScheduler, type GcSchedulerOptions } from "./gc_scheduler.ts";

/** Trust configuration: the root key and the trust built on it. */
export interface ServerSecurity {
  /** The root key; the server database must sign with it (`signer`) too. */
  readonly root: SigningKey;
  /** The server database's trust (`openDatabase({ trust })`). */
  readonly trust: RootSessionTrust;
  /** Binds a new session to a user; null for an anonymous session. */
  readonly authenticate?: (
    request: Request,
  ) => Promise<string | null> | string | null;
  /** The app's authorization rules (the built-in ones always apply). */
  readonly rules?: readonly RepoRule[];
  /** Lifetime of issued sessions. */
  readonly sessionTtlMs?: number;
}

/** What the app needs. */
export interface AppDeps {
  readonly db: Database;
  /** Version string reported by /healthz. */
  readonly version?: string;
  /** Sessions, signed requests and rules; without it sync routes answer 503. */
  readonly security?: ServerSecurity;
  /** Wall clock (tests inject one). */
  readonly now?: () => number;
  /** Upgrades a request to a WebSocket (default `Deno.upgradeWebSocket`). */
  readonly upgradeWebSocket?: (
    request: Request,
  ) => { socket: WebSocket; response: Response };
  /**
   * The web app to serve, by URL path (`/` is the page): your own bundle, e.g.
   * `await loadAssetDir("./public")`. Default: the built-in todo app.
   */
  readonly assets?: WebAssets;
  /**
   * Collects history older than `retainMs` periodically (every 6 hours by default):
   * the scheduler is started and returned as `server.gc`; `await server.gc.stop()` on
   * shutdown. Without it nothing is collected (run a {@link GcScheduler} yourself).
   */
  readonly gc?: GcSchedulerOptions;
}

/** The app and the parts main.ts needs for metrics and shutdown. */
export interface Server {
  readonly app: Hono;
  readonly metrics: ServerMetrics;
  readonly hub?: WsHub;
  readonly sessions?: SessionService;
  /** The history collector, when `gc` was given. */
  readonly gc?: GcScheduler;
}

/** Largest JSON body of `POST /v1/sessions`. */
export const MAX_SESSION_REQUEST_BYTES = 4096;

/** Builds the HTTP application. */
export function createApp(deps: AppDeps): Hono {
  return createServer(deps).app;
}

/** Builds the HTTP application and its services. */
export function createServer(deps: AppDeps): Server {
  const { db, security } = deps;
  const now = deps.now ?? Date.now;
  const metrics = new ServerMetrics();
  const app = new Hono();
  app.onError((err, c) => {
    if (
      err instanceof HttpError && (err.status === 401 || err.status === 403)
    ) {
      metrics.requestsRefused++;
    }
    return errorResponse(err, c);
  });
  app.notFound((c) =>
    c.json({
      code: "not_found",
      message: `No route ${c.req.method} ${c.req.path}`,
    }, 404)
  );
  const rules = new AccessRules(
    security?.trust.root.id ?? db.sessionId,
    security?.rules,
  );
  const nonces = new NonceCache();
  const sessions = security &&
    new SessionService(
      db,
      security.root,
      security.trust,
      security.sessionTtlMs,
      now,
    );
  const sync = security && new SyncService(db, security.trust, rules, metrics);
  const hub = sync && new WsHub(sync, nonces, now);
  if (sync) {
    db.onCommits((repo, nodes) =>
      sync.announce(repo, nodes.map((n) => n.commit.id), undefined)
    );
  }
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) {
      throw new HttpError(503, "no_root_key", "Server has no root key");
    }
    return v;
  };
  /** Signed session of a request, or null for unsigned inspection reads. */
  const readerOf = async (
    req: Request,
    path: string,
  ): Promise<SessionRecord | null> =>
    security && req.headers.has("capra-signature")
      ? await requireSession(
        req,
        path,
        new Uint8Array(0),
        security.trust,
        nonces,
        now(),
      )
      : null;
  const anonymous: SessionRecord = {
    id: "anonymous" as SessionId,
    publicKey: new Uint8Array(32),
  };
  /** The reader as rules see it; throws 403 unless it may read `repo` (and `item`). */
  const checkInspect = (
    repo: string,
    session: SessionRecord | null,
    item?: string,
  ): SessionRecord => {
    const reader = session ?? anonymous;
    const path = repoPathOf(repo);
    if (
      !rules.allows(path, undefined, reader, "read") ||
      (item !== undefined && !rules.allows(path, item, reader, "read"))
    ) {
      throw new HttpError(
        403,
        "forbidden",
        `Reading ${
          item === undefined ? repo : `${repo}/${item}`
        } is not allowed`,
      );
    }
    return reader;
  };

  mountAssets(app, deps.assets);
  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      version: deps.version ?? "dev",
      session: db.sessionId,
      ...(security
        ? { rootPublicKey: encodeBase64Url(security.root.publicKey) }
        : {}),
    }));

  app.get("/metrics", (c) =>
    c.text(
      metrics.render({
        connectedClients: hub?.connected ?? 0,
        openRepositories: db.openRepositoryCount,
        ...memoryGauges(),
      }),
      200,
      { "content-type": "text/plain; version=0.0.4" },
    ));

  app.post("/v1/sessions", async (c) => {
    const s = need(sessions);
    const body = await readBody(c.req.raw, MAX_SESSION_REQUEST_BYTES);
    let publicKey: Uint8Array;
    try {
      const j = JSON.parse(new TextDecoder().decode(body));
      publicKey = decodeBase64Url(String(j?.publicKey));
    } catch {
      throw new HttpError(
        400,
        "bad_request",
        'Expected JSON { "publicKey": base64url }',
      );
    }
    if (publicKey.length !== 32) {
      throw new HttpError(
        400,
        "bad_request",
        "publicKey must be 32 bytes (Ed25519)",
      );
    }
    const userId = (await security!.authenticate?.(c.req.raw)) ?? undefined;
    const { record, encoded } = await s.issue(publicKey, userId);
    metrics.sessionsIssued++;
    return c.json({
      id: record.id,
      record: encodeBase64Url(encoded),
      expiresAt: record.expiresAt,
      ...(record.userId !== undefined ? { userId: record.userId } : {}),
      rootPublicKey: encodeBase64Url(security!.root.publicKey),
    }, 201);
  });

  app.delete("/v1/sessions/:id", async (c) => {
    const s = need(sessions);
    const caller = await requireSession(
      c.req.raw,
      c.req.path,
      new Uint8Array(0),
      security!.trust,
      nonces,
      now(),
    );
    const id = c.req.param("id") as SessionId;
    const target = await s.find(id);
    if (!target) throw new HttpError(404, "not_found", `No session ${id}`);
    const owner = caller.id === id ||
      (caller.userId !== undefined && caller.userId === target.userId);
    if (!owner && !security!.trust.isRoot(caller.id)) {
      throw new HttpError(
        403,
        "forbidden",
        `Session ${caller.id} may not revoke ${id}`,
      );
    }
    await s.revoke(id);
    return c.json({ id, revoked: true });
  });

  app.get("/v1/repos/:type/:repo", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}`;
    const reader = checkInspect(path, await readerOf(c.req.raw, c.req.path));
    const repo = await db.open(path);
    const perItem = rules.perItem(repo.path);
    const keys = repo.keys().filter((k) =>
      !perItem || rules.allows(repo.path, k, reader, "read")
    ).sort();
    return c.json({ repo: path, count: keys.length, keys });
  });

  app.get("/v1/items/:type/:repo/:item", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}/${
      c.req.param("item")
    }`;
    const parsed = parsePath(path);
    checkInspect(
      parsed.repoPath,
      await readerOf(c.req.raw, c.req.path),
      parsed.item,
    );
    const item = await db.load(path);
    if (!item) {
      throw new HttpError(404, "not_found", `Item ${path} does not exist`);
    }
    return c.json(itemJson(item));
  });

  app.post("/v1/sync/:type/:repo", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}`;
    const body = await readBody(c.req.raw, MAX_SYNC_MESSAGE_BYTES);
    if (!security) {
      // Without a root key (embedded tests) sync falls back to the database's own trust.
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
    const session = await requireSession(
      c.req.raw,
      c.req.path,
      body,
      security.trust,
      nonces,
      now(),
    );
    return octets(await sync!.answer(session, body, path));
  });

  app.get("/v1/ws", (c) => {
    const h = need(hub);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(
        426,
        "upgrade_required",
        "Expected a WebSocket upgrade",
      );
    }
    const upgrade = deps.upgradeWebSocket ??
      ((r: Request) => Deno.upgradeWebSocket(r));
    const { socket, response } = upgrade(c.req.raw);
    h.attach(socket);
    return response;
  });

  const gc = deps.gc && new GcScheduler(db, deps.gc);
  gc?.start();
  return {
    app,
    metrics,
    ...(hub ? { hub } : {}),
    ...(sessions ? { sessions } : {}),
    ...(gc ? { gc } : {}),
  };
}

function memoryGauges(): { heapUsedBytes?: number; rssBytes?: number } {
  try {
    const m = Deno.memoryUsage();
    return { heapUsedBytes: m.heapUsed, rssBytes: m.rss };
  } catch {
    return {};
  }
}

function octets(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: { "content-type": "application/octet-stream" },
  });
}
