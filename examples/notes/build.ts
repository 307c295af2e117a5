/**
 * Builds the notes app into `examples/notes/dist/`: the React app bundled and minified
 * for browsers (with the same `deno bundle` call as `deno task bundle --entry …`), next
 * to the files of `public/`.
 *
 * Usage: `deno run -A examples/notes/build.ts`
 *
 * @module
 */

import { bundleModule } from "../../scripts/bundle.ts";

const here = new URL(".", import.meta.url);
/** Where the built app goes. */
export const DIST_DIR = new URL("dist/", here).pathname;

/** Bundles the app and copies the static files; resolves with the dist directory. */
export async function buildNotes(): Promise<string> {
  await Deno.mkdir(DIST_DIR, { recursive: true });
  await bundleModule("examples/notes/app.tsx", `${DIST_DIR}app.js`);
  for await (const e of Deno.readDir(new URL("public/", here))) {
    if (e.isFile) {
      await Deno.copyFile(
        new URL(`public/${e.name}`, here),
        `${DIST_DIR}${e.name}`,
      );
    }
  }
  return DIST_DIR;
}

if (import.meta.main) console.log(`built ${await buildNotes()}`);
