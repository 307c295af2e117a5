/**
 * The committed `server/assets_embedded.ts` (what `deno run` and the compiled binary
 * serve) must be built from the current client sources: a client change without
 * `deno task bundle` fails here, not in production.
 */

import assert from "node:assert/strict";
import {
  bundleSizes,
  EMBEDDED_MODULE,
  recordedDigest,
  sourceDigest,
} from "../scripts/bundle.ts";

Deno.test("server/assets_embedded.ts is built from the current client sources", async () => {
  const committed = await Deno.readTextFile(EMBEDDED_MODULE);
  assert.equal(
    recordedDigest(committed),
    await sourceDigest(),
    "server/assets_embedded.ts is out of date: run `deno task bundle`",
  );
  const { EMBEDDED_ASSETS } = await import("../server/assets_embedded.ts");
  assert.deepEqual(Object.keys(EMBEDDED_ASSETS).sort(), [
    "/",
    "/app.css",
    "/app.js",
    "/capra.js",
    "/sw.js",
  ]);
  for (const a of Object.values(EMBEDDED_ASSETS)) assert.ok(a.body.length > 0);
});

Deno.test("bundleSizes reports min and min+gzip bytes and writes nothing", async () => {
  const before = await Deno.readTextFile(EMBEDDED_MODULE);
  const s = await bundleSizes();
  for (const v of Object.values(s)) assert.ok(Number.isInteger(v) && v > 0);
  assert.ok(s.clientGzipBytes < s.clientBytes);
  assert.ok(s.appGzipBytes < s.appBytes);
  assert.equal(await Deno.readTextFile(EMBEDDED_MODULE), before);
});
