/**
 * `DIR/capra-serving.json`: written by `capra serve` once it listens (its pid, the local
 * address it answers on, its public URL) and removed when it stops, so the `capra user`
 * commands, which cannot open a directory a server holds, send their work to that
 * server instead (signed by the root key). Never copied by `backup`.
 *
 * @module
 */

import { join } from "node:path";

/** Name of the file in the data directory. */
export const SERVING_FILE = "capra-serving.json";

/** What the file says. */
export interface ServingInfo {
  readonly pid: number;
  /** Where the server answers on this machine. */
  readonly url: string;
  /** The URL browsers use (invite links), when it differs. */
  readonly publicUrl?: string;
}

/**
 * Writes the file for this process (0600) and returns its remover. A wildcard listen
 * address is written as the loopback one.
 */
export async function writeServingFile(
  dir: string,
  url: string,
  publicUrl?: string,
): Promise<() => Promise<void>> {
  const path = join(dir, SERVING_FILE);
  const local = url.replace("//0.0.0.0:", "//127.0.0.1:").replace(
    "//[::]:",
    "//[::1]:",
  );
  const info: ServingInfo = {
    pid: Deno.pid,
    url: local,
    ...(publicUrl ? { publicUrl } : {}),
  };
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, JSON.stringify(info), { mode: 0o600 });
  await Deno.rename(tmp, path);
  return async () => {
    await Deno.remove(path).catch(() => {});
  };
}

/** The serving file of `dir`, if a server wrote one and it is readable. */
export async function readServingFile(
  dir: string,
): Promise<ServingInfo | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(join(dir, SERVING_FILE)));
    if (typeof v?.url === "string" && typeof v?.pid === "number") return v;
  } catch {
    // missing or damaged: no server known
  }
  return undefined;
}
