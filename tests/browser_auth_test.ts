/**
 * Users and sign-in in Debian's Chromium (npm:playwright-core), through the web app's
 * own screens: passkeys on a virtual authenticator (the DevTools Protocol `WebAuthn`
 * domain), passwords, an invite used once, the private list on two devices, a shared
 * list whose member is added and removed, a revoked device that keeps its unsynced edit
 * and reports it, and sign-in rate limiting. The server listens on 127.0.0.1 and the
 * pages use `http://localhost` (a secure context; IP addresses are not valid RP IDs).
 * Skips with a printed reason when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
} from "playwright-core";
import { openDatabase } from "../mod.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { compileRules } from "../lib/sync/declared_rules.ts";
import { TODO_SCHEMA } from "../client/app/todo_schema.ts";
import { buildAssets, type BuiltAssets } from "../scripts/bundle.ts";
import { createServer, type Server } from "../server/app.ts";
import type { ServerLimits } from "../server/limits/limits.ts";

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
/** Longest wait for a page to show what a step expects. */
const WAIT_MS = 20_000;

const skipReason = (() => {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium; .ci/run does it)`;
  }
})();
if (skipReason) console.log(`browser_auth_test skipped: ${skipReason}`);

let assets: Promise<BuiltAssets> | undefined;

/** A server with the user system (open sign-up) serving a fresh bundle on localhost. */
async function startServer(limits: Partial<ServerLimits> = {}) {
  const built = await (assets ??= buildAssets({ write: false }));
  const { key: root } = await generateSigningKey();
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    memory: true,
    signer: root,
    trust,
    schemas: [TODO_SCHEMA],
  });
  const server: Server = createServer({
    db,
    limits: {
      sessionsPerAddressPerMinute: 10_000,
      sessionsPerUserPerMinute: 10_000,
      signInPerAddressPerMinute: 1000,
      ...limits,
    },
    security: {
      root,
      trust,
      rules: compileRules([
        { pattern: "/todo/*", read: "session", write: "session" },
        { pattern: "/list/*", read: "members", write: "members" },
      ]),
      users: { signUp: "open", scryptLog2N: 10 },
    },
  });
  const ac = new AbortController();
  const http = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, (req) => {
    const asset = req.method === "GET" &&
      built.assets[new URL(req.url).pathname];
    return asset
      ? new Response(asset.body, { headers: { "content-type": asset.type } })
      : server.app.fetch(req);
  });
  return {
    url: `http://localhost:${http.addr.port}`,
    db,
    server,
    async close() {
      server.hub?.closeAll();
      ac.abort();
      await http.finished;
      await db.close();
    },
  };
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Device {
  readonly ctx: BrowserContext;
  readonly page: Page;
  authenticator?: string;
}

/** A browser context (one device) with the app open at `hash`. */
async function device(
  browser: Browser,
  url: string,
  hash = "#e2e",
  passkeys = false,
): Promise<Device> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  const d: Device = { ctx, page };
  if (passkeys) {
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send(
      "WebAuthn.addVirtualAuthenticator",
      {
        options: {
          protocol: "ctap2",
          transport: "internal",
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      },
    );
    d.authenticator = authenticatorId;
    Object.assign(d, { cdp });
  }
  await page.goto(`${url}/${hash}`);
  await page.waitForFunction(() => "capra" in globalThis);
  return d;
}

const texts = (p: Page) =>
  p.evaluate(() =>
    (globalThis as unknown as {
      capra: { items(): { text: string }[] };
    }).capra.items().map((i) => i.text).sort()
  );

async function addItem(p: Page, text: string): Promise<void> {
  await p.fill("#new-text", text);
  await p.press("#new-text", "Enter");
  await eventually(
    `"${text}" listed`,
    async () => (await texts(p)).includes(text),
  );
}

async function signedInAs(p: Page, name: string): Promise<void> {
  try {
    await eventually(
      `signed in as ${name}`,
      async () =>
        (await p.textContent("#who").catch(() => null)) ===
          `Signed in as ${name}`,
    );
  } catch (e) {
    const shown = await p.textContent("#account-error").catch(() => null);
    throw new Error(`${(e as Error).message} (the page says: ${shown})`);
  }
  await p.waitForFunction(() => "capra" in globalThis);
}

async function accountError(p: Page): Promise<string> {
  return await eventually("an account error", async () => {
    const t = await p.textContent("#account-error");
    return t ? t : undefined;
  });
}

Deno.test({
  name:
    "browser: passkey sign-up and sign-in on two devices, password sign-in, invites, a revoked device, shared list members",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const srv = await startServer();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    try {
      // Device A: sign up with a passkey; the private list opens.
      const a = await device(browser, srv.url, "#e2e", true);
      await a.page.click("details summary");
      await a.page.fill("#sign-up-name", "alice");
      await a.page.click("#sign-up-passkey");
      await signedInAs(a.page, "alice");
      assert.equal(
        await a.page.evaluate(() => location.hash),
        "#me",
      );
      await addItem(a.page, "secret plan");

      // Device B: the same passkey (copied to its authenticator) signs in as alice.
      const b = await device(browser, srv.url, "#e2e", true);
      const cdpA = (a as unknown as { cdp: { send: CdpSend } }).cdp;
      const cdpB = (b as unknown as { cdp: { send: CdpSend } }).cdp;
      const { credentials } = await cdpA.send("WebAuthn.getCredentials", {
        authenticatorId: a.authenticator,
      }) as { credentials: unknown[] };
      assert.equal(credentials.length, 1, "one resident passkey");
      await cdpB.send("WebAuthn.addCredential", {
        authenticatorId: b.authenticator,
        credential: credentials[0],
      });
      await b.page.click("#sign-in-passkey");
      await signedInAs(b.page, "alice");
      await eventually(
        "the private list on device B",
        async () => (await texts(b.page)).includes("secret plan"),
      );
      await addItem(b.page, "from b");
      await eventually(
        "device B's edit on device A",
        async () => (await texts(a.page)).includes("from b"),
      );
      // The server stored alice's list under /user/alice, readable by her alone.
      assert.ok(srv.db.keys("/user/alice").length >= 2);

      // Password: bob signs up on C and signs in on D; he does not see alice's list.
      const c = await device(browser, srv.url);
      await c.page.click("details summary");
      await c.page.fill("#sign-up-name", "bob");
      await c.page.fill("#sign-up-password", "bob-password-1");
      await c.page.click("#sign-up-form button[type=submit]");
      await signedInAs(c.page, "bob");
      const d = await device(browser, srv.url);
      await d.page.fill("#sign-in-name", "bob");
      await d.page.fill("#sign-in-password", "wrong-password");
      await d.page.click("#sign-in-form button[type=submit]");
      assert.match(await accountError(d.page), /Sign-in failed/);
      await d.page.fill("#sign-in-password", "bob-password-1");
      await d.page.click("#sign-in-form button[type=submit]");
      await signedInAs(d.page, "bob");
      assert.ok(!(await texts(d.page)).includes("secret plan"));

      // A shared list: alice creates it, adds bob, bob sees it; removed, he loses it.
      await a.page.fill("#new-list-name", "groceries");
      await a.page.click("#new-list-form button[type=submit]");
      await eventually(
        "the shared list open",
        async () =>
          /^#list=groceries-/.test(await a.page.evaluate(() => location.hash)),
      );
      await a.page.waitForSelector("#add-member-form");
      await addItem(a.page, "milk");
      const hash = await a.page.evaluate(() => location.hash);
      await a.page.fill("#member-name", "bob");
      await a.page.click("#add-member-form button[type=submit]");
      await a.page.waitForSelector('#member-list li[data-member="bob"]');
      await d.page.evaluate((h) => location.hash = h, hash);
      await eventually(
        "the shared list on bob's device",
        async () => (await texts(d.page)).includes("milk"),
      );
      await addItem(d.page, "eggs");
      await eventually(
        "bob's edit on alice's device",
        async () => (await texts(a.page)).includes("eggs"),
      );
      await a.page.click("#remove-bob");
      await eventually(
        "bob removed",
        async () =>
          (await a.page.$('#member-list li[data-member="bob"]')) === null,
      );
      await d.page.reload();
      await d.page.waitForFunction(() => "capra" in globalThis);
      await d.page.waitForSelector("#list-access");
      await eventually(
        "bob's sync refused",
        async () =>
          (await d.page.getAttribute("#status", "data-status")) === "error",
      );

      // A revoked device keeps its unsynced edit and reports it.
      const bSession = await b.page.evaluate(() =>
        (globalThis as unknown as { capra: { db: { sessionId: string } } })
          .capra.db.sessionId
      );
      await b.ctx.setOffline(true);
      await addItem(b.page, "offline edit");
      await a.page.evaluate(() => location.hash = "#me");
      await a.page.waitForSelector(`#devices li[data-device="${bSession}"]`);
      await a.page.click(`#revoke-${bSession}`);
      await eventually(
        "device B gone from the list",
        async () =>
          (await a.page.$(`#devices li[data-device="${bSession}"]`)) === null,
      );
      await b.ctx.setOffline(false);
      const message = await eventually("the revoked report on B", async () => {
        const el = await b.page.$("#revoked-message");
        return el && await el.isVisible() ? await el.textContent() : undefined;
      });
      assert.match(message!, /signed out\. 1 edit made here did not reach/);
      assert.ok((await texts(b.page)).includes("offline edit"), "kept locally");
      assert.ok(
        !srv.db.keys("/user/alice").some((k) =>
          srv.db.item(`/user/alice/${k}`)?.get("text") === "offline edit"
        ),
        "refused by the server",
      );

      // An invite works once.
      const invite = await srv.server.users!.invites.create("carol");
      const e = await device(browser, srv.url, `#invite=${invite.token}`);
      await eventually(
        "the invite note",
        async () =>
          /creates the account “carol”/.test(
            await e.page.textContent("#invite-note") ?? "",
          ),
      );
      await e.page.fill("#sign-up-password", "carol-password");
      await e.page.click("#sign-up-form button[type=submit]");
      await signedInAs(e.page, "carol");
      const f = await device(browser, srv.url, `#invite=${invite.token}`);
      await f.page.fill("#sign-up-password", "mallory-password");
      await f.page.click("#sign-up-form button[type=submit]");
      assert.match(await accountError(f.page), /already used/);
      for (const x of [a, b, c, d, e, f]) await x.ctx.close();
    } finally {
      await browser.close();
      await srv.close();
    }
  },
});

type CdpSend = (method: string, params?: unknown) => Promise<unknown>;

Deno.test({
  name: "browser: sign-in attempts are rate-limited",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const srv = await startServer({ signInPerNamePerMinute: 3 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    try {
      const g = await device(browser, srv.url);
      const errors: string[] = [];
      for (let i = 0; i < 4; i++) {
        await g.page.fill("#sign-in-name", "mallory");
        await g.page.fill("#sign-in-password", `guess-${i}-password`);
        await g.page.evaluate(() =>
          document.getElementById("account-error")!.textContent = ""
        );
        await g.page.click("#sign-in-form button[type=submit]");
        errors.push(await accountError(g.page));
      }
      assert.deepEqual(
        errors.map((e) => /Too many sign-in attempts/.test(e)),
        [false, false, false, true],
        errors.join(" | "),
      );
      await g.ctx.close();
    } finally {
      await browser.close();
      await srv.close();
    }
  },
});
