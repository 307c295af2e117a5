/**
 * What the user system stores, as items of root-only `/sys` repositories (the built-in
 * rules let nobody but the root read or write `/sys/*`, so password hashes, token hashes
 * and credential ids never leave the server; the routes serve the public part):
 *
 * - `/sys/users/<name>`: a user (schema `sys-user`): role, scrypt password hash, passkeys
 *   (credential id → public key and counter), hashes of bearer tokens, `removed`;
 * - `/sys/invites/<sha256 of the token>`: a one-time sign-up link (`sys-invite`);
 * - `/sys/devices/<session key>`: a device, i.e. a session key bound to a user at
 *   sign-in, with its name and when it was last seen (`sys-device`);
 * - `/sys/members/<sha256 of the repository path>`: the owner and members of a shared
 *   repository (`sys-member`).
 *
 * Being items, they are carried by backups, `verify` and a cluster like any repository.
 * Flags that must never be undone (`removed`, `used`) merge as a logical OR, so
 * concurrent writers (several servers) keep them.
 *
 * @module
 */

import type { MergeFunction, Schema } from "../../lib/schema/schema.ts";
import { sha256 } from "../../lib/crypto/sha256.ts";
import { encodeHex } from "../../lib/encoding/base64url.ts";

/** Users. */
export const USERS_REPO = "/sys/users";
/** One-time invites. */
export const INVITES_REPO = "/sys/invites";
/** Devices: session keys bound to users. */
export const DEVICES_REPO = "/sys/devices";
/** Owners and members of shared repositories. */
export const MEMBERS_REPO = "/sys/members";

/** A user name: one path segment, so `/user/<name>` is the user's repository. */
export const USER_NAME = /^[a-z0-9_-]{1,64}$/;

/** Roles: an admin manages every user's devices, invites and removals. */
export type UserRole = "user" | "admin";

const orMerge =
  ((_b, ours, theirs) => ours === true || theirs === true) as MergeFunction<
    boolean
  > as never;
const maxMerge = ((_b, ours, theirs) =>
  Math.max(
    (ours as number | undefined) ?? 0,
    (theirs as number | undefined) ?? 0,
  )) as MergeFunction<number> as never;

/** Schema of `/sys/users` items. */
export const SYS_USER_SCHEMA: Schema = {
  ns: "sys-user",
  version: 1,
  fields: {
    role: { type: "string", default: "user" },
    createdAt: { type: "number", default: 0 },
    /** `scrypt$log2N$r$p$salt$hash` (see passwords.ts); absent without a password. */
    password: { type: "string" },
    /** Credential id (base64url) → JSON {@link StoredPasskey}. */
    passkeys: { type: "map" },
    /** The WebAuthn user handle (base64url of random bytes, not the name). */
    webauthnId: { type: "string" },
    /** SHA-256 (hex) of bearer tokens (`capra user add`). */
    tokens: { type: "set" },
    /** Final: a removed user's name is never given out again. */
    removed: { type: "boolean", default: false, merge: orMerge },
  },
};

/** Schema of `/sys/invites` items. */
export const SYS_INVITE_SCHEMA: Schema = {
  ns: "sys-invite",
  version: 1,
  fields: {
    name: { type: "string", required: true },
    role: { type: "string", default: "user" },
    expiresAt: { type: "number", required: true },
    used: { type: "boolean", default: false, merge: orMerge },
  },
};

/** Schema of `/sys/devices` items. */
export const SYS_DEVICE_SCHEMA: Schema = {
  ns: "sys-device",
  version: 1,
  fields: {
    user: { type: "string", required: true },
    /** The session id (base64url) of the device's key. */
    session: { type: "string", required: true },
    name: { type: "string", default: "" },
    createdAt: { type: "number", default: 0 },
    lastSeen: { type: "number", default: 0, merge: maxMerge },
    /** Signed out or revoked (the session is revoked too). */
    revoked: { type: "boolean", default: false, merge: orMerge },
  },
};

/** Schema of `/sys/members` items. */
export const SYS_MEMBER_SCHEMA: Schema = {
  ns: "sys-member",
  version: 1,
  fields: {
    repo: { type: "string", required: true },
    owner: { type: "string", required: true },
    members: { type: "set" },
    createdAt: { type: "number", default: 0 },
  },
};

/** Every schema of the user system. */
export const USER_SCHEMAS: readonly Schema[] = [
  SYS_USER_SCHEMA,
  SYS_INVITE_SCHEMA,
  SYS_DEVICE_SCHEMA,
  SYS_MEMBER_SCHEMA,
];

/** A passkey as stored (JSON in the user's `passkeys` map). */
export interface StoredPasskey {
  /** COSE public key, base64url. */
  readonly publicKey: string;
  readonly counter: number;
  readonly transports?: string[];
  readonly createdAt: number;
}

/** Hex SHA-256 of a text: the item key of invites and memberships (64 characters). */
export function hashKey(text: string): string {
  return encodeHex(sha256(new TextEncoder().encode(text)));
}

/** Throws a TypeError unless `name` is a valid user name. */
export function checkUserName(name: unknown): string {
  if (typeof name !== "string" || !USER_NAME.test(name)) {
    throw new TypeError(
      `Invalid user name ${
        JSON.stringify(name)
      }: expected 1-64 characters of [a-z0-9_-]`,
    );
  }
  return name;
}
