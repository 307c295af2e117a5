/** Test helpers: a secured Capra server in-process (app.request) or on 127.0.0.1:0. */
import { type Database, openDatabase } from "../mod.ts";
import { generateSigningKey, type SigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { createServer, type Server } from "../server/app.ts";
import type { RepoRule } from "../lib/sync/rules.ts";
import type { ServerLimits } from "../server/limits/limits.ts";
import { EVERYTHING } from "./_helpers.ts";
import type { UserSystemOptions } from "../server/users/user_service.ts";

/** A secured server database and app. */
export interface TestServer extends Server {
  readonly db: Database;
  readonly root: SigningKey;
  readonly trust: RootSessionTrust;
  /** fetch that goes through `app.request` (no socket). */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
}

/** Options of {@link secureServer}. */
export interface SecureServerOptions {
  readonly root?: SigningKey;
  readonly dir?: string;
  readonly rules?: readonly RepoRule[];
  readonly authenticate?: (
    req: Request,
  ) => string | null | Promise<string | null>;
  readonly sessionTtlMs?: number;
  readonly now?: () => number;
  /** Limits (default: the server defaults, with generous session issuance limits). */
  readonly limits?: Partial<ServerLimits>;
  readonly anonymousSessions?: boolean;
  readonly admins?: readonly string[];
  readonly metricsToken?: string;
  /** The server database's wall clock (tests that replay a seed pass a virtual one). */
  readonly clock?: () => number;
  /**
   * The history retention the server announces (and may compact with: the database
   * accepts retentions down to it).
   */
  readonly retentionMs?: number;
  /** The user system (users, sign-in, devices, members). */
  readonly users?: UserSystemOptions;
}

/**
 * Issuance limits of test servers that are not about limits: many replicas of one test
 * ask for sessions from one (in-process) address within a second.
 */
export const GENEROUS_ISSUANCE: Partial<ServerLimits> = {
  sessionsPerAddressPerMinute: 100_000,
  sessionsPerUserPerMinute: 100_000,
  signInPerAddressPerMinute: 100_000,
  signInPerNamePerMinute: 100_000,
};

/** Opens a server database signed by a root key with a RootSessionTrust. */
export async function secureServer(
  options: SecureServerOptions = {},
): Promise<TestServer> {
  const root = options.root ?? (await generateSigningKey()).key;
  const trust = new RootSessionTrust(root.publicKey, options.now);
  const clock = {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.retentionMs ? { minRetentionMs: options.retentionMs } : {}),
  };
  const db = options.dir
    ? await openDatabase({
      dir: options.dir,
      signer: root,
      trust,
      schemas: [EVERYTHING],
      ...clock,
    })
    : await openDatabase({
      memory: true,
      signer: root,
      trust,
      schemas: [EVERYTHING],
      ...clock,
    });
  const server = createServer({
    db,
    ...(options.now ? { now: options.now } : {}),
    limits: options.limits ?? GENEROUS_ISSUANCE,
    ...(options.metricsToken ? { metricsToken: options.metricsToken } : {}),
    security: {
      root,
      trust,
      ...(options.rules ? { rules: options.rules } : {}),
      ...(options.authenticate ? { authenticate: options.authenticate } : {}),
      ...(options.sessionTtlMs ? { sessionTtlMs: options.sessionTtlMs } : {}),
      ...(options.retentionMs ? { retentionMs: options.retentionMs } : {}),
      ...(options.anonymousSessions !== undefined
        ? { anonymousSessions: options.anonymousSessions }
        : {}),
      ...(options.admins ? { admins: options.admins } : {}),
      ...(options.users ? { users: options.users } : {}),
    },
  });
  return {
    ...server,
    db,
    root,
    trust,
    fetch: async (url, init) => await server.app.request(url, init),
  };
}

/** A server listening on 127.0.0.1 (port 0) until `close()`. */
export interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `server` on 127.0.0.1 (port 0 picks a free one). */
export function listen(server: Server, port = 0): Promise<Listening> {
  const ac = new AbortController();
  return new Promise((resolve) => {
    const s = Deno.serve({
      hostname: "127.0.0.1",
      port,
      signal: ac.signal,
      onListen: ({ port }) =>
        resolve({
          url: `http://127.0.0.1:${port}`,
          close: async () => {
            server.hub?.closeAll();
            ac.abort();
            await s.finished;
          },
        }),
    }, server.app.fetch);
  });
}

/** A client database with the test schemas. */
export function clientDb(): Promise<Database> {
  return openDatabase({ memory: true, schemas: [EVERYTHING] });
}
