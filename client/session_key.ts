/**
 * The browser replica's Ed25519 key pair: generated non-extractable and kept in IndexedDB
 * as a CryptoKey (structured clone stores it without ever exposing the private bytes).
 * A Web Lock makes two tabs opening at once agree on one key.
 *
 * @module
 */

import type { IdbStorage } from "./idb_storage.ts";

/** Name of the stored key pair in the storage's metadata. */
export const BROWSER_KEY_NAME = "session-cryptokey";

/** The replica's key pair: raw public key, non-extractable private CryptoKey. */
export interface BrowserKeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: CryptoKey;
}

async function loadOrCreate(storage: IdbStorage): Promise<BrowserKeyPair> {
  const stored = await storage.readValue<BrowserKeyPair>(BROWSER_KEY_NAME);
  if (stored?.privateKey && stored.publicKey instanceof Uint8Array) {
    return { publicKey: stored.publicKey, privateKey: stored.privateKey };
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
    } satisfies BrowserKeyPair,
  );
  return { publicKey, privateKey: pair.privateKey };
}

/** Loads the replica's key pair, creating it on first use (one per IndexedDB database). */
export function browserKeyPair(storage: IdbStorage): Promise<BrowserKeyPair> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return loadOrCreate(storage);
  return locks.request(
    `capra-key:${storage.name}`,
    () => loadOrCreate(storage),
  );
}
