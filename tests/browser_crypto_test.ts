/**
 * The browser client's signer and verifier in Chromium: signatures made in the worker
 * pool verify with Web Crypto on the page, the pool's verifier refuses exactly the
 * forged one, the workers did the work (their counters), and without workers the
 * on-page fallback gives the same verdicts. Skips when Chromium is missing.
 */

import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import {
  chromiumMissing,
  launchChromium,
  openPage,
  startAppServer,
} from "./_browser.ts";
import { bundleModule } from "../scripts/bundle.ts";

const skipReason = chromiumMissing();
if (skipReason) console.log(`browser_crypto_test skipped: ${skipReason}`);

interface Outcome {
  allValidOnPage: boolean;
  rejected: number[];
  stats: { signatures: number; verifications: number };
}

Deno.test({
  name: "browser crypto: worker signatures verify, forgeries are refused",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "capra-crypto-" });
    const js = await bundleModule(
      "tests/fixtures/crypto_page.ts",
      `${tmp}/c.js`,
    )
      .finally(() => Deno.remove(tmp, { recursive: true }));
    const server = await startAppServer({
      assets: {
        "/": {
          type: "text/html; charset=utf-8",
          body: '<!doctype html><script type="module" src="/c.js"></script>',
        },
        "/c.js": { type: "text/javascript; charset=utf-8", body: js },
      },
    });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await openPage(
        await browser.newContext(),
        server.url,
        () => "cryptoTest" in globalThis,
      );
      const run = (workers: boolean) =>
        page.evaluate(
          (w) =>
            (globalThis as unknown as {
              cryptoTest: { run(w: boolean): Promise<unknown> };
            }).cryptoTest.run(w),
          workers,
        ) as Promise<Outcome>;
      const inWorkers = await run(true);
      assert.equal(inWorkers.allValidOnPage, true, "worker signatures verify");
      assert.deepEqual(inWorkers.rejected, [7], "only the forgery is refused");
      assert.equal(inWorkers.stats.signatures, 300, "the workers signed");
      assert.equal(inWorkers.stats.verifications, 300, "the workers verified");
      const onPage = await run(false);
      assert.equal(onPage.allValidOnPage, true);
      assert.deepEqual(onPage.rejected, [7]);
      assert.equal(onPage.stats.signatures, 0);
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});
