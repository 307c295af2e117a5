/**
 * End-to-end tests of the web app in Debian's Chromium (via npm:playwright-core): live
 * edits between two browser contexts (latency reported), offline conflicting edits that
 * converge to what a Deno replica computes, reloads, two tabs, and screenshots written to
 * `test-artifacts/`. Skips with a printed reason when /usr/bin/chromium is missing
 * (`.ci/run` installs it).
 *
 * Sessions: every replica (both browsers, the Deno one) gets a root-signed session from
 * the server (`POST /v1/sessions`) and trusts the others through the session records
 * relayed with their commits.
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
import { ServerSession } from "../lib/sync/server_session.ts";
import { listRepo, TODO_SCHEMA } from "../client/app/todo_schema.ts";
import { buildAssets, bundleModule } from "../scripts/bundle.ts";

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
/** Longest wait for the browsers to converge. */
const CONVERGE_TIMEOUT_MS = 20_000;
const LIST = "e2e";
const REPO = listRepo(LIST);
const ARTIFACTS = new URL("../test-artifacts/", import.meta.url);

function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium; .ci/run does it)`;
  }
}

const skipReason = chromiumMissing();
if (skipReason) console.log(`browser_test skipped: ${skipReason}`);

interface ItemView {
  key: string;
  text: string;
  done: boolean;
  order: number;
  tags: string;
}

const items = (p: Page) =>
  p.evaluate(() =>
    (globalThis as unknown as { capra: { items(): unknown } }).capra.items()
  ) as Promise<ItemView[]>;

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openApp(ctx: BrowserContext, url: string): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  page.on(
    "console",
    (m) => m.type() === "error" && console.error("page:", m.text()),
  );
  await page.goto(`${url}/#${LIST}`);
  await page.waitForFunction(() => "capra" in globalThis);
  return page;
}

const sessionKey = (p: Page) =>
  p.evaluate(() =>
    (globalThis as unknown as { capra: { publicKey: string } }).capra.publicKey
  );

Deno.test({
  name: "browser: live edits, offline merge, reload, tabs, screenshots",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sizes = await buildAssets();
    console.log(
      `client bundle ${(sizes.client.gzipBytes / 1024).toFixed(1)} KB min+gzip`,
    );
    const { createApp } = await import("../server/app.ts");
    const { key: root } = await generateSigningKey();
    const rootTrust = new RootSessionTrust(root.publicKey);
    const serverDb = await openDatabase({
      memory: true,
      signer: root,
      trust: rootTrust,
    });
    const ac = new AbortController();
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      onListen: () => {},
    }, createApp({ db: serverDb, security: { root, trust: rootTrust } }).fetch);
    const url = `http://127.0.0.1:${server.addr.port}`;
    const denoDb = await openDatabase({ memory: true, schemas: [TODO_SCHEMA] });
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
      });
      const ctxA = await browser.newContext();
      const ctxB = await browser.newContext();
      const a = await openApp(ctxA, url);
      const b = await openApp(ctxB, url);

      // 1. An edit in one context appears in the other.
      await a.fill("#new-text", "Buy milk");
      const t0 = performance.now();
      await a.press("#new-text", "Enter");
      await eventually(
        "B to see A's item",
        async () =>
          (await items(b)).some((i) => i.text === "Buy milk") || undefined,
      );
      const latency = performance.now() - t0;
      const via = await b.evaluate(() =>
        (globalThis as unknown as {
          capra: { sync: { state: { transport: string } } };
        }).capra.sync.state.transport
      );
      console.log(`live edit latency A → B: ${latency.toFixed(0)} ms (${via})`);
      const [milk] = await items(a);
      await a.evaluate(([repo, key]) => {
        const c = (globalThis as unknown as {
          capra: {
            db: { item(p: string): { set(f: string, v: unknown): void } };
          };
        }).capra;
        c.db.item(`${repo}/${key}`).set("tags", new Set(["x"]));
      }, [REPO, milk.key]);
      await eventually(
        "B to see the tag",
        async () => (await items(b))[0]?.tags === "x" || undefined,
      );

      // 2. Both offline, conflicting edits, back online: identical values.
      await ctxA.setOffline(true);
      await ctxB.setOffline(true);
      const edit = (
        p: Page,
        changes: Record<string, unknown>,
        tags: string[],
      ) =>
        p.evaluate(([repo, key, ch, t]) => {
          const c = (globalThis as unknown as {
            capra: {
              db: {
                item(p: string): { update(c: Record<string, unknown>): void };
              };
            };
          }).capra;
          c.db.item(`${repo}/${key}`).update({
            ...(ch as Record<string, unknown>),
            tags: new Set(t as string[]),
          });
        }, [REPO, milk.key, changes, tags] as const);
      await edit(a, { text: "Buy oat milk" }, ["x", "a"]);
      await edit(b, { text: "Buy soy milk", done: true }, ["x", "b"]);
      await a.fill("#new-text", "Offline from A");
      await a.press("#new-text", "Enter");
      assert.equal(
        await a.getAttribute("#status", "data-online"),
        "false",
        "A shows offline",
      );
      await ctxA.setOffline(false);
      await ctxB.setOffline(false);
      const converged = await eventually("A and B to converge", async () => {
        const [x, y] = [await items(a), await items(b)];
        return x.length === 2 && JSON.stringify(x) === JSON.stringify(y)
          ? x
          : undefined;
      });
      const merged = converged.find((i) => i.key === milk.key)!;
      assert.equal(merged.done, true, "B's done survives (different field)");
      assert.equal(merged.tags, "a, b, x", "set elements merge element-wise");
      assert.ok(
        ["Buy oat milk", "Buy soy milk"].includes(merged.text),
        "same field: one writer wins, the same on both sides",
      );
      const denoSession = await ServerSession.create(denoDb, url);
      await denoDb.syncWith(
        REPO,
        denoSession.httpTransport(REPO),
        denoSession.hooks,
      );
      const denoView = denoDb.keys(REPO).sort().map((key) => {
        const it = denoDb.item(`${REPO}/${key}`)!;
        const tags = [...(it.get("tags") as Set<string> | undefined ?? [])];
        return {
          key,
          text: it.get("text"),
          done: it.get("done"),
          tags: tags.sort().join(", "),
        };
      });
      assert.deepEqual(
        denoView,
        converged.map(({ key, text, done, tags }) => ({
          key,
          text,
          done,
          tags,
        }))
          .sort((p, q) => p.key < q.key ? -1 : 1),
        "the Deno replica computes the same values",
      );

      // 3. Reload keeps data; two tabs of one context stay consistent.
      const keyBeforeReload = await sessionKey(a);
      await a.reload();
      await a.waitForFunction(() => "capra" in globalThis);
      // Read before any sync round could refill it: this is what IndexedDB kept.
      assert.deepEqual(await items(a), converged, "reload keeps data");
      assert.equal(
        await sessionKey(a),
        keyBeforeReload,
        "reload keeps the key",
      );
      const a2 = await openApp(ctxA, url);
      await a2.fill("#new-text", "From tab 2");
      await a2.press("#new-text", "Enter");
      await eventually(
        "tab 1 to see tab 2's item",
        async () =>
          (await items(a)).some((i) => i.text === "From tab 2") || undefined,
      );
      await eventually(
        "both tabs to agree",
        async () =>
          JSON.stringify(await items(a)) === JSON.stringify(await items(a2)) ||
          undefined,
      );

      // 4. Screenshots of the app and of the history panel.
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const row = `li[data-key="${milk.key}"]`;
      await a.click(`${row} button[data-action="history"]`);
      await a.waitForSelector("#history-graph svg");
      const before = await a.locator("#history-graph .node").count();
      // A write on top of the two concurrent heads is the merge commit; the panel
      // redraws live as it and B's next edit arrive.
      await a.click(`${row} input[data-field="done"]`);
      await eventually(
        "B to see the merge",
        async () =>
          (await items(b)).find((i) => i.key === milk.key)?.done === false ||
          undefined,
      );
      await b.fill(`${row} input[data-field="text"]`, "Buy milk (any)");
      await b.press(`${row} input[data-field="text"]`, "Enter");
      await eventually(
        "A's history to show B's edit",
        async () =>
          await a.locator("#history-graph .node").count() >= before + 2 ||
          undefined,
      );
      await a.screenshot({ path: new URL("app.png", ARTIFACTS).pathname });
      await a.locator("#history").screenshot({
        path: new URL("history.png", ARTIFACTS).pathname,
      });
      const marks = await a.locator("#history-graph .node").count();
      assert.ok(marks >= 4, `history shows the commits (${marks})`);
      assert.ok(await a.locator("#history-graph .merge").count() >= 1);
      // 5. Logout / clear with two tabs open: not blocked; both tabs start afresh with
      // a new session key and get the shared list back from the server.
      const keyBefore = await sessionKey(a);
      const reloaded = a.waitForEvent("load");
      await a2.click("#clear");
      await reloaded;
      await a2.waitForFunction(() => "capra" in globalThis);
      await a.waitForFunction(() => "capra" in globalThis);
      const keyAfter = await sessionKey(a2);
      assert.notEqual(keyAfter, keyBefore, "a new replica after clearing");
      assert.equal(await sessionKey(a), keyAfter, "both tabs share it");
      await eventually(
        "the cleared tab to refill from the server",
        async () => (await items(a2)).length === 3 || undefined,
      );
    } catch (e) {
      for (const ctx of browser?.contexts() ?? []) {
        for (const p of ctx.pages()) {
          console.error(
            "sync state:",
            await p.evaluate(() =>
              JSON.stringify(
                (globalThis as unknown as {
                  capra?: { sync: { state: unknown } };
                })
                  .capra?.sync.state,
              )
            ).catch(() => "?"),
          );
        }
      }
      throw e;
    } finally {
      await browser?.close();
      ac.abort();
      await server.finished;
      await denoDb.close();
      await serverDb.close();
    }
  },
});

Deno.test({
  name: "browser: IndexedDB storage passes the storage conformance suite",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "capra-idb-" });
    const code = new TextDecoder().decode(
      await bundleModule("tests/idb_conformance_entry.ts", `${tmp}/idb.js`),
    );
    await Deno.remove(tmp, { recursive: true });
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      () =>
        new Response("<!doctype html><title>idb</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
      });
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      await page.addScriptTag({ content: code, type: "module" });
      await page.waitForFunction(() => "runIdbConformance" in globalThis);
      const outcomes = await page.evaluate(() =>
        (globalThis as unknown as {
          runIdbConformance(): Promise<{ title: string; error?: string }[]>;
        }).runIdbConformance()
      );
      assert.ok(outcomes.length >= 6, "every check ran");
      const failed = outcomes.filter((o) => o.error);
      assert.deepEqual(failed, [], "IndexedDB storage conformance");
    } finally {
      await browser?.close();
      ac.abort();
      await server.finished;
    }
  },
});
