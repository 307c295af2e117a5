/**
 * Session issuance and revocation. Records are signed by the root key and stored as items
 * of `/sys/sessions` (schema `sys-session`), so they survive restarts; revocations too.
 *
 * @module
 */

import type { Database, Item } from "../mod.ts";
import type { Repository } from "../lib/core/repository.ts";
import type { Schema } from "../lib/schema/schema.ts";
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

/** Repository holding issued sessions. */
export const SESSIONS_REPO = "/sys/sessions";
/** Default lifetime of an issued session. */
export const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;

/** Schema of `/sys/sessions` items. */
export const SYS_SESSION_SCHEMA: Schema = {
  ns: "sys-session",
  version: 1,
  fields: {
    record: { type: "string", required: true },
    revoked: { type: "boolean", default: false },
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

/** Issues, persists and revokes sessions. */
export class SessionService {
  #loaded: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly root: SigningKey,
    private readonly trust: RootSessionTrust,
    private readonly ttlMs: number = DEFAULT_SESSION_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
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
      const item = this.db.item(`${SESSIONS_REPO}/${key}`);
      const text = item?.get("record");
      if (typeof text !== "string") continue;
      try {
        const bytes = decodeBase64Url(text);
        if (item!.get("revoked") === true) {
          this.trust.revoke(decodeSessionRecord(bytes).id);
        } else records.push(bytes);
      } catch { /* a damaged entry is skipped */ }
    }
    await this.trust.admit(records);
    watchSessionRecords(repo, this.trust, (key) => this.db.item(key));
  }

  /** Signs a session for `publicKey` (and `userId`) and stores it. */
  async issue(publicKey: Uint8Array, userId?: string): Promise<IssuedSession> {
    await this.ready();
    if (this.trust.isRevoked(sessionIdOf(publicKey))) {
      // Refused before anything is stored: re-issuing must not undo the revocation.
      throw new HttpError(
        403,
        "session_revoked",
        "This key's session was revoked; generate a new key",
      );
    }
    const unsigned = {
      publicKey,
      expiresAt: this.now() + this.ttlMs,
      ...(userId !== undefined ? { userId } : {}),
    };
    const rootSig = await this.root.sign(sessionSignedBytes(unsigned));
    const record: SessionRecord = {
      id: sessionIdOf(publicKey),
      ...unsigned,
      rootSig,
    };
    const encoded = encodeSessionRecord(record);
    const path = `${SESSIONS_REPO}/${sessionItemKey(record.id)}`;
    const existing = this.db.item(path);
    if (existing) {
      existing.update({ record: encodeBase64Url(encoded), revoked: false });
    } else {
      this.db.create(path, SYS_SESSION_SCHEMA, {
        record: encodeBase64Url(encoded),
      });
    }
    await this.db.flush();
    const { admitted, refused } = await this.trust.admit([encoded]);
    if (!admitted.length) throw new Error(refused[0]?.reason);
    return { record, encoded };
  }

  /** The stored record of a session, if any. */
  async find(id: SessionId): Promise<SessionRecord | undefined> {
    await this.ready();
    let key: string;
    try {
      key = sessionItemKey(id);
    } catch {
      return undefined;
    }
    const text = this.db.item(`${SESSIONS_REPO}/${key}`)?.get("record");
    return typeof text === "string"
      ? decodeSessionRecord(decodeBase64Url(text))
      : undefined;
  }

  /** Revokes a session (persisted) and stops trusting it. */
  async revoke(id: SessionId): Promise<void> {
    await this.ready();
    this.trust.revoke(id);
    const item = this.db.item(`${SESSIONS_REPO}/${sessionItemKey(id)}`);
    if (item) item.set("revoked", true);
    await this.db.flush();
  }
}

/**
 * Applies to `trust` the sessions and revocations that reach `/sys/sessions` from
 * elsewhere (another cluster member, an import): `#load` reads the repository once, so
 * without this a revocation arriving by ingest would never be enforced here.
 */
function watchSessionRecords(
  repo: Repository,
  trust: RootSessionTrust,
  item: (path: string) => Item | undefined,
): void {
  repo.onChange((change) => {
    if (change.local) return;
    const entry = item(change.path);
    const text = entry?.get("record");
    if (typeof text !== "string") return;
    try {
      const bytes = decodeBase64Url(text);
      if (entry!.get("revoked") === true) {
        trust.revoke(decodeSessionRecord(bytes).id);
      } else void trust.admit([bytes]);
    } catch { /* a damaged entry is skipped, as on load */ }
  });
}
