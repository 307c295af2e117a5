/**
 * Session issuance and revocation. Records are signed by the root key and stored as items
 * of `/sys/sessions` (schema `sys-session`), so they survive restarts; revocations too.
 *
 * The rules (finding 1 and 3 of issue 11):
 * - work on one key is serialized (issue, revoke and collection of the same key never
 *   interleave), so a re-issue racing a revocation cannot undo it;
 * - the `revoked` flag only ever goes from false to true: nothing writes false, and its
 *   merge is a logical OR, so even concurrent writers (several servers) keep it;
 * - a key's user never changes: a key bound to a user is re-issued only to that user's
 *   credentials (an anonymous key may be bound to a user once, at sign-in);
 * - a stored record is never replaced by a weaker one (an earlier expiry, or no user);
 * - expired, unrevoked records are collected some time after their expiry (revoked ones
 *   stay: they are what keeps a revocation final).
 *
 * @module
 */

import type { Database } from "../mod.ts";
import type { MergeFunction, Schema } from "../lib/schema/schema.ts";
import type { SessionId, SigningKey } from "../lib/crypto/keys.ts";
import {
  decodeBase64Url,
  encodeBase64Url,
  encodeHex,
} from "../lib/encoding/base64url.ts";
import {
  decodeSessionRecord,
  encodeSessionRecord,
  type SessionRecord,
  sessionSignedBytes,
} from "../lib/core/session.ts";
import { sessionIdOf } from "../lib/crypto/keys.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { HttpError } from "./errors.ts";
import { KeyedLock } from "./limits/keyed_lock.ts";

/** Repository holding issued sessions. */
export const SESSIONS_REPO = "/sys/sessions";
/** Default lifetime of an issued session. */
export const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
/** Default delay between a record's expiry and its collection. */
export const DEFAULT_SESSION_COLLECT_AFTER_MS = 60 * 60 * 1000;
/** Default interval between two collections (run by the next issuance). */
export const DEFAULT_SESSION_SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/** Of two encoded records, the one valid longer (ties: the larger text). */
function strongerRecord(a: string, b: string): string {
  const exp = (t: string) => {
    try {
      return decodeSessionRecord(decodeBase64Url(t)).expiresAt ?? Infinity;
    } catch {
      return -Infinity;
    }
  };
  const x = exp(a), y = exp(b);
  return x > y ? a : y > x ? b : a > b ? a : b;
}

/** Schema of `/sys/sessions` items. */
export const SYS_SESSION_SCHEMA: Schema = {
  ns: "sys-session",
  version: 1,
  fields: {
    record: {
      type: "string",
      required: true,
      // Concurrent re-issues keep the longer-lived record.
      merge:
        ((_base, ours, theirs) =>
          ours === undefined
            ? theirs
            : theirs === undefined
            ? ours
            : strongerRecord(ours, theirs)) as MergeFunction<string> as never,
    },
    revoked: {
      type: "boolean",
      default: false,
      // Monotonic: once revoked, revoked on every replica whatever the order.
      merge:
        ((_base, ours, theirs) =>
          ours === true || theirs === true) as MergeFunction<boolean> as never,
    },
  },
};

/** Item key of a session in `/sys/sessions` (keys are lowercase). */
export function sessionItemKey(id: SessionId): string {
  return encodeHex(decodeBase64Url(id));
}

/** An issued session as returned to the client. */
export interface IssuedSession {
  readonly record: SessionRecord;
  readonly encoded: Uint8Array;
}

/** Options of {@link SessionService}. */
export interface SessionServiceOptions {
  /** Lifetime of issued sessions. */
  readonly ttlMs?: number;
  /** Wall clock. */
  readonly now?: () => number;
  /** Expired, unrevoked records are deleted this long after their expiry. */
  readonly collectAfterMs?: number;
  /** Least time between two collections. */
  readonly sweepIntervalMs?: number;
}

interface Stored {
  readonly record: SessionRecord;
  readonly revoked: boolean;
}

/** Issues, persists and revokes sessions. */
export class SessionService {
  #loaded: Promise<void> | undefined;
  readonly #lock = new KeyedLock();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #collectAfterMs: number;
  readonly #sweepIntervalMs: number;
  #lastSweep = -Infinity;
  /** Records deleted by collection so far. */
  collected = 0;

  constructor(
    private readonly db: Database,
    private readonly root: SigningKey,
    private readonly trust: RootSessionTrust,
    options: SessionServiceOptions = {},
  ) {
    this.#ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#collectAfterMs = options.collectAfterMs ??
      DEFAULT_SESSION_COLLECT_AFTER_MS;
    this.#sweepIntervalMs = options.sweepIntervalMs ??
      DEFAULT_SESSION_SWEEP_INTERVAL_MS;
    if (!db.schemas.get("sys-session/1")) {
      db.registerSchema(SYS_SESSION_SCHEMA);
    }
  }

  /** Loads stored sessions and revocations into the trust (once). */
  ready(): Promise<void> {
    return this.#loaded ??= this.#load();
  }

  async #load(): Promise<void> {
    const repo = await this.db.open(SESSIONS_REPO);
    const records: Uint8Array[] = [];
    for (const key of repo.keys()) {
      const stored = this.#storedAt(key);
      if (!stored) continue;
      if (stored.revoked) this.trust.revoke(stored.record.id);
      else records.push(encodeSessionRecord(stored.record));
    }
    await this.trust.admit(records);
    // Read once above: what reaches /sys/sessions from elsewhere later (another cluster
    // member's sessions and revocations) is applied to the trust as it arrives.
    repo.onChange((change) => {
      if (!change.local) this.#applyArrived(change.key);
    });
  }

  /** Trusts or revokes a session record that arrived by ingest. */
  #applyArrived(key: string): void {
    const stored = this.#storedAt(key);
    if (!stored) return;
    if (stored.revoked) this.trust.revoke(stored.record.id);
    else void this.trust.admit([encodeSessionRecord(stored.record)]);
  }

  /** The live record at `key` (with `collected`: also the last one collection deleted). */
  #storedAt(key: string, collected = false): Stored | undefined {
    const item = this.db.item(`${SESSIONS_REPO}/${key}`);
    if (!item || (item.isDeleted && !collected)) return undefined;
    const text = item.get("record");
    if (typeof text !== "string") return undefined;
    try {
      return {
        record: decodeSessionRecord(decodeBase64Url(text)),
        revoked: item.get("revoked") === true,
      };
    } catch {
      return undefined; // a damaged entry is skipped
    }
  }

  #stored(id: SessionId): Stored | undefined {
    return this.#storedAt(sessionItemKey(id));
  }

  /**
   * Signs a session for `publicKey` (bound to `userId` when given) and stores it. The
   * caller has verified that the request comes from the key's holder. Throws an
   * HttpError: 403 `session_revoked`, 401 `credentials_required` (the key belongs to a
   * user and no credentials came), 409 `key_bound_to_other_user`.
   */
  async issue(publicKey: Uint8Array, userId?: string): Promise<IssuedSession> {
    await this.ready();
    await this.#sweepIfDue();
    const id = sessionIdOf(publicKey);
    return await this.#lock.run(id, () => this.#issue(id, publicKey, userId));
  }

  async #issue(
    id: SessionId,
    publicKey: Uint8Array,
    userId: string | undefined,
  ): Promise<IssuedSession> {
    const stored = this.#stored(id);
    // A collected record's tombstone still names the key's user: it never changes.
    const previous = stored ?? this.#storedAt(sessionItemKey(id), true);
    if (this.trust.isRevoked(id) || stored?.revoked) {
      // Refused before anything is stored: re-issuing must not undo the revocation.
      throw new HttpError(
        403,
        "session_revoked",
        "This key's session was revoked; generate a new key",
      );
    }
    const owner = previous?.record.userId;
    if (owner !== undefined && userId === undefined) {
      throw new HttpError(
        401,
        "credentials_required",
        `This key's session belongs to user "${owner}": present that user's credentials to renew it`,
      );
    }
    if (owner !== undefined && owner !== userId) {
      throw new HttpError(
        409,
        "key_bound_to_other_user",
        `This key belongs to user "${owner}": a key's user never changes; use a new key for "${userId}"`,
      );
    }
    const now = this.#now();
    const expiresAt = now + this.#ttlMs;
    if (
      stored && stored.record.userId === userId &&
      (stored.record.expiresAt ?? Infinity) >= expiresAt
    ) {
      // Never replace a record by a weaker one: the stored one lasts as long.
      const encoded = encodeSessionRecord(stored.record);
      await this.#admitOrRefuse(encoded);
      return { record: stored.record, encoded };
    }
    const unsigned = {
      publicKey,
      expiresAt,
      ...(userId !== undefined ? { userId } : {}),
    };
    const rootSig = await this.root.sign(sessionSignedBytes(unsigned));
    const record: SessionRecord = { id, ...unsigned, rootSig };
    const encoded = encodeSessionRecord(record);
    const path = `${SESSIONS_REPO}/${sessionItemKey(id)}`;
    const existing = this.db.item(path);
    if (existing && !existing.isDeleted) {
      // Only the record: the revoked flag is never written here.
      existing.set("record", encodeBase64Url(encoded));
    } else {
      this.db.create(path, SYS_SESSION_SCHEMA, {
        record: encodeBase64Url(encoded),
      });
    }
    await this.db.flush();
    await this.#admitOrRefuse(encoded);
    return { record, encoded };
  }

  async #admitOrRefuse(encoded: Uint8Array): Promise<void> {
    const { admitted, refused } = await this.trust.admit([encoded]);
    if (!admitted.length) {
      throw new HttpError(
        403,
        "session_revoked",
        `Session refused: ${refused[0]?.reason ?? "revoked"}`,
      );
    }
  }

  /** The stored record of a session, if any (revoked ones included). */
  async find(id: SessionId): Promise<SessionRecord | undefined> {
    await this.ready();
    try {
      return this.#stored(id)?.record;
    } catch {
      return undefined; // not a session id
    }
  }

  /**
   * Revokes a session (persisted) and stops trusting it; final: the key never gets a
   * session again. Idempotent.
   */
  async revoke(id: SessionId): Promise<void> {
    await this.ready();
    await this.#lock.run(id, async () => {
      this.trust.revoke(id);
      const item = this.db.item(`${SESSIONS_REPO}/${sessionItemKey(id)}`);
      if (item && !item.isDeleted && item.get("revoked") !== true) {
        item.set("revoked", true);
      }
      await this.db.flush();
    });
  }

  async #sweepIfDue(): Promise<void> {
    if (this.#now() - this.#lastSweep < this.#sweepIntervalMs) return;
    this.#lastSweep = this.#now();
    await this.collectExpired();
  }

  /**
   * Deletes the records of sessions expired more than the collection delay ago (revoked
   * ones are kept); returns how many. Runs by itself during issuance at most once per
   * sweep interval.
   */
  async collectExpired(): Promise<number> {
    await this.ready();
    const repo = await this.db.open(SESSIONS_REPO);
    const cutoff = this.#now() - this.#collectAfterMs;
    const due = (s: Stored | undefined) =>
      s !== undefined && !s.revoked &&
      (s.record.expiresAt ?? Infinity) < cutoff;
    let n = 0;
    for (const key of repo.keys()) {
      const stored = this.#storedAt(key);
      if (!due(stored)) continue;
      await this.#lock.run(stored!.record.id, () => {
        // Checked again under the lock: a re-issue may have renewed it meanwhile.
        if (due(this.#storedAt(key))) {
          this.db.item(`${SESSIONS_REPO}/${key}`)!.delete();
          n++;
        }
        return Promise.resolve();
      });
    }
    if (n) await this.db.flush();
    this.collected += n;
    return n;
  }

  /** Ids of the stored, unrevoked sessions bound to `userId` (O(stored records)). */
  async sessionsOf(userId: string): Promise<SessionId[]> {
    await this.ready();
    const repo = await this.db.open(SESSIONS_REPO);
    const out: SessionId[] = [];
    for (const key of repo.keys()) {
      const s = this.#storedAt(key);
      if (s && !s.revoked && s.record.userId === userId) out.push(s.record.id);
    }
    return out;
  }

  /** Stored (live) session records, revoked ones included. */
  async count(): Promise<number> {
    await this.ready();
    return this.db.count(SESSIONS_REPO);
  }
}
