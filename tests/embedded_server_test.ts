/**
 * A server embedded with `createServer` (what examples/notes does): `gc` starts a
 * collector that compacts old history on its own schedule (returned as `server.gc`),
 * `assets` serves an app of one's own at `/` (with `loadAssetDir` reading a directory,
 * content types by extension, clear errors for what it cannot serve), and the
 * GcScheduler is exported from the server entry.
 */

import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { createServer, GcScheduler, loadAssetDir } from "../server/mod.ts";
import { EVERYTHING, tempDir } from "./_helpers.ts";

const DAY = 24 * 3_600_000;

Deno.test("createServer({ gc }) collects old history by itself", async () => {
  await using dir = await tempDir();
  const t = { now: Date.now() - 40 * DAY };
  const db = await openDatabase({
    dir: dir.path,
    schemas: [EVERYTHING],
    clock: () => t.now,
  });
  await db.open("/all/old");
  const item = db.create("/all/old/x", "all", { n: 0 });
  for (let i = 1; i <= 10; i++) {
    t.now += 1000;
    item.set("n", i);
    await db.flush();
  }
  t.now += 35 * DAY;
  const lines: string[] = [];
  const server = createServer({
    db,
    gc: {
      retainMs: 30 * DAY,
      firstDelayMs: 10,
      intervalMs: 60_000,
      log: (l) => lines.push(l),
    },
  });
  try {
    assert.ok(server.gc instanceof GcScheduler, "the collector is returned");
    for (let i = 0; i < 300 && !lines.length; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.match(lines.join("\n"), /\/all\/old: dropped 9 commits/);
    assert.equal(db.item("/all/old/x")!.get("n"), 10, "the value is kept");
  } finally {
    await server.gc?.stop();
    await db.close();
  }
  const other = await openDatabase({ memory: true });
  assert.equal(
    createServer({ db: other }).gc,
    undefined,
    "no gc: no collector",
  );
  await other.close();
});

Deno.test("createServer({ assets }) serves an app of one's own", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/img`);
  await Deno.writeTextFile(`${dir.path}/index.html`, "<p>mine</p>");
  await Deno.writeTextFile(`${dir.path}/app.js`, "console.log(1)");
  await Deno.writeFile(`${dir.path}/img/logo.png`, new Uint8Array([137, 80]));
  const db = await openDatabase({ memory: true });
  try {
    const { app } = createServer({
      db,
      assets: await loadAssetDir(dir.path),
    });
    const page = await app.request("/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(await page.text(), "<p>mine</p>");
    const js = await app.request("/app.js");
    assert.match(js.headers.get("content-type")!, /^text\/javascript/);
    const png = await app.request("/img/logo.png");
    assert.equal(png.headers.get("content-type"), "image/png");
    assert.deepEqual(
      new Uint8Array(await png.arrayBuffer()),
      new Uint8Array([137, 80]),
    );
    const etag = page.headers.get("etag")!;
    const again = await app.request("/", {
      headers: { "if-none-match": etag },
    });
    assert.equal(again.status, 304);
    assert.equal(
      (await app.request("/capra.js")).status,
      404,
      "not the todo app",
    );
    assert.equal(
      (await app.request("/healthz")).status,
      200,
      "the API still answers",
    );

    await Deno.writeTextFile(`${dir.path}/notes.xyz`, "?");
    await assert.rejects(
      loadAssetDir(dir.path),
      (e) => e instanceof TypeError && /notes\.xyz/.test(e.message),
    );
    await Deno.remove(`${dir.path}/notes.xyz`);
    await Deno.remove(`${dir.path}/index.html`);
    await assert.rejects(
      loadAssetDir(dir.path),
      (e) => e instanceof TypeError && /no index\.html/.test(e.message),
    );
  } finally {
    await db.close();
  }
});
