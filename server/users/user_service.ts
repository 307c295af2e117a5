/**
 * The user system of a server, wired together: users, invites, devices, memberships,
 * passkey ceremonies and sign-in (see the files beside this one), plus what the routes
 * need: revoking a device (its session, its record, its open sockets), signing a user
 * out everywhere, removing a user, and migrating a legacy `capra-users.json`.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import type { SessionRecord } from "../../lib/core/session.ts";
import type { SessionId } from "../../lib/crypto/keys.ts";
import { KeyedRateLimiter } from "../limits/token_bucket.ts";
import type { ServerLimits } from "../limits/limits.ts";
import type { SessionService } from "../sessions.ts";
import { readLegacyUsers } from "../users.ts";
import { cleanDeviceName, DeviceStore } from "./devices.ts";
import { DEFAULT_INVITE_TTL_MS, InviteStore } from "./invites.ts";
import { MembershipStore } from "./members.ts";
import type { SigningKey } from "../../lib/crypto/keys.ts";
import {
  PasskeyCeremonies,
  type RelyingParty,
  relyingPartyOf,
} from "./passkeys.ts";
import { DEFAULT_SCRYPT_LOG2_N, PasswordHasher } from "./passwords.ts";
import { SignIn, type SignUpPolicy } from "./sign_in.ts";
import { UserStore } from "./user_store.ts";

/** Options of the user system (`createServer({ security: { users } })`). */
export interface UserSystemOptions {
  /** Who may create an account (default `"invite"`). */
  readonly signUp?: SignUpPolicy;
  /**
   * The URL browsers reach the server at (`--public-url`): the passkeys' RP ID and
   * origin. Default: each request's own URL (fine for `http://localhost`).
   */
  readonly publicUrl?: string;
  /** Name shown by authenticators (default "Capra"). */
  readonly rpName?: string;
  /** scrypt cost, log2 N (default {@link DEFAULT_SCRYPT_LOG2_N}). */
  readonly scryptLog2N?: number;
  /** Lifetime of invites (default 7 days). */
  readonly inviteTtlMs?: number;
  /** A `capra-users.json` to migrate into `/sys/users` on start (then renamed). */
  readonly legacyUsersFile?: string;
  /** Users listed here are admins too (the policy's `sessions.admins`). */
  readonly admins?: readonly string[];
}

/** Everything the user routes use. */
export class UserService {
  readonly users: UserStore;
  readonly devices: DeviceStore;
  readonly invites: InviteStore;
  readonly members: MembershipStore;
  readonly passkeys: PasskeyCeremonies;
  readonly hasher: PasswordHasher;
  readonly signIn: SignIn;
  readonly signUp: SignUpPolicy;
  readonly inviteTtlMs: number;
  readonly publicUrl: string | undefined;
  readonly rpName: string;
  /** Passkey option requests per address. */
  readonly optionsPerAddress: KeyedRateLimiter;
  #ready: Promise<void> | undefined;
  readonly #admins: ReadonlySet<string>;
  /** Closes the sockets of a revoked session (set by createServer: the hub). */
  closeSockets: (id: string) => void = () => {};

  constructor(
    db: Database,
    private readonly sessions: SessionService,
    limits: ServerLimits,
    readonly options: UserSystemOptions,
    now: () => number,
    /** Seals passkey challenges, so any server holding this key takes them (the root key). */
    challengeSeal?: SigningKey,
  ) {
    this.users = new UserStore(db, now);
    this.devices = new DeviceStore(db, now);
    this.invites = new InviteStore(db, now);
    this.members = new MembershipStore(db, now);
    this.passkeys = new PasskeyCeremonies(now, challengeSeal);
    this.hasher = new PasswordHasher(
      options.scryptLog2N ?? DEFAULT_SCRYPT_LOG2_N,
    );
    this.signUp = options.signUp ?? "invite";
    this.inviteTtlMs = options.inviteTtlMs ?? DEFAULT_INVITE_TTL_MS;
    this.publicUrl = options.publicUrl;
    this.rpName = options.rpName ?? "Capra";
    this.#admins = new Set(options.admins ?? []);
    this.optionsPerAddress = new KeyedRateLimiter(
      limits.sessionsPerAddressPerMinute,
      now,
    );
    this.signIn = new SignIn({
      users: this.users,
      devices: this.devices,
      invites: this.invites,
      passkeys: this.passkeys,
      hasher: this.hasher,
      signUp: this.signUp,
      perAddress: new KeyedRateLimiter(limits.signInPerAddressPerMinute, now),
      perName: new KeyedRateLimiter(limits.signInPerNamePerMinute, now),
    });
  }

  /** Opens the repositories, builds the indexes and migrates a legacy file (once). */
  ready(): Promise<void> {
    return this.#ready ??= (async () => {
      await Promise.all([
        this.users.ready(),
        this.devices.ready(),
        this.members.ready(),
      ]);
      if (this.options.legacyUsersFile) {
        await migrateLegacyUsers(this.users, this.options.legacyUsersFile);
      }
    })();
  }

  /** The relying party of passkeys for a request. */
  relyingParty(request: Request): RelyingParty {
    return relyingPartyOf(request, this.publicUrl, this.rpName);
  }

  /**
   * The session hook: the user to bind the session to, or null. `address` is the
   * client's (sign-in attempts are rate-limited per address).
   */
  async authenticate(
    request: Request,
    body: Readonly<Record<string, unknown>> | undefined,
    address: string,
  ): Promise<string | null> {
    await this.ready();
    return await this.signIn.authenticate(request, body, address);
  }

  /** After issuance: a user-bound key becomes (or stays) a device of its user. */
  async issued(
    record: SessionRecord,
    body: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    if (record.userId === undefined) return;
    await this.devices.record(
      record.id,
      record.userId,
      cleanDeviceName(body.device),
    );
  }

  /** True when `name` is an admin (by role, or listed in the policy's admins). */
  async isAdmin(name: string | undefined): Promise<boolean> {
    if (name === undefined) return false;
    if (this.#admins.has(name)) return true;
    return (await this.users.get(name))?.role === "admin";
  }

  /** Revokes a device: its session (final), its record, its sockets. */
  async revokeDevice(id: string): Promise<void> {
    await this.sessions.revoke(id as SessionId);
    await this.devices.markRevoked(id);
    this.closeSockets(id);
  }

  /** Signs `user` out of every device (and every other session bound to them). */
  async signOutEverywhere(user: string): Promise<number> {
    const ids = new Set<string>(
      (await this.devices.list(user)).map((d) => d.id),
    );
    for (const id of await this.sessions.sessionsOf(user)) ids.add(id);
    for (const id of ids) await this.revokeDevice(id);
    return ids.size;
  }

  /**
   * Removes a user: every session revoked, memberships dropped, credentials erased; the
   * name is retired. False when there was no such user.
   */
  async removeUser(name: string): Promise<boolean> {
    await this.ready();
    if (!await this.users.get(name)) return false;
    await this.users.remove(name);
    await this.signOutEverywhere(name);
    await this.members.forget(name);
    return true;
  }
}

/**
 * Moves the bearer tokens of a legacy `capra-users.json` (name → token hash) into
 * `/sys/users`, then renames the file to `<file>.migrated` (nothing is lost).
 */
export async function migrateLegacyUsers(
  users: UserStore,
  path: string,
): Promise<number> {
  const legacy = await readLegacyUsers(path);
  if (legacy === undefined) return 0;
  let n = 0;
  for (const [name, hash] of Object.entries(legacy)) {
    if (typeof hash !== "string" || !/^[a-z0-9_-]{1,64}$/.test(name)) {
      console.error(
        `capra: ${path}: skipped entry ${
          JSON.stringify(name)
        } (not a user name and token hash)`,
      );
      continue;
    }
    await users.addTokenHash(name, hash);
    n++;
  }
  await Deno.rename(path, `${path}.migrated`);
  console.error(
    `capra: migrated ${n} users from ${path} into /sys/users (the file is now ${path}.migrated)`,
  );
  return n;
}
