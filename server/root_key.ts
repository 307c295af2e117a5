/**
 * The server's root key: an Ed25519 key pair kept apart from the data directory (so a
 * wiped data directory can be refilled by clients whose sessions it signed). Stored as a
 * 0600 file, written atomically (temp file, fsync, rename).
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { decode, encode } from "../lib/encoding/msgpack.ts";
import {
  generateSigningKey,
  importSigningKey,
  type SigningKey,
} from "../lib/crypto/keys.ts";

/** File name of the root key, next to the data directory by default. */
export const ROOT_KEY_FILE = "capra-root.key";
/** Permissions of the root key file. */
export const ROOT_KEY_FILE_MODE = 0o600;

/** Default root key path: `capra-root.key` in the data directory's parent. */
export function defaultRootKeyPath(dataDir: string): string {
  return join(dirname(resolve(dataDir)), ROOT_KEY_FILE);
}

/**
 * Loads the root key at `path`, creating it (0600, atomically) when absent.
 *
 * @example
 * ```ts ignore
 * const { key, created } = await loadOrCreateRootKey("./capra-root.key");
 * ```
 */
export async function loadOrCreateRootKey(
  path: string,
): Promise<{ key: SigningKey; created: boolean }> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (bytes) {
    const v = decode(bytes) as { pk?: unknown; sk?: unknown };
    if (!(v?.pk instanceof Uint8Array) || !(v?.sk instanceof Uint8Array)) {
      throw new SyntaxError(`Invalid root key file ${path}: expected {pk, sk}`);
    }
    const key = await importSigningKey({
      publicKey: v.pk,
      privateKeyPkcs8: v.sk,
    });
    return { key, created: false };
  }
  const { key, stored } = await generateSigningKey();
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  const file = await Deno.open(tmp, {
    write: true,
    createNew: true,
    mode: ROOT_KEY_FILE_MODE,
  });
  try {
    const data = encode({ pk: stored.publicKey, sk: stored.privateKeyPkcs8 });
    let o = 0;
    while (o < data.length) o += await file.write(data.subarray(o));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.chmod(tmp, ROOT_KEY_FILE_MODE);
  await Deno.rename(tmp, path);
  return { key, created: true };
}
