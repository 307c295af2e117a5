/**
 * Builds the single executable: runs the bundle step (client + web app embedded into
 * `server/assets_embedded.ts`), then `deno compile`s `server/main.ts` into `dist/capra`.
 * The binary serves the API and the app with no other files beside it. Offline,
 * `deno compile` needs the runtime binary given by `DENORT_BIN`.
 *
 * Usage: `deno task compile [--output dist/capra]`
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { buildAssets } from "./bundle.ts";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
/** Default path of the executable. */
export const DEFAULT_OUTPUT = join(root, "dist/capra");
/** Permissions baked into the executable. */
const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
];

/** Bundles and compiles; returns the executable's path. */
export async function compileExecutable(
  output: string = DEFAULT_OUTPUT,
): Promise<string> {
  await buildAssets();
  await Deno.mkdir(dirname(output), { recursive: true });
  const res = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--quiet",
      ...PERMISSIONS,
      // Workers are loaded by URL at runtime: embed the verifier pool's worker (the
      // pool falls back to Web Crypto if it is missing).
      "--include",
      join(root, "lib/crypto/deno_verify_worker.ts"),
      "--output",
      output,
      join(root, "server/main.ts"),
    ],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (!res.success) {
    throw new Error(
      `deno compile failed${
        Deno.env.get("DENORT_BIN") ? "" : " (offline it needs DENORT_BIN)"
      }:\n${new TextDecoder().decode(res.stderr)}`,
    );
  }
  return output;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--output");
  const out = await compileExecutable(
    i >= 0 ? resolve(Deno.args[i + 1]) : DEFAULT_OUTPUT,
  );
  console.log(`capra executable: ${out}`);
}
