/**
 * The replica's Ed25519 key pair: created on first open and kept in the storage's
 * metadata (a 0600 file on disk), unless the caller keeps it (the browser client keeps a
 * non-extractable CryptoKey in IndexedDB).
 *
 * @module
 */

import {
  generateSigningKey,
  importSigningKey,
  type SigningKey,
} from "../crypto/keys.ts";
import { decode, encode } from "../encoding/msgpack.ts";
import type { Storage } from "../storage/storage.ts";

/** Metadata name of the replica's key pair. */
export const SESSION_KEY_META = "session-key";

/** Loads the replica's key pair from `storage`, creating and storing it on first use. */
export async function loadOrCreateReplicaKey(
  storage: Storage,
): Promise<SigningKey> {
  const stored = await storage.readMeta(SESSION_KEY_META);
  if (stored) {
    const v = decode(stored) as { pk?: unknown; sk?: unknown };
    if (!(v?.pk instanceof Uint8Array) || !(v?.sk instanceof Uint8Array)) {
      throw new SyntaxError(`Invalid ${SESSION_KEY_META}: expected {pk, sk}`);
    }
    return await importSigningKey({
      publicKey: v.pk,
      privateKeyPkcs8: v.sk,
    });
  }
  const { key, stored: created } = await generateSigningKey();
  await storage.writeMeta(
    SESSION_KEY_META,
    encode({ pk: created.publicKey, sk: created.privateKeyPkcs8 }),
  );
  return key;
}
