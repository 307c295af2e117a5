/**
 * Capra's sync server as a library: build the Hono app around your own database, root key
 * and rules, then serve it with `Deno.serve` (this is what `capra serve` does).
 *
 * @example
 * ```ts ignore
 * import { openDatabase, RootSessionTrust } from "@capra/capra";
 * import {
 *   createServer,
 *   loadOrCreateRootKey,
 *   serveGuarded,
 * } from "@capra/capra/server";
 *
 * const { key: root } = await loadOrCreateRootKey("./capra-root.key");
 * const trust = new RootSessionTrust(root.publicKey);
 * const db = await openDatabase({ dir: "./data", signer: root, trust });
 * const server = createServer({ db, security: { root, trust } });
 * // As `capra serve` does: behind the connection guard (timeouts, per-address caps).
 * await serveGuarded(server, { hostname: "127.0.0.1", port: 8787 });
 * ```
 *
 * @module
 */

export {
  type AppDeps,
  createApp,
  createServer,
  MAX_SESSION_REQUEST_BYTES,
  type Server,
  type ServerSecurity,
} from "./app.ts";
export {
  defaultRootKeyPath,
  loadOrCreateRootKey,
  ROOT_KEY_FILE,
} from "./root_key.ts";
export { addUser, bearerAuthenticator } from "./users.ts";
export { UserService, type UserSystemOptions } from "./users/user_service.ts";
export type { SignUpPolicy } from "./users/sign_in.ts";
export { DEFAULT_SESSION_TTL_MS, SESSIONS_REPO } from "./sessions.ts";
export { ServerMetrics } from "./metrics.ts";
export { HttpError } from "./errors.ts";
export {
  DEFAULT_GC_INTERVAL_MS,
  FIRST_GC_DELAY_MS,
  type GcPass,
  GcScheduler,
  type GcSchedulerOptions,
} from "./gc_scheduler.ts";
export {
  ASSET_TYPES,
  loadAssetDir,
  type WebAsset,
  type WebAssets,
} from "./assets.ts";
export { type Authenticator } from "./auth.ts";
export {
  DEFAULT_LIMITS,
  limitsWith,
  type ServerLimits,
} from "./limits/limits.ts";
export {
  type GuardedServeOptions,
  type GuardedServer,
  parseListenAddress,
  serveGuarded,
} from "./serve.ts";
export { loadPolicy, parsePolicy } from "./policy/parse_policy.ts";
export { DEFAULT_POLICY_CONFIG, type ServerPolicy } from "./policy/policy.ts";
export { applyPolicy, defaultPolicy } from "./policy/apply_policy.ts";
export {
  type AccessLevel,
  compileRules,
  type DeclaredRule,
  type PublishedRule,
} from "../lib/sync/declared_rules.ts";
