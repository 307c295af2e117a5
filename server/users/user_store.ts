/**
 * The users of a server: items of `/sys/users` (see records.ts), with in-memory indexes
 * (bearer token hash, WebAuthn user handle, credential id → user) rebuilt whenever the
 * repository changes, by this server or by commits replicated from another one. Work on
 * one name is serialized, so two sign-ups of one name cannot both succeed here.
 *
 * @module
 */

import type { Database, Item } from "../../mod.ts";
import { KeyedLock } from "../limits/keyed_lock.ts";
import { HttpError } from "../errors.ts";
import { encodeBase64Url } from "../../lib/encoding/base64url.ts";
import {
  checkUserName,
  type StoredPasskey,
  SYS_USER_SCHEMA,
  USER_SCHEMAS,
  type UserRole,
  USERS_REPO,
} from "./records.ts";
import { tokenHash } from "../users.ts";

/** Random bytes of a WebAuthn user handle. */
export const WEBAUTHN_ID_BYTES = 16;
/** Random bytes of a bearer token. */
export const BEARER_TOKEN_BYTES = 32;

/** A user as the server sees it (never sent whole to a client). */
export interface UserRecord {
  readonly name: string;
  readonly role: UserRole;
  readonly createdAt: number;
  readonly password?: string;
  readonly webauthnId?: string;
  readonly passkeys: ReadonlyMap<string, StoredPasskey>;
  readonly tokens: ReadonlySet<string>;
  readonly removed: boolean;
}

/** The part of a user an admin may see. */
export interface UserSummary {
  readonly name: string;
  readonly role: UserRole;
  readonly createdAt: number;
  readonly password: boolean;
  readonly passkeys: number;
  readonly tokens: number;
}

/** What a new user starts with. */
export interface NewUser {
  readonly name: string;
  readonly role?: UserRole;
  readonly password?: string;
  readonly webauthnId?: string;
  readonly passkey?: { readonly id: string; readonly stored: StoredPasskey };
  readonly tokenHash?: string;
}

function passkeysOf(item: Item): Map<string, StoredPasskey> {
  const out = new Map<string, StoredPasskey>();
  const m = item.get("passkeys");
  if (!(m instanceof Map)) return out;
  for (const [id, v] of m) {
    try {
      const p = JSON.parse(String(v)) as StoredPasskey;
      if (typeof p.publicKey === "string") out.set(id, p);
    } catch {
      // a damaged entry is skipped
    }
  }
  return out;
}

/** Reads a user item. */
function recordOf(name: string, item: Item): UserRecord {
  const tokens = item.get("tokens");
  const password = item.get("password");
  const webauthnId = item.get("webauthnId");
  return {
    name,
    role: item.get("role") === "admin" ? "admin" : "user",
    createdAt: Number(item.get("createdAt") ?? 0),
    ...(typeof password === "string" ? { password } : {}),
    ...(typeof webauthnId === "string" ? { webauthnId } : {}),
    passkeys: passkeysOf(item),
    tokens: tokens instanceof Set
      ? new Set([...tokens].map(String))
      : new Set(),
    removed: item.get("removed") === true,
  };
}

interface Indexes {
  readonly byToken: Map<string, string>;
  readonly byWebauthnId: Map<string, string>;
  readonly byCredential: Map<string, string>;
}

/** Users in `/sys/users`. */
export class UserStore {
  #ready: Promise<void> | undefined;
  #indexes: Indexes | null = null;
  readonly #lock = new KeyedLock();

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {
    for (const s of USER_SCHEMAS) {
      if (!db.schemas.get(`${s.ns}/${s.version}`)) db.registerSchema(s);
    }
  }

  /** Opens `/sys/users` and follows its changes (once). */
  ready(): Promise<void> {
    return this.#ready ??= (async () => {
      const repo = await this.db.open(USERS_REPO);
      // A listener pins the repository: users stay in memory, indexes stay valid.
      repo.onChange(() => this.#indexes = null);
    })();
  }

  #item(name: string): Item | undefined {
    const item = this.db.item(`${USERS_REPO}/${name}`);
    return item && !item.isDeleted ? item : undefined;
  }

  /** The live (not removed) user called `name`. */
  async get(name: string): Promise<UserRecord | undefined> {
    await this.ready();
    if (typeof name !== "string" || !/^[a-z0-9_-]{1,64}$/.test(name)) {
      return undefined;
    }
    const item = this.#item(name);
    if (!item) return undefined;
    const r = recordOf(name, item);
    return r.removed ? undefined : r;
  }

  /** True when `name` is taken: a user has it, or had it (names are never reused). */
  async taken(name: string): Promise<boolean> {
    await this.ready();
    return this.db.item(`${USERS_REPO}/${name}`) !== undefined;
  }

  /** Live users, by name. */
  async list(): Promise<UserRecord[]> {
    await this.ready();
    const out: UserRecord[] = [];
    for (const name of this.db.keys(USERS_REPO).sort()) {
      const item = this.#item(name);
      if (!item) continue;
      const r = recordOf(name, item);
      if (!r.removed) out.push(r);
    }
    return out;
  }

  /** What an admin sees of a user. */
  static summary(u: UserRecord): UserSummary {
    return {
      name: u.name,
      role: u.role,
      createdAt: u.createdAt,
      password: u.password !== undefined,
      passkeys: u.passkeys.size,
      tokens: u.tokens.size,
    };
  }

  #index(): Indexes {
    if (this.#indexes) return this.#indexes;
    const ix: Indexes = {
      byToken: new Map(),
      byWebauthnId: new Map(),
      byCredential: new Map(),
    };
    for (const name of this.db.keys(USERS_REPO)) {
      const item = this.#item(name);
      if (!item) continue;
      const r = recordOf(name, item);
      if (r.removed) continue;
      for (const t of r.tokens) ix.byToken.set(t, name);
      if (r.webauthnId) ix.byWebauthnId.set(r.webauthnId, name);
      for (const id of r.passkeys.keys()) ix.byCredential.set(id, name);
    }
    return this.#indexes = ix;
  }

  /** The user holding the bearer token whose hash is `hash`. */
  async byTokenHash(hash: string): Promise<string | undefined> {
    await this.ready();
    return this.#index().byToken.get(hash);
  }

  /** The user whose WebAuthn user handle is `handle`. */
  async byWebauthnId(handle: string): Promise<string | undefined> {
    await this.ready();
    return this.#index().byWebauthnId.get(handle);
  }

  /** The user owning the passkey `credentialId`. */
  async byCredential(credentialId: string): Promise<string | undefined> {
    await this.ready();
    return this.#index().byCredential.get(credentialId);
  }

  /**
   * Creates a user; 409 `name_taken` when the name is (or was) in use. The write is
   * flushed before it resolves.
   */
  async create(user: NewUser): Promise<UserRecord> {
    await this.ready();
    const name = checkUserName(user.name);
    return await this.#lock.run(name, async () => {
      if (this.#item(name) || this.db.item(`${USERS_REPO}/${name}`)) {
        throw new HttpError(
          409,
          "name_taken",
          `The user name "${name}" is taken: choose another`,
        );
      }
      const item = this.db.create(`${USERS_REPO}/${name}`, SYS_USER_SCHEMA, {
        role: user.role ?? "user",
        createdAt: this.now(),
        ...(user.password !== undefined ? { password: user.password } : {}),
        ...(user.webauthnId !== undefined
          ? { webauthnId: user.webauthnId }
          : {}),
        ...(user.passkey
          ? {
            passkeys: new Map([[
              user.passkey.id,
              JSON.stringify(user.passkey.stored),
            ]]),
          }
          : {}),
        ...(user.tokenHash ? { tokens: new Set([user.tokenHash]) } : {}),
      });
      await this.db.flush();
      this.#indexes = null;
      return recordOf(name, item);
    });
  }

  async #update(
    name: string,
    change: (item: Item, user: UserRecord) => void,
  ): Promise<void> {
    await this.ready();
    await this.#lock.run(name, async () => {
      const item = this.#item(name);
      if (!item || item.get("removed") === true) {
        throw new HttpError(404, "no_such_user", `No user "${name}"`);
      }
      change(item, recordOf(name, item));
      await this.db.flush();
      this.#indexes = null;
    });
  }

  /** Replaces the user's password hash. */
  setPassword(name: string, hash: string): Promise<void> {
    return this.#update(name, (item) => item.set("password", hash));
  }

  /** Adds a passkey (and the user's WebAuthn handle when it had none). */
  addPasskey(
    name: string,
    id: string,
    stored: StoredPasskey,
    webauthnId?: string,
  ): Promise<void> {
    return this.#update(name, (item, user) => {
      const m = new Map(item.get("passkeys") as Map<string, string> ?? []);
      m.set(id, JSON.stringify(stored));
      item.set("passkeys", m);
      if (!user.webauthnId && webauthnId) item.set("webauthnId", webauthnId);
    });
  }

  /** Records a passkey's new signature counter. */
  updatePasskeyCounter(
    name: string,
    id: string,
    counter: number,
  ): Promise<void> {
    return this.#update(name, (item, user) => {
      const p = user.passkeys.get(id);
      if (!p || p.counter === counter) return;
      const m = new Map(item.get("passkeys") as Map<string, string>);
      m.set(id, JSON.stringify({ ...p, counter }));
      item.set("passkeys", m);
    });
  }

  /** Sets the role. */
  setRole(name: string, role: UserRole): Promise<void> {
    return this.#update(name, (item) => item.set("role", role));
  }

  /**
   * Issues a bearer token for `name` (the user is created when missing) and returns it;
   * only its SHA-256 is stored.
   */
  async addToken(name: string): Promise<string> {
    const token = encodeBase64Url(
      crypto.getRandomValues(new Uint8Array(BEARER_TOKEN_BYTES)),
    );
    await this.addTokenHash(name, tokenHash(token));
    return token;
  }

  /** Adds a token hash to `name` (created when missing; refused when removed). */
  async addTokenHash(name: string, hash: string): Promise<void> {
    await this.ready();
    checkUserName(name);
    if (!this.#item(name)) {
      try {
        await this.create({ name, tokenHash: hash });
        return;
      } catch (e) {
        if (!(e instanceof HttpError && e.code === "name_taken")) throw e;
      }
    }
    await this.#update(name, (item) => {
      const tokens = new Set(item.get("tokens") as Set<string> ?? []);
      tokens.add(hash);
      item.set("tokens", tokens);
    });
  }

  /**
   * Removes a user: the record stays with `removed: true` (the name is never given out
   * again, so nobody inherits `/user/<name>` or the user's memberships); passwords,
   * passkeys and tokens stop working at once. Idempotent.
   */
  async remove(name: string): Promise<boolean> {
    await this.ready();
    return await this.#lock.run(name, async () => {
      const item = this.#item(name);
      if (!item || item.get("removed") === true) return false;
      item.set("removed", true);
      item.set("tokens", new Set());
      item.set("passkeys", new Map());
      await this.db.flush();
      this.#indexes = null;
      return true;
    });
  }
}
