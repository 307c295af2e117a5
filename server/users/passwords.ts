/**
 * Password hashes: scrypt from `node:crypto` with a random 16-byte salt, stored as
 * `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (base64url), compared in constant time.
 * {@link PasswordHasher.verifyUnknown} spends the same work on a name that has no
 * password, so the time of a sign-in does not tell whether the user exists.
 *
 * @module
 */

import { scrypt, timingSafeEqual } from "node:crypto";
import {
  decodeBase64Url,
  encodeBase64Url,
} from "../../lib/encoding/base64url.ts";

/** Default scrypt cost, log2 of N (N = 32768, r = 8, p = 1: 32 MiB, ~100 ms per hash). */
export const DEFAULT_SCRYPT_LOG2_N = 15;
/** scrypt block size. */
export const SCRYPT_R = 8;
/** scrypt parallelism. */
export const SCRYPT_P = 1;
/** Bytes of salt. */
export const SALT_BYTES = 16;
/** Bytes of derived key. */
export const HASH_BYTES = 32;
/** Shortest password accepted at sign-up. */
export const MIN_PASSWORD_LENGTH = 8;
/** Longest password accepted (scrypt's input is hashed anyway; this bounds the work). */
export const MAX_PASSWORD_LENGTH = 1024;

const FORMAT =
  /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

function derive(
  password: string,
  salt: Uint8Array,
  log2N: number,
  r: number,
  p: number,
): Promise<Uint8Array> {
  const N = 2 ** log2N;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, HASH_BYTES, {
      N,
      r,
      p,
      maxmem: 256 * N * r + 1024 * 1024,
    }, (err, key) => err ? reject(err) : resolve(new Uint8Array(key)))
  );
}

/** Throws a TypeError unless `password` is an acceptable new password. */
export function checkNewPassword(password: unknown): string {
  if (typeof password !== "string") {
    throw new TypeError("password must be a string");
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new RangeError(
      `password must have at least ${MIN_PASSWORD_LENGTH} characters, got ${password.length}`,
    );
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new RangeError(
      `password must have at most ${MAX_PASSWORD_LENGTH} characters, got ${password.length}`,
    );
  }
  return password;
}

/** Hashes and checks passwords at one cost. */
export class PasswordHasher {
  readonly #dummy: Promise<string>;

  constructor(readonly log2N: number = DEFAULT_SCRYPT_LOG2_N) {
    if (!Number.isInteger(log2N) || log2N < 4 || log2N > 20) {
      throw new RangeError(`scrypt log2 N must be 4-20, got ${log2N}`);
    }
    // The hash unknown names are checked against: the same work as a real one.
    this.#dummy = this.hash(crypto.randomUUID());
  }

  /** The stored form of a new password. */
  async hash(password: string): Promise<string> {
    const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
    const key = await derive(password, salt, this.log2N, SCRYPT_R, SCRYPT_P);
    return `scrypt$${this.log2N}$${SCRYPT_R}$${SCRYPT_P}$${
      encodeBase64Url(salt)
    }$${encodeBase64Url(key)}`;
  }

  /**
   * True when `password` matches `stored` (constant-time comparison). A stored value
   * that is not a hash of this format is false, after the same work as a real check.
   */
  async verify(password: string, stored: string | undefined): Promise<boolean> {
    const m = stored === undefined ? null : FORMAT.exec(stored);
    const log2N = m ? Number(m[1]) : NaN;
    if (
      !m || log2N < 4 || log2N > 20 || password.length > MAX_PASSWORD_LENGTH
    ) {
      await this.verifyUnknown(password);
      return false;
    }
    let salt: Uint8Array, expected: Uint8Array;
    try {
      salt = decodeBase64Url(m[4]);
      expected = decodeBase64Url(m[5]);
    } catch {
      await this.verifyUnknown(password);
      return false;
    }
    const key = await derive(password, salt, log2N, Number(m[2]), Number(m[3]));
    return key.length === expected.length && timingSafeEqual(key, expected);
  }

  /** Spends a password check's work and returns false (names without a password). */
  async verifyUnknown(password: string): Promise<false> {
    const m = FORMAT.exec(await this.#dummy)!;
    const key = await derive(
      password.slice(0, MAX_PASSWORD_LENGTH),
      decodeBase64Url(m[4]),
      this.log2N,
      SCRYPT_R,
      SCRYPT_P,
    );
    timingSafeEqual(key, decodeBase64Url(m[5]));
    return false;
  }
}
