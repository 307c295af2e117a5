/**
 * What the route modules share: the database, the trust and rules, the services, the
 * limits and their counters. Built once by `createServer` (app.ts).
 *
 * @module
 */

import type { Context } from "hono";
import type { Database } from "../mod.ts";
import type { SigningKey } from "../lib/crypto/keys.ts";
import type { NonceCache } from "../lib/sync/request_signing.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import type { AccessRules } from "../lib/sync/rules.ts";
import type { Authenticator } from "./auth.ts";
import type { ByteBudget } from "./limits/byte_budget.ts";
import { addressKey, type ServerLimits } from "./limits/limits.ts";
import type { KeyedRateLimiter } from "./limits/token_bucket.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { SessionQuotas } from "./quotas.ts";
import type { SessionService } from "./sessions.ts";
import type { SyncService } from "./sync_service.ts";
import type { WsHub } from "./ws_hub.ts";
import type { UserService } from "./users/user_service.ts";

/** The secured part of a server (absent without a root key). */
export interface SecuredContext {
  readonly root: SigningKey;
  readonly trust: RootSessionTrust;
  readonly authenticate?: Authenticator;
  readonly sessions: SessionService;
  readonly sync: SyncService;
  readonly hub: WsHub;
  /** Issue sessions to requests without user credentials. */
  readonly anonymousSessions: boolean;
  /** Users who may revoke any session. */
  readonly admins: ReadonlySet<string>;
  /** History retention of the GC (ms), announced in session responses. */
  readonly retentionMs?: number;
  readonly issuesPerAddress: KeyedRateLimiter;
  readonly issuesPerUser: KeyedRateLimiter;
  /** The user system (users, devices, invites, members), when the server has one. */
  readonly users?: UserService;
  /**
   * Binds a session request to a user (the user system's sign-in, else `authenticate`);
   * null for an anonymous session.
   */
  readonly signIn: (
    request: Request,
    body: Readonly<Record<string, unknown>>,
    address: string,
  ) => Promise<string | null>;
  /** True when `user` may manage every session (policy admins, admin role). */
  readonly isAdmin: (user: string | undefined) => Promise<boolean>;
}

/** Shared state of the routes. */
export interface ServerContext {
  readonly db: Database;
  readonly now: () => number;
  readonly limits: ServerLimits;
  readonly metrics: ServerMetrics;
  readonly rules: AccessRules;
  readonly nonces: NonceCache;
  readonly budget: ByteBudget;
  readonly quotas: SessionQuotas;
  readonly secured?: SecuredContext;
}

/**
 * The client address of a request, as limits count it: from the connection info Deno
 * passes as Hono's env (`remoteAddr`), "unknown" in-process.
 */
export function clientAddress(c: Context): string {
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return addressKey(env?.remoteAddr?.hostname);
}
