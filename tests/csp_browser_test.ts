/**
 * The web app under the server's Content-Security-Policy (issue 11, finding 9), in
 * Debian's Chromium: served by `createServer` with the demo policy behind the connection
 * guard (as `capra serve` serves it), the app loads, adds and syncs items over HTTP and
 * WebSocket and draws an item's history, and the browser reports no CSP violation. Skips
 * with a printed reason when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { openDatabase } from "../mod.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { createServer } from "../server/app.ts";
import { serveGuarded } from "../server/serve.ts";
import { applyPolicy, defaultPolicy } from "../server/policy/apply_policy.ts";
import { buildAssets } from "../scripts/bundle.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT_MS = 20_000;

function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing`;
  }
}
const skip = chromiumMissing();
if (skip) console.log(`csp_browser_test skipped: ${skip}`);

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "finding 9: the web app runs under the server's CSP with no violation (Chromium)",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const built = await buildAssets({ write: false });
    const { key: root } = await generateSigningKey();
    const trust = new RootSessionTrust(root.publicKey);
    const db = await openDatabase({ memory: true, signer: root, trust });
    const policy = applyPolicy(db, defaultPolicy());
    const server = createServer({
      db,
      assets: built.assets as never,
      limits: policy.limits,
      security: {
        root,
        trust,
        rules: policy.rules,
        anonymousSessions: policy.anonymousSessions,
      },
    });
    const served = await serveGuarded(server, {
      hostname: "127.0.0.1",
      port: 0,
    });
    const url = `http://127.0.0.1:${served.addr.port}`;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = await (await browser.newContext()).newPage();
      const violations: string[] = [];
      page.on("console", (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) {
          violations.push(`console: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => violations.push(`page error: ${e.message}`));
      await page.exposeFunction(
        "reportViolation",
        (v: string) => void violations.push(v),
      );
      await page.addInitScript(() => {
        document.addEventListener("securitypolicyviolation", (e) => {
          (globalThis as unknown as { reportViolation(v: string): void })
            .reportViolation(`${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      const response = await page.goto(`${url}/#csp`);
      const csp = response?.headers()["content-security-policy"] ?? "";
      assert.match(csp, /script-src 'self'/, "the page is served with the CSP");
      await page.waitForFunction(() => "capra" in globalThis);
      await page.fill("#new-text", "under CSP");
      await page.press("#new-text", "Enter");
      // The item reaches the server: HTTP rounds and the socket pass connect-src.
      await eventually(
        "the item on the server",
        () =>
          db.isOpen("/todo/csp") && db.count("/todo/csp") === 1
            ? true
            : undefined,
      );
      await eventually(
        "the WebSocket transport",
        async () =>
          await page.evaluate(() =>
              (globalThis as unknown as {
                capra: { sync: { state: { transport: string } } };
              }).capra.sync.state.transport
            ) === "websocket"
            ? true
            : undefined,
      );
      // A push from the server arrives over the socket and renders.
      db.create("/todo/csp/pushed", "todo", { text: "from the server" });
      await eventually(
        "the pushed item",
        async () =>
          (await page.locator("#items li").count()) === 2 ? true : undefined,
      );
      await page.click('#items li button[data-action="history"]');
      await page.waitForSelector("#history-graph svg");
      await page.evaluate(() => new Promise((r) => setTimeout(r, 200)));
      assert.deepEqual(violations, [], "no CSP violation reported");
    } finally {
      await browser.close();
      await served.close();
      await db.close();
    }
  },
});
