/**
 * A replica's session with a server: obtains a root-signed session record for the
 * database's key (`POST /v1/sessions`, signed by that key: proof of possession, see
 * session_request.ts), signs requests with it, sends it (and the records of other authors
 * it relays) along with commits, and trusts only sessions whose records verify against
 * the server's root key. Received commits are checked against the built-in write rules
 * and the rules the server published with the session (every ingress checks). The
 * session response also announces the server's history retention (`retentionMs`,
 * optional): sync follows the server's garbage-collection horizon down to it.
 *
 * @module
 */

import type { SessionDatabase } from "./sync_database.ts";
import {
  decodeSessionRecord,
  type SessionRecord,
  validAt,
} from "../core/session.ts";
import type { SessionId } from "../crypto/keys.ts";
import { decodeBase64Url } from "../encoding/base64url.ts";
import { type FetchLike, HttpSyncTransport } from "./http_transport.ts";
import { type SignedFields, signRequest } from "./request_signing.ts";
import { RootSessionTrust } from "./root_trust.ts";
import { SyncError, type SyncHooks } from "./sync_round.ts";
import { AccessRules } from "./rules.ts";
import { rulesFromPublished } from "./declared_rules.ts";
import { SESSIONS_PATH, signSessionRequest } from "./session_request.ts";
import { parsePath } from "../path.ts";

/** Credentials of a sign-in or sign-up (the `signIn` field of a session request). */
export type SignInCredentials =
  | {
    readonly method: "password";
    readonly name: string;
    readonly password: string;
  }
  | {
    readonly method: "passkey";
    /** From `POST /v1/auth/passkey/options` (purpose "sign-in"). */
    readonly challengeId: string;
    /** The authenticator's answer (`startAuthentication`'s result). */
    readonly response: unknown;
  }
  | {
    readonly method: "sign-up";
    /** The new user's name (an invite brings its own). */
    readonly name?: string;
    /** The token of an invite link (`#invite=…`). */
    readonly invite?: string;
    readonly password?: string;
    readonly passkey?: {
      readonly challengeId: string;
      readonly response: unknown;
    };
  };

/** Options of {@link ServerSession.create}. */
export interface ServerSessionOptions {
  /** Bearer token binding the session to a user (`capra user add`). */
  readonly token?: string;
  /**
   * Signs in (or up) with these credentials: the session is bound to that user and to
   * this database's key, which renews it later without them (until it is revoked).
   */
  readonly signIn?: SignInCredentials;
  /** This device's name, shown in the user's device list. */
  readonly device?: string;
  /** fetch (tests pass a Hono app's `request`). */
  readonly fetch?: FetchLike;
  /** Wall clock. */
  readonly now?: () => number;
}

/** A verified session with a server. */
export class ServerSession {
  /** Sync hooks: admit received session records, attach ours and relayed ones. */
  readonly hooks: SyncHooks;
  #record: SessionRecord;
  #encoded: Uint8Array;
  #renewing: Promise<void> | undefined;
  #retentionMs: number | undefined;
  /** The built-in write rules and those the server published. */
  #rules: AccessRules;

  private constructor(
    readonly db: SessionDatabase,
    readonly baseUrl: string,
    record: SessionRecord,
    encoded: Uint8Array,
    retentionMs: number | undefined,
    readonly trust: RootSessionTrust,
    private readonly fetchFn: FetchLike,
    private readonly now: () => number,
    private readonly options: ServerSessionOptions,
    rules: AccessRules,
  ) {
    this.#record = record;
    this.#encoded = encoded;
    this.#retentionMs = retentionMs;
    this.#rules = rules;
    const retention = () => this.#retentionMs;
    this.hooks = {
      get peerRetentionMs() {
        return retention();
      },
      mayWrite: (key, session) => {
        const p = parsePath(key);
        return this.#rules.allows(p.repoPath, p.item, session, "write");
      },
      admitSessions: (records) => this.admit(records),
      sessionRecords: (ids) => {
        const out: Uint8Array[] = [];
        for (const id of ids) {
          const e = id === this.#record.id
            ? this.#encoded
            : trust.encoded(id as SessionId);
          if (e) out.push(e);
        }
        return out;
      },
    };
  }

  /** Our session record (replaced by {@link ServerSession.renew}). */
  get record(): SessionRecord {
    return this.#record;
  }

  /**
   * The history retention (ms) the server announced: it garbage-collects commits older
   * than that, and this replica follows its horizon down to it. Undefined when the
   * server does not say (it does not collect, or predates the announcement).
   */
  get retentionMs(): number | undefined {
    return this.#retentionMs;
  }

  /** Our encoded session record, sent with requests and commits. */
  get encoded(): Uint8Array {
    return this.#encoded;
  }

  /** The fetch its requests go through. */
  get fetch(): FetchLike {
    return this.fetchFn;
  }

  /** The user this session is bound to (undefined: anonymous). */
  get userId(): string | undefined {
    return this.#record.userId;
  }

  /** The write rules received commits are checked against. */
  get rules(): AccessRules {
    return this.#rules;
  }

  /** Requests a session for `db`'s key from the server at `baseUrl`. */
  static async create(
    db: SessionDatabase,
    baseUrl: string,
    options: ServerSessionOptions = {},
  ): Promise<ServerSession> {
    checkServerUrl(baseUrl);
    checkBearerToken(options.token);
    const fetchFn = options.fetch ?? ((url, init) => fetch(url, init));
    const base = baseUrl.replace(/\/$/, "");
    const now = options.now ?? Date.now;
    const issued = await requestSession(db, base, fetchFn, options.token, now, {
      ...(options.signIn ? { signIn: options.signIn } : {}),
      ...(options.device ? { device: options.device } : {}),
    });
    const trust = new RootSessionTrust(issued.rootPublicKey, now);
    const record = await checkIssued(db, trust, issued.encoded, now());
    const s = new ServerSession(
      db,
      base,
      record,
      issued.encoded,
      issued.retentionMs,
      trust,
      fetchFn,
      now,
      options,
      rulesOf(trust, issued.rules),
    );
    await s.admit([]);
    return s;
  }

  /**
   * Obtains a new session record for the same key (after `session_expired`). Commits
   * signed under the old record stay valid: they were made before its expiry.
   */
  renew(): Promise<void> {
    return this.#renewing ??= (async () => {
      try {
        const issued = await requestSession(
          this.db,
          this.baseUrl,
          this.fetchFn,
          this.options.token,
          this.now,
          this.options.device ? { device: this.options.device } : {},
        );
        const record = await checkIssued(
          this.db,
          this.trust,
          issued.encoded,
          this.now(),
        );
        this.#record = record;
        this.#encoded = issued.encoded;
        this.#retentionMs = issued.retentionMs;
        this.#rules = rulesOf(this.trust, issued.rules);
        await this.admit([]);
      } finally {
        this.#renewing = undefined;
      }
    })();
  }

  /** Verifies session records and lets the database accept their commits. */
  async admit(records: readonly Uint8Array[]): Promise<void> {
    const { admitted } = await this.trust.admit(records);
    if (!this.db.trusted) return;
    this.db.trusted.add(this.trust.root);
    for (const r of admitted) this.db.trusted.add(r);
  }

  /** Signed-request fields for a request. */
  sign(method: string, path: string, body: Uint8Array): Promise<SignedFields> {
    return signRequest(
      { sign: (m) => this.db.sign(m) },
      this.encoded,
      method,
      path,
      body,
      this.now(),
    );
  }

  /**
   * An HTTP transport for `repo` whose requests are signed by this session; it renews the
   * session once and retries when the server answers `session_expired`.
   */
  httpTransport(repo: string): HttpSyncTransport {
    return new HttpSyncTransport(
      this.baseUrl,
      repo,
      this.fetchFn,
      () => ({}),
      (method, path, body) => this.sign(method, path, body),
      () => this.renew(),
    );
  }
}

/** The built-in rules plus what the server published (nothing from older servers). */
function rulesOf(trust: RootSessionTrust, published: unknown): AccessRules {
  let rules;
  try {
    rules = published === undefined ? [] : rulesFromPublished(published);
  } catch (e) {
    throw new SyncError(
      "bad_session",
      `Server published invalid rules: ${(e as Error).message}`,
    );
  }
  return new AccessRules(trust.root.id, rules);
}

/** Asks for a session for `db`'s key, proving possession of it (signed request). */
async function requestSession(
  db: SessionDatabase,
  base: string,
  fetchFn: FetchLike,
  token: string | undefined,
  now: () => number,
  extra: Readonly<Record<string, unknown>> = {},
): Promise<
  {
    encoded: Uint8Array;
    rootPublicKey: Uint8Array;
    rules?: unknown;
    retentionMs?: number;
  }
> {
  const { body, headers } = await signSessionRequest(
    { sign: (m) => db.sign(m), publicKey: db.session.publicKey },
    {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      extra,
      now: now(),
    },
  );
  const res = await fetchFn(`${base}${SESSIONS_PATH}`, {
    method: "POST",
    headers,
    body: body as Uint8Array<ArrayBuffer>,
  });
  const j = await res.json().catch(() => null);
  if (!res.ok) {
    const retry = res.headers.get("retry-after");
    throw new SyncError(
      String(j?.code ?? `http_${res.status}`),
      `Session request to ${base} failed: ${j?.message ?? res.status}${
        retry ? ` (retry after ${retry} s)` : ""
      }`,
      typeof j?.code === "string" ? j.code : undefined,
    );
  }
  const retentionMs = j?.retentionMs;
  return {
    encoded: decodeBase64Url(String(j?.record)),
    rootPublicKey: decodeBase64Url(String(j?.rootPublicKey)),
    ...(j?.rules !== undefined ? { rules: j.rules } : {}),
    ...(Number.isSafeInteger(retentionMs) && retentionMs > 0
      ? { retentionMs }
      : {}),
  };
}

/** Verifies a record the server issued to `db`: root-signed, ours, not expired. */
async function checkIssued(
  db: SessionDatabase,
  trust: RootSessionTrust,
  encoded: Uint8Array,
  nowMs: number,
): Promise<SessionRecord> {
  const { admitted, refused } = await trust.admit([encoded]);
  const record = admitted[0];
  const problem = !record
    ? refused[0]?.reason
    : record.id !== db.sessionId
    ? "another key"
    : !validAt(record, nowMs)
    ? "already expired (clock skew?)"
    : undefined;
  if (problem) {
    throw new SyncError(
      "bad_session",
      `Server returned an invalid session: ${problem}`,
    );
  }
  return decodeSessionRecord(encoded);
}

/** What a bearer token is made of: printable ASCII, no spaces (`capra user add`). */
const BEARER_TOKEN = /^[\x21-\x7e]{1,4096}$/;

/**
 * Throws a TypeError when `token` (if given) cannot be a bearer token, before anything
 * is sent (a header with other characters would fail deep inside fetch).
 */
export function checkBearerToken(token: unknown): void {
  if (token === undefined) return;
  if (typeof token !== "string" || !BEARER_TOKEN.test(token)) {
    const shown = typeof token === "string"
      ? JSON.stringify(token.length > 20 ? `${token.slice(0, 20)}…` : token)
      : typeof token;
    throw new TypeError(
      `Invalid token ${shown}: a bearer token is printable ASCII without spaces, ` +
        "as `capra user add` prints it (leave token out for an anonymous session)",
    );
  }
}

/** Throws a TypeError unless `url` is an http(s) URL. */
function checkServerUrl(url: unknown): void {
  let ok = false;
  try {
    const u = new URL(String(url));
    ok = typeof url === "string" &&
      (u.protocol === "http:" || u.protocol === "https:");
  } catch { /* reported below */ }
  if (!ok) {
    throw new TypeError(
      `Invalid server URL ${
        JSON.stringify(url)
      }: expected "http://host:port" or "https://host"`,
    );
  }
}
