/**
 * The legacy users file: bearer tokens stored as SHA-256 hashes in `capra-users.json`
 * inside the data directory. Users now live in `/sys/users` (server/users/); `capra
 * serve` and the `capra user` commands migrate this file on open. {@link addUser} and
 * {@link bearerAuthenticator} remain for embedders that use the file directly.
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

/**
 * Reads a legacy users file (name → token hash); undefined when it does not exist.
 * Throws a SyntaxError naming the file when it is not a JSON object.
 */
export async function readLegacyUsers(
  path: string,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new SyntaxError(`${path}: expected an object of name → token hash`);
  }
  return v as Record<string, unknown>;
}

async function readUsers(dir: string): Promise<Record<string, string>> {
  return (await readLegacyUsers(join(dir, USERS_FILE)) ?? {}) as Record<
    string,
    string
  >;
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
