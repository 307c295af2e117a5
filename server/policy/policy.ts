/**
 * The server's policy without writing a program: which schemas it knows (so its JSON
 * views decode app data), who may read and write which repositories, which are public,
 * whether anonymous sessions are issued, who administers sessions, quotas and limits.
 * `capra serve --config capra.config.json` reads it from a JSON file (parse_policy.ts);
 * without a file the {@link DEFAULT_POLICY_CONFIG} applies: the demo todo app works out of
 * the box, and every repository outside `/sys` and `/user` stays open to every session.
 *
 * @module
 */

import type { Schema } from "../../lib/schema/schema.ts";
import type { DeclaredRule } from "../../lib/sync/declared_rules.ts";
import type { ServerLimits } from "../limits/limits.ts";
import type { SignUpPolicy } from "../users/sign_in.ts";

/** The user system's part of a policy (`users` in the config file). */
export interface UserPolicy {
  /** Who may create an account: `"open"`, `"invite"` (the default) or `"closed"`. */
  readonly signUp: SignUpPolicy;
  /** The URL browsers use (passkeys' RP ID and origin); `--public-url` overrides it. */
  readonly publicUrl?: string;
  /** The name authenticators show. */
  readonly rpName?: string;
  /** Lifetime of invites. */
  readonly inviteTtlMs: number;
}

/** A parsed, validated policy. */
export interface ServerPolicy {
  /** Schemas registered on the server database. */
  readonly schemas: readonly Schema[];
  /** Authorization rules per repository pattern, first match decides. */
  readonly rules: readonly DeclaredRule[];
  /** Issue sessions to requests without user credentials. */
  readonly anonymousSessions: boolean;
  /** Users who may revoke any session. */
  readonly admins: readonly string[];
  /** Lifetime of issued sessions. */
  readonly sessionTtlMs: number;
  /** Caps, timeouts and quotas. */
  readonly limits: ServerLimits;
  /** Bearer token `GET /metrics` requires on the main listener. */
  readonly metricsToken?: string;
  /** Sign-up, passkeys, invites. */
  readonly users: UserPolicy;
}

/**
 * The policy of `capra serve` without `--config`, in the config file's own format: the
 * demo app's schemas (todo version 1 kept its position as a number, version 2 as an
 * order key; `defaultPolicy()` adds the upgrade between them, which a file cannot
 * hold), its lists (`/todo/*`) readable and writable by every session and readable
 * without one (public JSON views), shared lists (`/list/*`) for their members only,
 * open sign-up, anonymous sessions on, the default limits.
 * Repositories no rule matches stay open to every session too.
 */
export const DEFAULT_POLICY_CONFIG = {
  schemas: [{
    ns: "todo",
    version: 1,
    fields: {
      text: { type: "string", required: true },
      done: { type: "boolean", default: false },
      order: { type: "number", default: 0 },
      tags: { type: "set" },
    },
  }, {
    ns: "todo",
    version: 2,
    fields: {
      text: { type: "string", required: true },
      done: { type: "boolean", default: false },
      order: { type: "string" },
      tags: { type: "set" },
    },
  }],
  rules: [{
    pattern: "/todo/*",
    read: "session",
    write: "session",
    public: true,
  }, {
    pattern: "/list/*",
    read: "members",
    write: "members",
  }],
  sessions: { anonymous: true },
  users: { signUp: "open" },
} as const;
