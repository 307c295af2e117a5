/**
 * The notes app of examples/notes, as a person uses it: built by its build script,
 * served by its own server (createServer({ assets, gc })) on 127.0.0.1:0, opened in two
 * Chromium contexts: a note made in one shows up in the other, edits follow live, the
 * search filters, a pinned note moves to the top, the status line settles at "all
 * saved", a deletion disappears everywhere, and the server's database holds the notes.
 * Skips when Chromium is missing.
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import {
  chromiumMissing,
  eventually,
  launchChromium,
  openPage,
} from "./_browser.ts";
import { buildNotes } from "../examples/notes/build.ts";
import { startNotesServer } from "../examples/notes/server.ts";

const skipReason = chromiumMissing();
if (skipReason) console.log(`examples_test skipped: ${skipReason}`);

const titles = (p: Page) =>
  p.evaluate(() =>
    [...document.querySelectorAll("nav li button")].map((b) =>
      b.textContent ?? ""
    )
  );

const settledList = (p: Page, want: string[]) =>
  eventually(`the list ${want.join(", ")}`, async () => {
    const got = await titles(p);
    return got.join("|") === want.join("|") ? got : undefined;
  });

Deno.test({
  name: "examples/notes: two browsers share notes live through its own server",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "capra-notes-" });
    const server = await startNotesServer({
      dir: `${tmp}/data`,
      assetsDir: await buildNotes(),
      port: 0,
    });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const ready = () => "notes" in globalThis;
      const a = await openPage(await browser.newContext(), server.url, ready);
      const b = await openPage(await browser.newContext(), server.url, ready);

      await a.click("text=New note");
      await a.fill('[aria-label="Title"]', "Groceries");
      await a.fill('[aria-label="Body"]', "milk, eggs");
      await settledList(b, ["Groceries"]);

      await a.click("text=New note");
      await a.fill('[aria-label="Title"]', "Ideas");
      await settledList(b, ["Ideas", "Groceries"]); // newest edit first

      // B pins the older note: it moves to the top in both.
      await b.click("nav >> text=Groceries");
      await b.check('label:has-text("Pinned") input');
      await settledList(a, ["📌 Groceries", "Ideas"]);
      assert.equal(
        await b.inputValue('[aria-label="Body"]'),
        "milk, eggs",
        "B's editor shows A's body",
      );

      // Search filters the live list.
      await a.fill('[aria-label="Search notes"]', "idea");
      await settledList(a, ["Ideas"]);
      await a.fill('[aria-label="Search notes"]', "");
      await settledList(a, ["📌 Groceries", "Ideas"]);

      // Everything reached the server; the status line says so.
      await eventually(
        "a saved status",
        async () =>
          (await a.textContent("#status"))?.includes("all saved") || undefined,
      );
      await eventually("the server to hold the notes", () =>
        Promise.resolve(
          (server.db.isOpen("/note/shared") &&
            server.db.count("/note/shared") === 2) || undefined,
        ));

      // A deletes the note B has open.
      await a.click("nav >> text=Groceries");
      await a.click("text=Delete note");
      await settledList(a, ["Ideas"]);
      await settledList(b, ["Ideas"]);
      await eventually(
        "B's editor to notice",
        async () =>
          (await b.textContent("article, main"))?.includes(
            "This note is gone",
          ) ||
          undefined,
      );
    } finally {
      await browser?.close();
      await server.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
