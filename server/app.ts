/**
 * The Hono application as a function of its dependencies. Routes are tested in-process
 * with `app.request()`; only server/main.ts binds a socket (through serve.ts).
 *
 * @module
 */

import { type Context, Hono } from "hono";
import type { Database } from "../mod.ts";
import type { SigningKey } from "../lib/crypto/keys.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { AccessRules, type RepoRule } from "../lib/sync/rules.ts";
import { NonceCache } from "../lib/sync/request_signing.ts";
import type { Authenticator } from "./auth.ts";
import type { SecuredContext, ServerContext } from "./context.ts";
import { errorResponse, HttpError } from "./errors.ts";
import { ByteBudget } from "./limits/byte_budget.ts";
import { limitsWith, type ServerLimits } from "./limits/limits.ts";
import { Admission, LoopLagMonitor } from "./limits/admission.ts";
import { takeGuardedUpgrade } from "./net/ws_upgrade.ts";
import { KeyedRateLimiter } from "./limits/token_bucket.ts";
import { ServerMetrics } from "./metrics.ts";
import { SessionQuotas } from "./quotas.ts";
import { SessionService } from "./sessions.ts";
import { SyncService } from "./sync_service.ts";
import { WsHub } from "./ws_hub.ts";
import { mountAssets, type WebAssets } from "./assets.ts";
import { GcScheduler, type GcSchedulerOptions } from "./gc_scheduler.ts";
import { securityHeaders } from "./security_headers.ts";
import { mountSessionRoutes } from "./routes/session_routes.ts";
import { mountSyncRoutes } from "./routes/sync_routes.ts";
import { mountViewRoutes } from "./routes/view_routes.ts";
import { bearerMatches, metricsHandler } from "./routes/metrics_route.ts";
import { mountAuthRoutes } from "./routes/auth_routes.ts";
import { mountAdminRoutes } from "./routes/auth_admin_routes.ts";
import { mountMemberRoutes } from "./routes/auth_member_routes.ts";
import { UserService, type UserSystemOptions } from "./users/user_service.ts";

/** Trust configuration: the root key and the trust built on it. */
export interface ServerSecurity {
  /** The root key; the server database must sign with it (`signer`) too. */
  readonly root: SigningKey;
  /** The server database's trust (`openDatabase({ trust })`). */
  readonly trust: RootSessionTrust;
  /**
   * Binds a new session to a user; null for an anonymous session. It receives the
   * request and the session request's JSON body, both covered by the signature of the
   * key being registered.
   */
  readonly authenticate?: Authenticator;
  /** The app's authorization rules (the built-in ones always apply). */
  readonly rules?: readonly RepoRule[];
  /** Lifetime of issued sessions. */
  readonly sessionTtlMs?: number;
  /** History retention of the GC (ms), announced in session responses: clients follow it. */
  readonly retentionMs?: number;
  /** Issue sessions to requests without user credentials (default true). */
  readonly anonymousSessions?: boolean;
  /** Users who may revoke any session. */
  readonly admins?: readonly string[];
  /**
   * The user system: users in `/sys/users` signing in with passkeys or passwords,
   * invites, devices and members of shared repositories (README "Users and sign-in").
   * Without it, only `authenticate` binds sessions to users.
   */
  readonly users?: UserSystemOptions;
}

/**
 * A cluster membership (server/cluster/member.ts): it replicates what this server
 * accepts and says when the server has caught up with the other members.
 */
export interface ClusterLink {
  /** Receives the services every accepted commit and session passes through. */
  attach(services: { sync: SyncService; sessions: SessionService }): void;
  /** Readiness and state: `/healthz` answers 503 while `ready` is false. */
  health(): { readonly ready: boolean };
  /** Prometheus text of the cluster series, appended to `/metrics`. */
  metricsText(): string;
}

/** What the app needs. */
export interface AppDeps {
  readonly db: Database;
  /** Version string reported by /healthz. */
  readonly version?: string;
  /** Sessions, signed requests and rules; without it sync routes answer 503. */
  readonly security?: ServerSecurity;
  /** Caps, timeouts and quotas (defaults: DEFAULT_LIMITS). */
  readonly limits?: Partial<ServerLimits>;
  /**
   * Bearer token `GET /metrics` requires on this app. Without it the app serves no
   * metrics: serve {@link Server.metricsApp} on a separate address instead.
   */
  readonly metricsToken?: string;
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
  /** Cluster membership (`capra serve --nats`); needs `security`. */
  readonly cluster?: ClusterLink;
}

/** The app and the parts main.ts needs for metrics and shutdown. */
export interface Server {
  readonly app: Hono;
  /** `GET /metrics` alone, without a token: for a separate (private) listen address. */
  readonly metricsApp: Hono;
  readonly metrics: ServerMetrics;
  /** The limits in force. */
  readonly limits: ServerLimits;
  readonly hub?: WsHub;
  readonly sessions?: SessionService;
  /**
   * Admission control; its lag monitor runs only once started (serve.ts starts it), so
   * in-process apps admit everything.
   */
  readonly admission: Admission;
  /** The history collector, when `gc` was given. */
  readonly gc?: GcScheduler;
  /** The user system, when `security.users` is given. */
  readonly users?: UserService;
}

/** Largest JSON body of `POST /v1/sessions` (the default pre-authentication cap). */
export const MAX_SESSION_REQUEST_BYTES = 4096;

/** Builds the HTTP application. */
export function createApp(deps: AppDeps): Hono {
  return createServer(deps).app;
}

function countRefusal(metrics: ServerMetrics, err: unknown): void {
  if (!(err instanceof HttpError)) return;
  if (err.status === 401 || err.status === 403) metrics.requestsRefused++;
  else if (err.status === 429) metrics.requestsThrottled++;
  else if (err.status === 503 && err.code === "server_busy") {
    metrics.requestsShed++;
  }
}

/** Builds the HTTP application and its services. */
export function createServer(deps: AppDeps): Server {
  const { db, security } = deps;
  const now = deps.now ?? Date.now;
  const limits = limitsWith(deps.limits);
  const metrics = new ServerMetrics();
  const app = new Hono();
  app.use("*", securityHeaders());
  app.onError((err, c) => {
    countRefusal(metrics, err);
    return errorResponse(err, c);
  });
  app.notFound((c) =>
    c.json({
      code: "not_found",
      message: `No route ${c.req.method} ${c.req.path}`,
    }, 404)
  );
  const nonces = new NonceCache();
  const quotas = new SessionQuotas(limits, now);
  const admission = new Admission(new LoopLagMonitor(), {
    connectLagMs: limits.admissionConnectLagMs,
    writeLagMs: limits.admissionWriteLagMs,
    maxIngestsInFlight: limits.maxIngestsInFlight,
  });
  let secured: SecuredContext | undefined;
  let rules: AccessRules;
  if (security) {
    const sessions = new SessionService(db, security.root, security.trust, {
      ...(security.sessionTtlMs !== undefined
        ? { ttlMs: security.sessionTtlMs }
        : {}),
      now,
      collectAfterMs: limits.sessionCollectAfterMs,
      sweepIntervalMs: limits.sessionSweepIntervalMs,
    });
    const users = security.users
      ? new UserService(
        db,
        sessions,
        limits,
        {
          ...security.users,
          admins: [...security.users.admins ?? [], ...security.admins ?? []],
        },
        now,
        security.root,
      )
      : undefined;
    rules = new AccessRules(
      security.trust.root.id,
      security.rules,
      users?.members,
    );
    const sync = new SyncService(
      db,
      security.trust,
      rules,
      metrics,
      quotas,
      admission,
    );
    const hub = new WsHub(sync, nonces, now, {
      helloTimeoutMs: limits.wsHelloTimeoutMs,
      idleTimeoutMs: limits.wsIdleTimeoutMs,
      preHelloFrameBytes: limits.wsPreHelloFrameBytes,
      pushBufferBytes: limits.wsPushBufferBytes,
      stuckTimeoutMs: limits.wsStuckTimeoutMs,
      ...(users ? { onHello: (s) => users.devices.seen(s.id) } : {}),
    });
    metrics.moreGauges = () => ({
      laggingClients: hub.lagging,
      unsentPushBytes: hub.bufferedBytes,
      eventLoopLagMs: admission.lag.medianMs,
      ingestsInFlight: admission.ingestsInFlight,
    });
    if (users) users.closeSockets = (id) => hub.closeSession(id);
    const admins = new Set(security.admins ?? []);
    const custom = security.authenticate;
    db.onCommits((repo, nodes) =>
      sync.announce(repo, nodes.map((n) => n.commit.id), undefined)
    );
    // No request is judged before /sys/sessions is loaded into the trust: a session
    // revoked before a restart is refused from the first request on.
    app.use("/v1/*", async (_c, next) => {
      await sessions.ready();
      await next();
    });
    deps.cluster?.attach({ sync, sessions });
    secured = {
      root: security.root,
      trust: security.trust,
      // Bearer users read the JSON views and revoke sessions through this hook.
      ...(custom
        ? { authenticate: custom }
        : users
        ? { authenticate: (r: Request) => users.authenticate(r, undefined, "") }
        : {}),
      sessions,
      sync,
      hub,
      anonymousSessions: security.anonymousSessions ?? true,
      admins,
      ...(security.retentionMs ? { retentionMs: security.retentionMs } : {}),
      ...(users ? { users } : {}),
      signIn: async (request, body, address) =>
        (custom ? await custom(request, body) : null) ??
          (users ? await users.authenticate(request, body, address) : null),
      isAdmin: async (user) =>
        user !== undefined &&
        (admins.has(user) ||
          (users !== undefined && await users.isAdmin(user))),
      issuesPerAddress: new KeyedRateLimiter(
        limits.sessionsPerAddressPerMinute,
        now,
      ),
      issuesPerUser: new KeyedRateLimiter(limits.sessionsPerUserPerMinute, now),
    };
  } else rules = new AccessRules(db.sessionId);
  const ctx: ServerContext = {
    db,
    now,
    limits,
    metrics,
    rules,
    nonces,
    budget: new ByteBudget(limits.inFlightBytes),
    quotas,
    ...(secured ? { secured } : {}),
  };

  mountAssets(app, deps.assets);
  app.get("/healthz", (c) => {
    // A cluster member is not ready (503: load balancers keep clients away) until it
    // has caught up with the others; it serves requests meanwhile all the same.
    const cluster = deps.cluster?.health();
    return c.json({
      status: cluster && !cluster.ready ? "catching_up" : "ok",
      version: deps.version ?? "dev",
      session: db.sessionId,
      ...(security
        ? { rootPublicKey: encodeBase64Url(security.root.publicKey) }
        : {}),
      ...(cluster ? { cluster } : {}),
    }, cluster && !cluster.ready ? 503 : 200);
  });
  const serverMetrics = metricsHandler(ctx);
  const cluster = deps.cluster;
  const renderMetrics = !cluster ? serverMetrics : async (c: Context) => {
    const base = serverMetrics(c);
    return new Response((await base.text()) + cluster.metricsText(), {
      status: base.status,
      headers: { "content-type": base.headers.get("content-type") ?? "" },
    });
  };
  app.get("/metrics", (c) => {
    if (deps.metricsToken === undefined) {
      throw new HttpError(
        404,
        "not_found",
        "Metrics are not served here: give the server a metrics token or a separate metrics address",
      );
    }
    if (!bearerMatches(c.req.header("authorization"), deps.metricsToken)) {
      throw new HttpError(
        401,
        "bad_token",
        "GET /metrics needs Authorization: Bearer <metrics token>",
      );
    }
    return renderMetrics(c);
  });
  mountSessionRoutes(app, ctx);
  mountAuthRoutes(app, ctx);
  mountAdminRoutes(app, ctx);
  mountMemberRoutes(app, ctx);
  mountViewRoutes(app, ctx);
  mountSyncRoutes(
    app,
    ctx,
    deps.upgradeWebSocket ??
      ((r: Request) =>
        // A socket the connection guard runs itself (serve.ts), else Deno.serve's.
        takeGuardedUpgrade(r) ??
          Deno.upgradeWebSocket(r, {
            idleTimeout: Math.max(
              1,
              Math.round(limits.wsPingIntervalMs / 1000),
            ),
          })),
  );

  const metricsApp = new Hono();
  metricsApp.use("*", securityHeaders());
  metricsApp.get("/metrics", renderMetrics);

  const gc = deps.gc && new GcScheduler(db, deps.gc);
  gc?.start();
  return {
    app,
    metricsApp,
    metrics,
    limits,
    admission,
    ...(secured ? { hub: secured.hub, sessions: secured.sessions } : {}),
    ...(gc ? { gc } : {}),
    ...(secured?.users ? { users: secured.users } : {}),
  };
}
