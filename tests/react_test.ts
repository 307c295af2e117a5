/**
 * `@capra/capra/react` in Chromium: a small React app (tests/fixtures/react_app, built by
 * scripts/bundle.ts like any app, under StrictMode) with useItem, useQuery and
 * useSyncStatus. Each component counts its renders: a change must re-render exactly
 * the components that show it (useItem: that item; useQuery: its results; a change
 * outside the results re-renders nothing), edits from another browser arrive through
 * the hooks, a query rebuilt from `ctx` follows input, and unmounting leaves no
 * listener behind. Skips when Chromium is missing.
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import {
  chromiumMissing,
  eventually,
  launchChromium,
  openPage,
  startAppServer,
} from "./_browser.ts";
import { bundleModule } from "../scripts/bundle.ts";
import type { WebAssets } from "../server/assets.ts";

const skipReason = chromiumMissing();
if (skipReason) console.log(`react_test skipped: ${skipReason}`);

const FIXTURE = new URL("./fixtures/react_app/", import.meta.url);

async function reactAssets(): Promise<WebAssets> {
  const tmp = await Deno.makeTempDir({ prefix: "capra-react-" });
  try {
    const js = await bundleModule(
      "tests/fixtures/react_app/app.tsx",
      `${tmp}/app.js`,
    );
    return {
      "/": {
        type: "text/html; charset=utf-8",
        body: await Deno.readTextFile(new URL("index.html", FIXTURE)),
      },
      "/app.js": { type: "text/javascript; charset=utf-8", body: js },
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

type AppGlobal = {
  reactApp: {
    db: {
      create(p: string, s: string, d: Record<string, unknown>): {
        path: string;
      };
      item(p: string): { set(f: string, v: unknown): void } | undefined;
      repository(r: string): { listenerCount: number };
    };
    repo: string;
    renders: Record<string, number>;
    mount(paths: string[]): void;
    unmount(): void;
  };
};

const renders = (p: Page) =>
  p.evaluate(() => ({
    ...(globalThis as unknown as AppGlobal).reactApp.renders,
  }));

/** Runs `action` in the page, waits until React settled, returns render deltas. */
async function rendersAfter(
  p: Page,
  action: () => Promise<unknown>,
  settled: () => Promise<boolean>,
): Promise<Record<string, number>> {
  const before = await renders(p);
  await action();
  await eventually(
    "the page to settle",
    async () => await settled() || undefined,
  );
  // Give React a moment to do anything more it would do.
  await p.evaluate(() => new Promise((r) => setTimeout(r, 150)));
  const after = await renders(p);
  const delta: Record<string, number> = {};
  for (const k of Object.keys(after)) delta[k] = after[k] - (before[k] ?? 0);
  return delta;
}

const set = (p: Page, path: string, field: string, value: unknown) =>
  p.evaluate(([path, field, value]) => {
    (globalThis as unknown as AppGlobal).reactApp.db.item(path as string)!
      .set(field as string, value);
  }, [path, field, value] as const);

const text = (p: Page, selector: string) =>
  p.evaluate((s) => document.querySelector(s)?.textContent ?? "", selector);

Deno.test({
  name: "react: hooks re-render only what changed, in Chromium",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startAppServer({ assets: await reactAssets() });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await openPage(
        await browser.newContext(),
        server.url,
        () => "reactApp" in globalThis,
      );
      const [a, b, c] = await page.evaluate(() => {
        const app = (globalThis as unknown as AppGlobal).reactApp;
        const mk = (key: string, text: string, done: boolean) =>
          app.db.create(`${app.repo}/${key}`, "todo", { text, done }).path;
        const paths = [mk("a", "apple", false), mk("b", "banana", false)];
        paths.push(mk("c", "cherry", true));
        app.mount(paths);
        return paths;
      });
      await eventually(
        "the first render",
        async () =>
          await text(page, "#open") === "applebanana" &&
            await text(page, `[data-path="${c}"]`) === "cherry" || undefined,
      );

      // useItem: an edit re-renders the component of that item only.
      let d = await rendersAfter(
        page,
        () => set(page, a, "text", "apricot"),
        async () => await text(page, `[data-path="${a}"]`) === "apricot",
      );
      assert.ok(d[`item:${a}`] > 0, "the edited item re-rendered");
      assert.equal(d[`item:${b}`], 0, "another item did not");
      assert.ok(d.open > 0, "a result's new value re-renders its query");

      // useQuery: a change outside the results (c is done) re-renders no query
      // that leaves it out; its own item component does.
      d = await rendersAfter(
        page,
        () => set(page, c, "text", "cranberry"),
        async () => await text(page, `[data-path="${c}"]`) === "cranberry",
      );
      assert.equal(d.open, 0, "open todos: unchanged results, no render");
      assert.ok(d[`item:${c}`] > 0);
      assert.equal(d[`item:${a}`], 0);

      // Membership: c becomes open, the list shows it, in order.
      await rendersAfter(
        page,
        () => set(page, c, "done", false),
        async () => await text(page, "#open") === "apricotbananacranberry",
      );

      // ctx: the search query is rebuilt from input and follows it.
      await page.fill("#q", "an");
      await eventually(
        "the search hits",
        async () =>
          await text(page, "#hits") === "banana,cranberry" || undefined,
      );

      // An edit from another browser arrives through the hooks.
      const other = await openPage(
        await browser.newContext(),
        server.url,
        () => "reactApp" in globalThis,
      );
      await eventually(
        "the other browser to get the items",
        () =>
          other.evaluate(
            (p) =>
              (globalThis as unknown as AppGlobal).reactApp.db.item(p) !==
                undefined || undefined,
            b,
          ),
      );
      await set(other, b, "text", "blueberry");
      await eventually(
        "the remote edit in the first browser",
        async () =>
          await text(page, `[data-path="${b}"]`) === "blueberry" || undefined,
      );

      // useSyncStatus: the pending count shows and settles at zero.
      await eventually(
        "a synced status",
        async () =>
          await page.evaluate(() =>
                  document.getElementById("status")?.dataset.pending
                ) === "0" && await text(page, "#status") === "online" ||
          undefined,
      );

      // Unmounting closes the queries and removes every listener.
      await page.evaluate(() =>
        (globalThis as unknown as AppGlobal).reactApp.unmount()
      );
      await eventually("no listener left", () =>
        page.evaluate(() => {
          const app = (globalThis as unknown as AppGlobal).reactApp;
          return app.db.repository(app.repo).listenerCount === 0 || undefined;
        }));
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});
