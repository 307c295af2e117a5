/**
 * A replica's session with a server: obtains a root-signed session record for the
 * database's key (`POST /v1/sessions`), signs requests with it, sends it (and the records
 * of other authors it relays) along with commits, and trusts only sessions whose records
 * verify against the server's root key.
 *
 * @module
 */

import type { Database } from "../core/database.ts";
import { decodeSessionRecord, type SessionRecord } from "../core/session.ts";
import type { SessionId } from "../crypto/keys.ts";
import { decodeBase64Url, encodeBase64Url } from "../encoding/base64url.ts";
import { type FetchLike, HttpSyncTransport } from "./http_transport.ts";
import { type SignedFields, signRequest } from "./request_signing.ts";
import { RootSessionTrust } from "./root_trust.ts";
import { SyncError, type SyncHooks } from "./sync_round.ts";

/** Options of {@link ServerSession.create}. */
export interface ServerSessionOptions {
  /** Bearer token binding the session to a user (`capra user add`). */
  readonly token?: string;
  /** fetch (tests pass a Hono app's `request`). */
  readonly fetch?: FetchLike;
  /** Wall clock. */
  readonly now?: () => number;
}

/** A verified session with a server. */
export class ServerSession {
  /** Sync hooks: admit received session records, attach ours and relayed ones. */
  readonly hooks: SyncHooks;

  private constructor(
    readonly db: Database,
    readonly baseUrl: string,
    readonly record: SessionRecord,
    readonly encoded: Uint8Array,
    readonly trust: RootSessionTrust,
    private readonly fetchFn: FetchLike,
    private readonly now: () => number,
  ) {
    this.hooks = {
      admitSessions: (records) => this.admit(records),
      sessionRecords: (ids) => {
        const out: Uint8Array[] = [];
        for (const id of ids) {
          const e = id === record.id ? encoded : trust.encoded(id as SessionId);
          if (e) out.push(e);
        }
        return out;
      },
    };
  }

  /** Requests a session for `db`'s key from the server at `baseUrl`. */
  static async create(
    db: Database,
    baseUrl: string,
    options: ServerSessionOptions = {},
  ): Promise<ServerSession> {
    const fetchFn = options.fetch ?? fetch;
    const base = baseUrl.replace(/\/$/, "");
    const res = await fetchFn(`${base}/v1/sessions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      body: JSON.stringify({
        publicKey: encodeBase64Url(db.session.publicKey),
      }),
    });
    const j = await res.json();
    if (!res.ok) {
      throw new SyncError(
        String(j?.code ?? `http_${res.status}`),
        `Session request to ${base} failed: ${j?.message ?? res.status}`,
      );
    }
    const encoded = decodeBase64Url(String(j.record));
    const rootPublicKey = decodeBase64Url(String(j.rootPublicKey));
    const now = options.now ?? Date.now;
    const trust = new RootSessionTrust(rootPublicKey, now);
    const { admitted, refused } = await trust.admit([encoded]);
    const record = admitted[0];
    if (!record || record.id !== db.sessionId) {
      throw new SyncError(
        "bad_session",
        `Server returned an invalid session: ${
          refused[0]?.reason ?? "another key"
        }`,
      );
    }
    const s = new ServerSession(
      db,
      base,
      decodeSessionRecord(encoded),
      encoded,
      trust,
      fetchFn,
      now,
    );
    await s.admit([]);
    return s;
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

  /** An HTTP transport for `repo` whose requests are signed by this session. */
  httpTransport(repo: string): HttpSyncTransport {
    return new HttpSyncTransport(
      this.baseUrl,
      repo,
      this.fetchFn,
      () => ({}),
      (method, path, body) => this.sign(method, path, body),
    );
  }
}
