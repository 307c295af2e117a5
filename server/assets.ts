/**
 * Serves the web app and the bundled client from the generated module
 * `server/assets_embedded.ts` (built by `deno task bundle`), so neither `deno run` nor the
 * compiled executable reads the source tree at runtime.
 *
 * @module
 */

import type { Hono } from "hono";
import { EMBEDDED_ASSETS } from "./assets_embedded.ts";

/** Cache policy: revalidate every time (the ETag makes that cheap). */
const CACHE_CONTROL = "no-cache";

function etagOf(body: string): string {
  // FNV-1a over the text: cheap, stable across restarts of the same build.
  let h = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) {
    h = Math.imul(h ^ body.charCodeAt(i), 0x01000193);
  }
  return `"${(h >>> 0).toString(16)}-${body.length.toString(16)}"`;
}

/** Mounts `GET /`, `/app.js`, `/app.css` and `/capra.js` on an app. */
export function mountAssets(
  app: Hono,
  assets: typeof EMBEDDED_ASSETS = EMBEDDED_ASSETS,
): void {
  for (const [path, asset] of Object.entries(assets)) {
    const etag = etagOf(asset.body);
    app.get(path, (c) => {
      if (c.req.header("if-none-match") === etag) return c.body(null, 304);
      return c.body(asset.body, 200, {
        "content-type": asset.type,
        "cache-control": CACHE_CONTROL,
        etag,
      });
    });
  }
}
