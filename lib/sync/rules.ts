/**
 * Authorization rules: `(repo, itemKey, session, op) → boolean`, per repository pattern.
 * Built-in rules always apply and cannot be loosened by an app: `/sys/*` is readable and
 * writable only by the root session, `/user/<userId>` only by that user. Other
 * repositories are open to every valid session unless an app rule says otherwise.
 *
 * Unsigned requests (the JSON views without a session) read as {@link ANONYMOUS_READER},
 * and only repositories whose first matching app rule says `public: true` admit them;
 * `/sys/*` and `/user/*` never do.
 *
 * Reads are asked twice: once per repository (`itemKey` absent: may the session sync or
 * subscribe to it at all?) and, where an app rule matches, once per item: the server then
 * reconciles only the commits of items the session may read (and its own), so it never
 * receives or learns the ids of the others. An item-level rule should therefore allow
 * the repository-level question whenever it allows some item.
 *
 * @module
 */

import type { RepoPath } from "../path.ts";
import type { SessionRecord } from "../core/session.ts";
import type { SessionId } from "../crypto/keys.ts";

/** What a rule is asked about. */
export type AccessOp = "read" | "write";

/** One access question. `itemKey` is absent for repository-level reads. */
export interface AccessRequest {
  readonly repo: RepoPath;
  readonly itemKey?: string;
  readonly session: SessionRecord;
  /** True when the session is the server root. */
  readonly isRoot: boolean;
  /** True for an unsigned reader ({@link ANONYMOUS_READER}) of a public repository. */
  readonly anonymous: boolean;
  readonly op: AccessOp;
  /**
   * True when the session's user owns or is a member of `repo` (shared repositories,
   * see {@link MembershipLookup}); false without a user or without a membership source.
   */
  readonly isMember: () => boolean;
}

/** Who belongs to which shared repository (the server's `/sys/members`). */
export interface MembershipLookup {
  /** True when `user` owns or is a member of `repo`. */
  isMember(repo: string, user: string): boolean;
}

/** Who may do something. */
export type AccessLevel =
  | "session"
  | "user"
  | "members"
  | "root"
  | { readonly users: readonly string[] };

/** One rule of a config file. */
export interface DeclaredRule {
  /** `/type/repo`, `*` matching one segment. */
  readonly pattern: string;
  /** Who may read (default `"session"`). */
  readonly read?: AccessLevel;
  /** Who may write (default `"session"`). */
  readonly write?: AccessLevel;
  /** Unsigned requests may read too (default false). */
  readonly public?: boolean;
}

/**
 * A write rule as a server publishes it; `"server"` stands for a rule only the server
 * can evaluate (a function): clients accept what it matches.
 */
export interface PublishedRule {
  readonly pattern: string;
  readonly write: AccessLevel | "server";
}

/** A rule: true allows. */
export type AccessRule = (request: AccessRequest) => boolean;

/** A rule for the repositories matching `pattern` (`/type/repo`, `*` = one segment). */
export interface RepoRule {
  readonly pattern: string;
  readonly rule: AccessRule;
  /**
   * Unsigned requests may read these repositories (the rule is still asked, with
   * `anonymous: true`). Never applies to `/sys/*` and `/user/*`.
   */
  readonly public?: boolean;
  /**
   * The declarative form of this rule (see declared_rules.ts), when it has one: servers
   * publish it so clients check received commits against the same write rule.
   */
  readonly declared?: DeclaredRule;
}

/**
 * The reader of an unsigned request. Its id cannot collide with a real session id
 * (those are 22 base64url characters).
 */
export const ANONYMOUS_READER: SessionRecord = Object.freeze({
  id: "anonymous" as SessionId,
  publicKey: new Uint8Array(32),
});

/** Rules that always apply, before the app's. */
export const BUILTIN_RULES: readonly RepoRule[] = [
  { pattern: "/sys/*", rule: (r) => r.isRoot },
  {
    pattern: "/user/*",
    rule: (r) => r.isRoot || r.session.userId === r.repo.split("/")[2],
  },
];

/** True when `repo` matches `pattern`. */
export function matchesPattern(pattern: string, repo: string): boolean {
  const p = pattern.split("/"), s = repo.split("/");
  if (p.length !== s.length) return false;
  return p.every((seg, i) => seg === "*" || seg === s[i]);
}

/**
 * Evaluates the built-in rules and the app's rules. Every matching built-in rule must
 * allow; then the first matching app rule decides (allow when none matches).
 *
 * @example
 * ```ts ignore
 * const rules = new AccessRules(root.id, [
 *   { pattern: "/board/*", rule: (r) => r.op === "read" || !!r.session.userId },
 * ]);
 * rules.allows("/board/x", "a", session, "write");
 * ```
 */
export class AccessRules {
  constructor(
    readonly rootSessionId: string,
    readonly appRules: readonly RepoRule[] = [],
    /** Owners and members of shared repositories (the `"members"` level). */
    readonly membership?: MembershipLookup,
  ) {}

  /**
   * True when `repo`'s first matching app rule gives its members access (read or
   * write): a shared repository, which gets an owner when a user claims it.
   */
  isShared(repo: RepoPath): boolean {
    const first = this.appRules.find((r) => matchesPattern(r.pattern, repo));
    return first?.declared?.read === "members" ||
      first?.declared?.write === "members";
  }

  /**
   * True when reads of `repo` may differ per item, so a server must ask {@link allows}
   * for every item key (an app rule matches `repo`; the built-in rules decide per
   * repository).
   */
  perItem(repo: RepoPath): boolean {
    return this.appRules.some((r) => matchesPattern(r.pattern, repo));
  }

  /**
   * True when unsigned requests may read `repo`: its first matching app rule is public
   * and no built-in rule covers it.
   */
  isPublic(repo: RepoPath): boolean {
    if (BUILTIN_RULES.some((r) => matchesPattern(r.pattern, repo))) {
      return false;
    }
    const first = this.appRules.find((r) => matchesPattern(r.pattern, repo));
    return first?.public === true;
  }

  /**
   * May `session` do `op` on `repo` (and item `itemKey`)? {@link ANONYMOUS_READER} may
   * only read, and only public repositories.
   */
  allows(
    repo: RepoPath,
    itemKey: string | undefined,
    session: SessionRecord,
    op: AccessOp,
  ): boolean {
    const anonymous = session === ANONYMOUS_READER ||
      session.id === ANONYMOUS_READER.id;
    if (anonymous && (op !== "read" || !this.isPublic(repo))) return false;
    const request: AccessRequest = {
      repo,
      ...(itemKey !== undefined ? { itemKey } : {}),
      session,
      isRoot: !anonymous && session.id === this.rootSessionId,
      anonymous,
      op,
      isMember: () => {
        const user = session.userId;
        return !anonymous && user !== undefined &&
          this.membership?.isMember(repo, user) === true;
      },
    };
    for (const r of BUILTIN_RULES) {
      if (matchesPattern(r.pattern, repo) && !r.rule(request)) return false;
    }
    for (const r of this.appRules) {
      if (matchesPattern(r.pattern, repo)) return r.rule(request);
    }
    return true;
  }

  /**
   * The write rules as clients can apply them, in order: declarative rules as they are,
   * function rules as `"server"` (only the server can evaluate them; a client accepts
   * what they match).
   */
  published(): PublishedRule[] {
    return this.appRules.map((r) => {
      const write = r.declared ? r.declared.write ?? "session" : "server";
      // Clients do not know who belongs to a shared repository: the server decides.
      return {
        pattern: r.pattern,
        write: write === "members" ? "server" : write,
      };
    });
  }
}
