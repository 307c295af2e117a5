/**
 * Ed25519 session keys through Web Crypto. A session id is the first 16 bytes of the
 * SHA-256 of the raw public key; the private key never leaves the replica.
 *
 * @module
 */

import { sha256 } from "./sha256.ts";
import { encodeBase64Url } from "../encoding/base64url.ts";

/** Length of a raw Ed25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Length of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;
/** Length of a binary session id. */
export const SESSION_ID_BYTES = 16;

/** A session id: base64url of 16 bytes. */
export type SessionId = string & { readonly __brand: "SessionId" };

/** Binary session id of a raw public key. */
export function sessionIdBytes(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).subarray(0, SESSION_ID_BYTES);
}

/** Session id of a raw public key. */
export function sessionIdOf(publicKey: Uint8Array): SessionId {
  return encodeBase64Url(sessionIdBytes(publicKey)) as SessionId;
}

/** A key pair able to sign; `publicKey` is raw bytes. */
export interface SigningKey {
  readonly publicKey: Uint8Array;
  readonly sessionId: SessionId;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

class WebCryptoSigningKey implements SigningKey {
  readonly sessionId: SessionId;
  constructor(
    readonly publicKey: Uint8Array,
    private readonly privateKey: CryptoKey,
  ) {
    this.sessionId = sessionIdOf(publicKey);
  }
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign(
        "Ed25519",
        this.privateKey,
        message as Uint8Array<ArrayBuffer>,
      ),
    );
  }
}

/** Serialized key pair (PKCS#8 private key) for storage in a 0600 file. */
export interface StoredKeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKeyPkcs8: Uint8Array;
}

/** Generates a new key pair and its storable form. */
export async function generateSigningKey(): Promise<
  { key: SigningKey; stored: StoredKeyPair }
> {
  const pair = await crypto.subtle.generateKey("Ed25519", true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKey = new Uint8Array(
    await crypto.subtle.exportKey("raw", pair.publicKey),
  );
  const privateKeyPkcs8 = new Uint8Array(
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
  );
  // Re-import as non-extractable so the live key cannot be exported by accident.
  const key = await importSigningKey({ publicKey, privateKeyPkcs8 });
  return { key, stored: { publicKey, privateKeyPkcs8 } };
}

/** Imports a stored key pair; the private key becomes non-extractable. */
export async function importSigningKey(
  stored: StoredKeyPair,
): Promise<SigningKey> {
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    stored.privateKeyPkcs8 as Uint8Array<ArrayBuffer>,
    "Ed25519",
    false,
    ["sign"],
  );
  return new WebCryptoSigningKey(stored.publicKey, privateKey);
}

/** Wraps an existing non-extractable CryptoKey (browsers keep these in IndexedDB). */
export function signingKeyFromCryptoKey(
  publicKey: Uint8Array,
  privateKey: CryptoKey,
): SigningKey {
  return new WebCryptoSigningKey(publicKey, privateKey);
}

const verifyKeys = new Map<string, Promise<CryptoKey>>();
/**
 * Imported keys by the key bytes' object, with a copy of the bytes they were imported
 * from (checked on every use: the object may have been reused for another key).
 */
const importedKeys = new WeakMap<
  Uint8Array,
  { readonly raw: Uint8Array; readonly key: CryptoKey }
>();

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Verifies an Ed25519 signature with a raw public key. Never throws on bad input. */
export function verifySignature(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  if (
    publicKey.length !== PUBLIC_KEY_BYTES ||
    signature.length !== SIGNATURE_BYTES
  ) return Promise.resolve(false);
  // A session's key bytes are one object: the common case starts verifying at once.
  const known = importedKeys.get(publicKey);
  if (known && sameBytes(known.raw, publicKey)) {
    return verifyWith(known.key, signature, message).catch(() => false);
  }
  return verifyImporting(publicKey, signature, message);
}

function verifyWith(
  key: CryptoKey,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  return crypto.subtle.verify(
    "Ed25519",
    key,
    signature as Uint8Array<ArrayBuffer>,
    message as Uint8Array<ArrayBuffer>,
  );
}

async function verifyImporting(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  const raw = publicKey.slice();
  const cacheKey = encodeBase64Url(raw);
  let key = verifyKeys.get(cacheKey);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      "Ed25519",
      false,
      ["verify"],
    );
    if (verifyKeys.size > 10_000) verifyKeys.clear();
    verifyKeys.set(cacheKey, key);
  }
  try {
    const imported = await key;
    importedKeys.set(publicKey, { raw, key: imported });
    return await verifyWith(imported, signature, message);
  } catch {
    verifyKeys.delete(cacheKey);
    importedKeys.delete(publicKey);
    return false;
  }
}
