/**
 * Serves the web app and the bundled client from the generated module
 * `server/assets_embedded.ts` (built by `deno task bundle`), so neither `deno run` nor the
 * compiled executable reads the source tree at runtime.
 *
 * @module
 */

import type { Hono } from "hono";
import { join } from "node:path";
import { EMBEDDED_ASSETS } from "./assets_embedded.ts";

/** Cache policy: revalidate every time (the ETag makes that cheap). */
const CACHE_CONTROL = "no-cache";

/** A file the server sends as it is: content type and body. */
export interface WebAsset {
  readonly type: string;
  readonly body: string | Uint8Array;
}

/** Web assets by URL path (`/` is the page). */
export type WebAssets = Readonly<Record<string, WebAsset>>;

function etagOf(body: string | Uint8Array): string {
  // FNV-1a over the text or bytes: cheap, stable across restarts of the same build.
  let h = 0x811c9dc5;
  for (let i = 0; i < body.length; i++) {
    const unit = typeof body === "string" ? body.charCodeAt(i) : body[i];
    h = Math.imul(h ^ unit, 0x01000193);
  }
  return `"${(h >>> 0).toString(16)}-${body.length.toString(16)}"`;
}

/** Mounts a GET route per asset (by default the built-in app: `/`, `/app.js`, …). */
export function mountAssets(
  app: Hono,
  assets: WebAssets = EMBEDDED_ASSETS,
): void {
  for (const [path, asset] of Object.entries(assets)) {
    if (!path.startsWith("/")) {
      throw new TypeError(`Invalid asset path "${path}": must start with "/"`);
    }
    const etag = etagOf(asset.body);
    app.get(path, (c) => {
      if (c.req.header("if-none-match") === etag) return c.body(null, 304);
      const headers = {
        "content-type": asset.type,
        "cache-control": CACHE_CONTROL,
        etag,
      };
      return typeof asset.body === "string"
        ? c.body(asset.body, 200, headers)
        : c.body(asset.body as Uint8Array<ArrayBuffer>, 200, headers);
    });
  }
}

/** Content types of the files {@link loadAssetDir} serves, by extension. */
export const ASSET_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  webmanifest: "application/manifest+json",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
  woff2: "font/woff2",
};

/**
 * Reads every file under `dir` into {@link WebAssets} (for `createServer({ assets })`):
 * `dir/index.html` is served at `/`, `dir/app.js` at `/app.js`, and so on. Throws a
 * TypeError naming a file whose extension has no known content type, and when there
 * is no index.html.
 */
export async function loadAssetDir(dir: string): Promise<WebAssets> {
  const out: Record<string, WebAsset> = {};
  const walk = async (sub: string): Promise<void> => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) {
        await walk(rel);
        continue;
      }
      const ext = e.name.slice(e.name.lastIndexOf(".") + 1).toLowerCase();
      const type = ASSET_TYPES[ext];
      if (!type) {
        throw new TypeError(
          `Cannot serve ${join(dir, rel)}: unknown content type for ".${ext}"`,
        );
      }
      const bytes = await Deno.readFile(join(dir, rel));
      const asset = { type, body: bytes };
      out[`/${rel}`] = asset;
      if (rel === "index.html") out["/"] = asset;
    }
  };
  await walk("");
  if (!out["/"]) {
    throw new TypeError(`Cannot serve ${dir}: it has no index.html`);
  }
  return out;
}
