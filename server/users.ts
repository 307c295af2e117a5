/**
 * Built-in user authentication: bearer tokens issued by `capra user add NAME`, stored as
 * SHA-256 hashes in `capra-users.json` inside the data directory (0600, atomic writes).
 *
 * @module
 */

import { join } from "node:path";
import { sha256 } from "../lib/crypto/sha256.ts";
import { encodeBase64Url, encodeHex } from "../lib/encoding/base64url.ts";
import { HttpError } from "./errors.ts";

/** File of hashed user tokens, in the data directory. */
export const USERS_FILE = "capra-users.json";
/** Random bytes of a bearer token. */
export const TOKEN_BYTES = 32;
/** A user name: one path segment, so `/user/<name>` is a repository. */
export const USER_NAME = /^[a-z0-9_-]{1,64}$/;

/** Hash of a token as stored. */
export function tokenHash(token: string): string {
  return encodeHex(sha256(new TextEncoder().encode(token)));
}

async function readUsers(dir: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, USERS_FILE)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
}

/** Adds (or re-keys) a user and returns the new bearer token (shown once). */
export async function addUser(dir: string, name: string): Promise<string> {
  if (!USER_NAME.test(name)) {
    throw new TypeError(
      `Invalid user name "${name}": expected 1-64 characters of [a-z0-9_-]`,
    );
  }
  const bytes = new Uint8Array(TOKEN_BYTES);
  crypto.getRandomValues(bytes);
  const token = encodeBase64Url(bytes);
  const users = await readUsers(dir);
  users[name] = tokenHash(token);
  const path = join(dir, USERS_FILE);
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, JSON.stringify(users, null, 2), {
    mode: 0o600,
  });
  await Deno.rename(tmp, path);
  return token;
}

/**
 * An `authenticate` hook checking `Authorization: Bearer <token>` against the users
 * file: the user's name, null without the header, a 401 for an unknown token.
 */
export function bearerAuthenticator(
  dir: string,
): (request: Request) => Promise<string | null> {
  return async (request) => {
    const header = request.headers.get("authorization");
    if (!header) return null;
    const m = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header);
    if (!m) {
      throw new HttpError(401, "bad_token", "Expected Authorization: Bearer");
    }
    const hash = tokenHash(m[1]);
    for (const [name, h] of Object.entries(await readUsers(dir))) {
      if (h === hash) return name;
    }
    throw new HttpError(401, "bad_token", "Unknown bearer token");
  };
}
