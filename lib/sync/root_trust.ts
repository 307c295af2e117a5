/**
 * Trust in sessions vouched for by a server's root key: a session record is accepted when
 * its root signature verifies against the root public key and it has not been revoked.
 * Expired records are kept too, because a commit is judged at its own time (see
 * ingest.ts): {@link RootSessionTrust.author} accepts a commit's session when the commit
 * was made before the expiry, while {@link RootSessionTrust.lookup} answers only sessions
 * valid now (what signed requests need). Verification is asynchronous (Web Crypto), so
 * records are admitted with {@link RootSessionTrust.admit} before the commits they sign
 * are ingested. Several records of one key (renewals) keep the longest-lived one.
 *
 * @module
 */

import {
  type SessionId,
  sessionIdOf,
  verifySignature,
} from "../crypto/keys.ts";
import {
  decodeSessionRecord,
  encodeSessionRecord,
  expiresLater,
  type SessionRecord,
  sessionSignedBytes,
  type SessionTrust,
  validAt,
} from "../core/session.ts";

/** Most admitted sessions kept in memory; expired ones are dropped first. */
export const MAX_ADMITTED_SESSIONS = 100_000;

/** One record refused by {@link RootSessionTrust.admit}. */
export interface RefusedSession {
  readonly index: number;
  readonly reason: string;
}

/** Outcome of {@link RootSessionTrust.admit}. */
export interface AdmitResult {
  /** The verified records as given, expired ones included (check `expiresAt`). */
  readonly admitted: SessionRecord[];
  readonly refused: RefusedSession[];
}

/**
 * Accepts root-signed, unrevoked sessions (and the root itself).
 *
 * @example
 * ```ts ignore
 * const trust = new RootSessionTrust(rootPublicKey);
 * const { admitted } = await trust.admit([encodedRecord]);
 * trust.lookup(admitted[0].id, Date.now()); // the record
 * ```
 */
export class RootSessionTrust implements SessionTrust {
  /** The root's own session record (no expiry). */
  readonly root: SessionRecord;
  readonly #admitted = new Map<SessionId, SessionRecord>();
  readonly #encoded = new Map<SessionId, Uint8Array>();
  readonly #revoked = new Set<SessionId>();

  constructor(
    rootPublicKey: Uint8Array,
    private readonly now: () => number = Date.now,
  ) {
    this.root = { id: sessionIdOf(rootPublicKey), publicKey: rootPublicKey };
  }

  /** The session if it is valid at `nowMs` (known, unrevoked, unexpired). */
  lookup(id: SessionId, nowMs: number): SessionRecord | undefined {
    const s = this.known(id);
    return s && validAt(s, nowMs) ? s : undefined;
  }

  /** The session if it may author a commit made at `commitMs` (see ingest.ts). */
  author(id: SessionId, commitMs: number): SessionRecord | undefined {
    return this.lookup(id, commitMs);
  }

  /** The verified, unrevoked record of a session, expired or not. */
  known(id: SessionId): SessionRecord | undefined {
    if (id === this.root.id) return this.root;
    if (this.#revoked.has(id)) return undefined;
    return this.#admitted.get(id);
  }

  /** True when `id` is the root session. */
  isRoot(id: string): boolean {
    return id === this.root.id;
  }

  /** Why `record` is not acceptable, or null when it is (signature not checked). */
  #problem(record: SessionRecord): string | null {
    if (this.#revoked.has(record.id)) {
      return `session ${record.id} is revoked`;
    }
    if (!record.rootSig) return `session ${record.id} has no root signature`;
    if (record.expiresAt === undefined) {
      return `session ${record.id} has no expiry`;
    }
    return null;
  }

  /**
   * Verifies session records (encoded or decoded) and trusts the valid ones. Never
   * throws on bad input: refusals are listed with their reason.
   */
  async admit(
    records: readonly (Uint8Array | SessionRecord)[],
  ): Promise<AdmitResult> {
    const nowMs = this.now();
    const admitted: SessionRecord[] = [];
    const refused: RefusedSession[] = [];
    await Promise.all(records.map(async (raw, index) => {
      let record: SessionRecord;
      try {
        record = raw instanceof Uint8Array ? decodeSessionRecord(raw) : raw;
      } catch (e) {
        refused.push({ index, reason: (e as Error).message });
        return;
      }
      if (record.id === this.root.id) {
        admitted.push(this.root);
        return;
      }
      const known = this.#admitted.get(record.id);
      if (known && !this.#revoked.has(record.id) && sameRecord(known, record)) {
        admitted.push(known);
        return;
      }
      const problem = this.#problem(record);
      if (problem) {
        refused.push({ index, reason: problem });
        return;
      }
      const ok = await verifySignature(
        this.root.publicKey,
        record.rootSig!,
        sessionSignedBytes(record),
      );
      if (!ok) {
        refused.push({
          index,
          reason: `root signature of session ${record.id} does not verify`,
        });
        return;
      }
      this.#remember(record, nowMs);
      admitted.push(record);
    }));
    refused.sort((a, b) => a.index - b.index);
    return { admitted, refused };
  }

  #remember(record: SessionRecord, nowMs: number): void {
    const known = this.#admitted.get(record.id);
    if (known) {
      if (expiresLater(record, known)) {
        this.#admitted.set(record.id, record);
        this.#encoded.delete(record.id);
      }
      return;
    }
    if (this.#admitted.size >= MAX_ADMITTED_SESSIONS) {
      for (const [id, s] of this.#admitted) {
        if ((s.expiresAt ?? Infinity) <= nowMs) this.#forget(id);
      }
      if (this.#admitted.size >= MAX_ADMITTED_SESSIONS) {
        this.#forget(this.#admitted.keys().next().value!);
      }
    }
    this.#admitted.set(record.id, record);
  }

  #forget(id: SessionId): void {
    this.#admitted.delete(id);
    this.#encoded.delete(id);
  }

  /** Revokes a session: its commits and requests are refused from now on. */
  revoke(id: SessionId): void {
    this.#revoked.add(id);
    this.#forget(id);
  }

  /** True when `id` was revoked. */
  isRevoked(id: SessionId): boolean {
    return this.#revoked.has(id);
  }

  /** The encoded record of an admitted session (sent along with its commits). */
  encoded(id: SessionId): Uint8Array | undefined {
    let e = this.#encoded.get(id);
    if (e) return e;
    const s = id === this.root.id ? this.root : this.#admitted.get(id);
    if (!s) return undefined;
    e = encodeSessionRecord(s);
    this.#encoded.set(id, e);
    return e;
  }
}

function sameRecord(a: SessionRecord, b: SessionRecord): boolean {
  if (a.expiresAt !== b.expiresAt || a.userId !== b.userId) return false;
  const x = a.rootSig, y = b.rootSig;
  if (!x || !y || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
