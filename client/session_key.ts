/**
 * The browser replica's Ed25519 key pair: generated non-extractable and kept in IndexedDB
 * as a CryptoKey (structured clone stores it without ever exposing the private bytes).
 * A Web Lock makes two tabs opening at once agree on one key.
 *
 * @module
 */

import {
  type SigningKey,
  signingKeyFromCryptoKey,
} from "../lib/crypto/keys.ts";
import type { IdbStorage } from "./idb_storage.ts";

/** Name of the stored key pair in the storage's metadata. */
export const BROWSER_KEY_NAME = "session-cryptokey";

interface StoredBrowserKey {
  readonly publicKey: Uint8Array;
  readonly privateKey: CryptoKey;
}

async function loadOrCreate(storage: IdbStorage): Promise<SigningKey> {
  const stored = await storage.readValue<StoredBrowserKey>(BROWSER_KEY_NAME);
  if (stored?.privateKey && stored.publicKey instanceof Uint8Array) {
    return signingKeyFromCryptoKey(stored.publicKey, stored.privateKey);
  }
  const pair = await crypto.subtle.generateKey("Ed25519", false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKey = new Uint8Array(
    await crypto.subtle.exportKey("raw", pair.publicKey),
  );
  await storage.writeValue(
    BROWSER_KEY_NAME,
    {
      publicKey,
      privateKey: pair.privateKey,
    } satisfies StoredBrowserKey,
  );
  return signingKeyFromCryptoKey(publicKey, pair.privateKey);
}

/** Loads the replica's key pair, creating it on first use (one per IndexedDB database). */
export function browserSigningKey(storage: IdbStorage): Promise<SigningKey> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return loadOrCreate(storage);
  return locks.request(
    `capra-key:${storage.name}`,
    () => loadOrCreate(storage),
  );
}
