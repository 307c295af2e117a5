/**
 * The web app in Chromium, the parts a person sees: the offline shell (a reload with no
 * network opens the app on its IndexedDB data, and does not without the service
 * worker), the status line (offline vs server unreachable, unconfirmed edits counted and
 * kept across reloads), "Clear local data" asking first with the count, and reordering
 * that keeps working (the old midpoint numbers got stuck after 54 moves) with
 * concurrent inserts ordered alike in two browsers. Skips when Chromium is missing.
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
import { listRepo, TODO_SCHEMAS } from "../client/app/todo_schema.ts";
import { isOrderKey } from "../lib/order/order_key.ts";

const skipReason = chromiumMissing();
if (skipReason) console.log(`browser_app_test skipped: ${skipReason}`);

const LIST = "app";
const REPO = listRepo(LIST);

interface Row {
  key: string;
  text: string;
  order: string;
}

const rows = (p: Page) =>
  p.evaluate(() =>
    (globalThis as unknown as { capra: { items(): unknown } }).capra.items()
  ) as Promise<Row[]>;

const status = (p: Page) =>
  p.evaluate(() => {
    const el = document.getElementById("status")!;
    return {
      text: el.textContent ?? "",
      network: el.dataset.network,
      pending: Number(el.dataset.pending),
    };
  });

async function add(p: Page, text: string): Promise<void> {
  await p.fill("#new-text", text);
  await p.press("#new-text", "Enter");
}

Deno.test({
  name: "browser app: offline shell, offline vs unreachable, pending edits",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startAppServer({ schemas: TODO_SCHEMAS });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const ctx = await browser.newContext();
      const page = await openPage(ctx, `${server.url}/#${LIST}`);
      await add(page, "One");
      await add(page, "Two");
      // Both rows show at once; their commits are counted once stored (signed in a
      // worker), and confirmed by the server after: wait for the last of them.
      const confirmed = await eventually(
        "the server to confirm both",
        async () => {
          const s = await status(page);
          return (await rows(page)).length === 2 && s.pending === 0 &&
              s.network === "online" &&
              await page.evaluate(() =>
                  (globalThis as unknown as {
                    capra: { sync: { unsyncedCommits(): Promise<number> } };
                  }).capra.sync.unsyncedCommits()
                ) === 0
            ? await status(page)
            : undefined;
        },
      );
      assert.match(confirmed.text, /all edits synced/);
      // The service worker is in control and holds the shell.
      await eventually(
        "the shell in the worker's cache",
        () =>
          page.evaluate(async () => {
            if (!navigator.serviceWorker.controller) return undefined;
            const c = await caches.open("capra-shell-v1");
            return (await c.keys()).length >= 3 || undefined;
          }),
      );

      // Server down, network up: "Server unreachable", edits counted.
      await server.stop();
      await page.evaluate(() =>
        (globalThis as unknown as { capra: { sync: { syncNow(): unknown } } })
          .capra.sync.syncNow()
      ).catch(() => {});
      await add(page, "Three");
      const unreachable = await eventually("unreachable", async () => {
        const s = await status(page);
        return s.network === "unreachable" && s.pending === 1 ? s : undefined;
      });
      assert.match(unreachable.text, /^Server unreachable/);
      assert.match(unreachable.text, /1 edit not synced yet/);

      // No network at all: "Offline"; then a reload with no network and no server
      // still opens the app, from the service worker's cache and IndexedDB.
      await ctx.setOffline(true);
      await add(page, "Four");
      const offline = await eventually("offline", async () => {
        const s = await status(page);
        return s.network === "offline" && s.pending === 2 ? s : undefined;
      });
      assert.match(offline.text, /^Offline · 2 edits not synced yet/);
      await page.reload();
      await page.waitForFunction(() => "capra" in globalThis);
      assert.deepEqual(
        (await rows(page)).map((r) => r.text),
        ["One", "Two", "Three", "Four"],
        "the offline reload shows the IndexedDB data",
      );
      const afterReload = await eventually(
        "the count after reload",
        async () => {
          const s = await status(page);
          return s.pending === 2 ? s : undefined;
        },
      );
      assert.equal(afterReload.network, "offline");

      // Without the service worker the same offline reload fails.
      const bare = await browser.newContext({ serviceWorkers: "block" });
      await bare.setOffline(true);
      const other = await openPage(bare, `${server.url}/#${LIST}`).catch((e) =>
        e as Error
      );
      assert.ok(other instanceof Error, "no shell without the worker");
      await bare.close();

      // Back online: the edits go out, the count drops to zero.
      await ctx.setOffline(false);
      await server.restart();
      await eventually("the edits to be confirmed", async () => {
        const s = await status(page);
        return s.pending === 0 && s.network === "online" ? s : undefined;
      });
      await eventually("the server to hold four items", () =>
        Promise.resolve(
          server.db.isOpen(REPO) && server.db.count(REPO) === 4 || undefined,
        ));
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "browser app: Clear local data asks first and says how many edits",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startAppServer({ schemas: TODO_SCHEMAS });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const ctx = await browser.newContext();
      const page = await openPage(ctx, `${server.url}/#${LIST}`);
      await add(page, "Synced");
      // Confirmed: the server holds it and the status line counts nothing pending.
      await eventually(
        "synced",
        async () =>
          server.db.isOpen(REPO) && server.db.count(REPO) === 1 &&
            (await status(page)).pending === 0 || undefined,
      );
      await ctx.setOffline(true);
      await add(page, "Offline A");
      await add(page, "Offline B");
      await page.click("#clear");
      const dialog = page.locator("#clear-dialog");
      await dialog.waitFor({ state: "visible" });
      assert.match(
        await dialog.innerText(),
        /2 edits made here have not reached the server yet/,
      );
      await page.click("#clear-dialog button[value=cancel]");
      await dialog.waitFor({ state: "hidden" });
      assert.equal((await rows(page)).length, 3, "Cancel keeps everything");

      // A second tab's unsynced edit counts too.
      const tab2 = await openPage(ctx, `${server.url}/#${LIST}`);
      await add(tab2, "Offline from tab 2");
      await eventually(
        "tab 1 to see it",
        async () => (await rows(page)).length === 4 || undefined,
      );
      await page.click("#clear");
      await dialog.waitFor({ state: "visible" });
      assert.match(await dialog.innerText(), /^[\s\S]*3 edits made here/);
      const reloaded = page.waitForEvent("load");
      await page.click("#clear-dialog button[value=clear]");
      await reloaded;
      await ctx.setOffline(false);
      await page.waitForFunction(() => "capra" in globalThis);
      await eventually(
        "the cleared app to refill from the server",
        async () =>
          (await rows(page)).map((r) => r.text).join() === "Synced" ||
          undefined,
      );
      // Nothing unsynced: no question asked.
      await eventually(
        "synced again",
        async () => (await status(page)).pending === 0 || undefined,
      );
      const again = page.waitForEvent("load");
      await page.click("#clear");
      await again;
      assert.equal(await dialog.isVisible(), false);
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "browser app: reordering never gets stuck; concurrent adds order alike",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startAppServer({ schemas: TODO_SCHEMAS });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const a = await openPage(
        await browser.newContext(),
        `${server.url}/#${LIST}`,
      );
      const b = await openPage(
        await browser.newContext(),
        `${server.url}/#${LIST}`,
      );
      for (const t of ["x", "y", "z"]) await add(a, t);
      await eventually(
        "three rows",
        async () => (await rows(a)).length === 3 || undefined,
      );
      // 120 alternating moves of the last row up and the first row down, with the
      // buttons: every move changes the order as asked.
      let expected = (await rows(a)).map((r) => r.text);
      for (let i = 0; i < 120; i++) {
        const current = await rows(a);
        const [from, dir] = i % 2 === 0 ? [2, "up"] : [0, "down"];
        await a.click(
          `li[data-key="${current[from].key}"] button[data-action="${dir}"]`,
        );
        const to = dir === "up" ? from - 1 : from + 1;
        const next = [...expected];
        [next[from], next[to]] = [next[to], next[from]];
        expected = next;
        await eventually(
          `move ${i}`,
          async () =>
            (await rows(a)).map((r) => r.text).join() === expected.join() ||
            undefined,
        );
      }
      for (const r of await rows(a)) assert.ok(isOrderKey(r.order), r.order);

      // Both browsers add at the end at the same moment (offline, then online): the
      // keys differ and both show the same order.
      await eventually(
        "b to see the list",
        async () => (await rows(b)).length === 3 || undefined,
      );
      await a.context().setOffline(true);
      await b.context().setOffline(true);
      await add(a, "from a");
      await add(b, "from b");
      await a.context().setOffline(false);
      await b.context().setOffline(false);
      const [ra, rb] = await eventually("five rows in both", async () => {
        const [x, y] = [await rows(a), await rows(b)];
        return x.length === 5 && JSON.stringify(x) === JSON.stringify(y)
          ? [x, y]
          : undefined;
      });
      assert.deepEqual(ra, rb);
      assert.notEqual(ra[3].order, ra[4].order, "concurrent keys differ");
      assert.deepEqual(
        ra.slice(3).map((r) => r.text).sort(),
        ["from a", "from b"],
      );
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});

Deno.test({
  name:
    "browser app: history shows time, author, values, merged conflicts and restores",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startAppServer({ schemas: TODO_SCHEMAS });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const a = await openPage(
        await browser.newContext(),
        `${server.url}/#${LIST}`,
      );
      const b = await openPage(
        await browser.newContext(),
        `${server.url}/#${LIST}`,
      );
      await add(a, "Milk");
      const [milk] = await eventually("b to see it", async () => {
        const r = await rows(b);
        return r.length === 1 ? r : undefined;
      });
      // Concurrent renames while both are offline.
      await a.context().setOffline(true);
      await b.context().setOffline(true);
      const rename = async (p: Page, text: string) => {
        const input = `li[data-key="${milk.key}"] input[data-field="text"]`;
        await p.fill(input, text);
        await p.press(input, "Enter");
      };
      await rename(a, "Oat milk");
      await rename(b, "Soy milk");
      await a.context().setOffline(false);
      await b.context().setOffline(false);
      const winner = await eventually("both to converge", async () => {
        const [x, y] = [await rows(a), await rows(b)];
        return x[0]?.text === y[0]?.text && x[0]?.text !== "Milk"
          ? x[0].text
          : undefined;
      });
      const loser = winner === "Oat milk" ? "Soy milk" : "Oat milk";

      await a.click(`li[data-key="${milk.key}"] button[data-action="history"]`);
      const unmerged = a.locator("#history-commits li.unmerged");
      await unmerged.waitFor();
      const conflictText = await unmerged.textContent() ?? "";
      assert.match(conflictText, /Concurrent edits, merged on read/);
      assert.match(conflictText, /"Oat milk" \(you\)/, "A's side, by you");
      assert.match(conflictText, /"Soy milk" \([A-Za-z0-9_-]{8}\)/, "B's side");
      assert.equal(
        await unmerged.locator("mark.winner").innerText(),
        JSON.stringify(winner),
      );
      // Each commit shows its time, author and values.
      const created = a.locator("#history-commits li.commit").last();
      assert.match(await created.textContent() ?? "", /created/);
      assert.match(await created.textContent() ?? "", /text: "Milk"/);
      assert.ok(
        await created.locator("time").getAttribute("datetime"),
        "a machine-readable time",
      );

      // A's next edit is the merge commit: it lists what it merged and what won.
      await a.click(`li[data-key="${milk.key}"] input[data-field="done"]`);
      const merge = a.locator("#history-commits li.commit.conflict").first();
      await merge.waitFor();
      assert.match(await merge.textContent() ?? "", /Merged concurrent edits/);
      assert.equal(
        await merge.locator("mark.winner").innerText(),
        JSON.stringify(winner),
      );
      assert.equal(await a.locator("#history-commits li.unmerged").count(), 0);

      // Restore the losing rename: a new commit, seen by the other browser too.
      const losing = a.locator("#history-commits li.commit", {
        hasText: `→ ${JSON.stringify(loser)}`,
      }).first();
      await losing.locator('button[data-action="restore"]').click();
      await eventually(
        "the restored text in both",
        async () =>
          (await rows(a))[0]?.text === loser &&
            (await rows(b))[0]?.text === loser ||
          undefined,
      );
    } finally {
      await browser?.close();
      await server.close();
    }
  },
});
