/**
 * Invites: one-time sign-up links an operator hands out (`capra user invite NAME`). The
 * token (32 random bytes) is shown once; `/sys/invites/<sha256 of it>` keeps the name it
 * signs up, the role, the expiry and `used` (final). Taking an invite is serialized per
 * token, so one link makes one user, however many requests race for it.
 *
 * @module
 */

import type { Database, Item } from "../../mod.ts";
import { encodeBase64Url } from "../../lib/encoding/base64url.ts";
import { HttpError } from "../errors.ts";
import { KeyedLock } from "../limits/keyed_lock.ts";
import {
  checkUserName,
  hashKey,
  INVITES_REPO,
  SYS_INVITE_SCHEMA,
  type UserRole,
} from "./records.ts";

/** Random bytes of an invite token. */
export const INVITE_TOKEN_BYTES = 32;
/** Default lifetime of an invite. */
export const DEFAULT_INVITE_TTL_MS = 7 * 86_400_000;

/** A created invite. */
export interface CreatedInvite {
  /** Shown once: the link carries it. */
  readonly token: string;
  readonly name: string;
  readonly role: UserRole;
  readonly expiresAt: number;
}

/** What an invite grants. */
export interface InviteGrant {
  readonly name: string;
  readonly role: UserRole;
}

const INVITE_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The invites of a server. */
export class InviteStore {
  readonly #lock = new KeyedLock();

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates an invite for a new user `name`. */
  async create(
    name: string,
    role: UserRole = "user",
    ttlMs = DEFAULT_INVITE_TTL_MS,
  ): Promise<CreatedInvite> {
    checkUserName(name);
    await this.db.open(INVITES_REPO);
    const token = encodeBase64Url(
      crypto.getRandomValues(new Uint8Array(INVITE_TOKEN_BYTES)),
    );
    const expiresAt = this.now() + ttlMs;
    this.db.create(`${INVITES_REPO}/${hashKey(token)}`, SYS_INVITE_SCHEMA, {
      name,
      role,
      expiresAt,
    });
    await this.db.flush();
    return { token, name, role, expiresAt };
  }

  async #find(token: unknown): Promise<Item | undefined> {
    if (typeof token !== "string" || !INVITE_TOKEN.test(token)) {
      return undefined;
    }
    await this.db.open(INVITES_REPO);
    const item = this.db.item(`${INVITES_REPO}/${hashKey(token)}`);
    return item && !item.isDeleted ? item : undefined;
  }

  /** What a valid, unused invite grants (without using it): for the sign-up screen. */
  async peek(token: unknown): Promise<InviteGrant> {
    const item = await this.#find(token);
    this.#check(item);
    return grantOf(item!);
  }

  #check(item: Item | undefined): void {
    if (!item) {
      throw new HttpError(404, "bad_invite", "This invite link is not valid");
    }
    if (item.get("used") === true) {
      throw new HttpError(
        410,
        "invite_used",
        "This invite link was already used: ask for a new one",
      );
    }
    if (Number(item.get("expiresAt")) <= this.now()) {
      throw new HttpError(
        410,
        "invite_expired",
        "This invite link has expired: ask for a new one",
      );
    }
  }

  /**
   * Uses an invite: `create` runs with what it grants, and only once it succeeds is the
   * invite marked used. Concurrent uses of one token run one after the other (the second
   * gets 410 `invite_used`).
   */
  async use<T>(
    token: unknown,
    create: (grant: InviteGrant) => Promise<T>,
  ): Promise<T> {
    const item = await this.#find(token);
    this.#check(item);
    return await this.#lock.run(String(token), async () => {
      this.#check(item);
      const result = await create(grantOf(item!));
      item!.set("used", true);
      await this.db.flush();
      return result;
    });
  }

  /** Pending (unused, unexpired) invites. */
  async pending(): Promise<InviteGrant[]> {
    const repo = await this.db.open(INVITES_REPO);
    const out: (InviteGrant & { expiresAt: number })[] = [];
    for (const key of repo.keys()) {
      const item = this.db.item(`${INVITES_REPO}/${key}`);
      if (!item || item.get("used") === true) continue;
      const expiresAt = Number(item.get("expiresAt"));
      if (expiresAt > this.now()) out.push({ ...grantOf(item), expiresAt });
    }
    return out.sort((a, b) => a.name < b.name ? -1 : 1);
  }
}

function grantOf(item: Item): InviteGrant {
  return {
    name: String(item.get("name")),
    role: item.get("role") === "admin" ? "admin" : "user",
  };
}
