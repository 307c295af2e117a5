/**
 * Declarative authorization rules: what a server's config file says per repository
 * pattern, compiled into {@link RepoRule}s. A server publishes their write part so
 * clients check the commits they receive against the same rules (every ingress checks).
 *
 * Access levels, for `read` and `write`:
 * - `"session"`: every valid session, anonymous ones included;
 * - `"user"`: sessions bound to a user;
 * - `"members"`: the owner and the members of the repository (a shared repository: it
 *   gets an owner when a user claims it; see the server's `/v1/members` routes);
 * - `{ "users": ["alice", "bob"] }`: sessions of these users;
 * - `"root"`: only the server itself.
 *
 * The server's root session passes every level. `public: true` also lets unsigned
 * requests read (the JSON views).
 *
 * @example
 * ```ts ignore
 * const rules = compileRules(parseDeclaredRules([
 *   { pattern: "/board/*", read: "session", write: { users: ["alice"] }, public: true },
 * ], "config.rules"));
 * ```
 *
 * @module
 */

import type {
  AccessLevel,
  AccessRequest,
  DeclaredRule,
  RepoRule,
} from "./rules.ts";

export type { AccessLevel, DeclaredRule, PublishedRule } from "./rules.ts";

/** Most rules a config (or a server's published list) may hold. */
export const MAX_DECLARED_RULES = 1000;

const PATTERN = /^\/([a-z0-9_-]+|\*)\/([a-z0-9_-]+|\*)$/;
const USER = /^[a-z0-9_-]{1,64}$/;

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + "…" : s;
}

/** Parses an access level; throws a TypeError naming `where` and the value. */
export function parseAccessLevel(v: unknown, where: string): AccessLevel {
  if (v === "session" || v === "user" || v === "members" || v === "root") {
    return v;
  }
  if (
    v !== null && typeof v === "object" && !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    Array.isArray((v as { users?: unknown }).users)
  ) {
    const users = (v as { users: unknown[] }).users;
    for (const u of users) {
      if (typeof u !== "string" || !USER.test(u)) {
        throw new TypeError(
          `${where}.users: ${
            show(u)
          } is not a user name (1-64 characters of [a-z0-9_-])`,
        );
      }
    }
    return { users: [...users] as string[] };
  }
  throw new TypeError(
    `${where} must be "session", "user", "members", "root" or { "users": [...] }, got ${
      show(v)
    }`,
  );
}

/** Checks a repository pattern (`/type/repo`, `*` per segment). */
export function parsePattern(v: unknown, where: string): string {
  if (typeof v !== "string" || !PATTERN.test(v)) {
    throw new TypeError(
      `${where} must be a repository pattern like "/todo/*" (two segments of [a-z0-9_-] or *), got ${
        show(v)
      }`,
    );
  }
  return v;
}

/** Parses the `rules` list of a config; throws a TypeError naming the bad entry. */
export function parseDeclaredRules(v: unknown, where: string): DeclaredRule[] {
  if (!Array.isArray(v)) throw new TypeError(`${where} must be an array`);
  if (v.length > MAX_DECLARED_RULES) {
    throw new RangeError(
      `${where} has ${v.length} rules: at most ${MAX_DECLARED_RULES}`,
    );
  }
  return v.map((entry, i) => {
    const at = `${where}[${i}]`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new TypeError(`${at} must be an object { pattern, read, write }`);
    }
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!["pattern", "read", "write", "public"].includes(k)) {
        throw new TypeError(
          `${at}: unknown key "${k}" (expected pattern, read, write, public)`,
        );
      }
    }
    if (e.public !== undefined && typeof e.public !== "boolean") {
      throw new TypeError(`${at}.public must be true or false`);
    }
    return {
      pattern: parsePattern(e.pattern, `${at}.pattern`),
      ...(e.read !== undefined
        ? { read: parseAccessLevel(e.read, `${at}.read`) }
        : {}),
      ...(e.write !== undefined
        ? { write: parseAccessLevel(e.write, `${at}.write`) }
        : {}),
      ...(e.public === true ? { public: true } : {}),
    };
  });
}

/** True when `level` admits the request's session. */
export function levelAllows(level: AccessLevel, r: AccessRequest): boolean {
  if (r.isRoot) return true;
  if (r.anonymous) return false;
  if (level === "session") return true;
  if (level === "root") return false;
  const user = r.session.userId;
  if (level === "user") return user !== undefined;
  if (level === "members") return r.isMember();
  return user !== undefined && level.users.includes(user);
}

/** Compiles one declared rule. */
export function compileRule(d: DeclaredRule): RepoRule {
  const read = d.read ?? "session", write = d.write ?? "session";
  return {
    pattern: d.pattern,
    declared: d,
    ...(d.public ? { public: true } : {}),
    rule: (r) =>
      r.op === "read"
        ? (r.anonymous ? d.public === true : levelAllows(read, r))
        : levelAllows(write, r),
  };
}

/** Compiles declared rules, in order (the first matching rule decides). */
export function compileRules(rules: readonly DeclaredRule[]): RepoRule[] {
  return rules.map(compileRule);
}

/**
 * The write rules a server published (received with a session), as rules a client
 * applies to received commits: `"server"` entries accept, reads are not checked (the
 * server filters them). Throws a TypeError on a malformed list.
 */
export function rulesFromPublished(v: unknown): RepoRule[] {
  if (!Array.isArray(v)) {
    throw new TypeError("published rules must be an array");
  }
  if (v.length > MAX_DECLARED_RULES) {
    throw new RangeError(
      `server published more than ${MAX_DECLARED_RULES} rules`,
    );
  }
  return v.map((entry, i) => {
    const at = `rules[${i}]`;
    if (entry === null || typeof entry !== "object") {
      throw new TypeError(`${at} must be an object`);
    }
    const e = entry as Record<string, unknown>;
    const pattern = parsePattern(e.pattern, `${at}.pattern`);
    if (e.write === "server") {
      return { pattern, rule: () => true };
    }
    const write = parseAccessLevel(e.write, `${at}.write`);
    return {
      pattern,
      declared: { pattern, write },
      rule: (r) => r.op === "read" || levelAllows(write, r),
    };
  });
}
