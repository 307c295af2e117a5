/** The serving database collects old history on a schedule. */
import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { GcScheduler } from "../server/gc_scheduler.ts";
import { EVERYTHING, snapshot, tempDir } from "./_helpers.ts";

const DAY = 24 * 3_600_000;

Deno.test("GcScheduler compacts every repository with old history, leaves the others, keeps values", async () => {
  await using dir = await tempDir();
  const t = { now: Date.now() - 40 * DAY };
  const db = await openDatabase({
    dir: dir.path,
    schemas: [EVERYTHING],
    clock: () => t.now,
  });
  for (const repo of ["/all/old1", "/all/old2"]) {
    await db.open(repo);
    const item = db.create(`${repo}/x`, "all", { n: 0 });
    for (let i = 1; i <= 25; i++) {
      t.now += 1000;
      item.set("n", i);
      await db.flush();
    }
  }
  t.now += 35 * DAY;
  await db.open("/all/fresh");
  db.create("/all/fresh/y", "all", { s: "new" });
  await db.flush();
  const before = ["/all/old1/x", "/all/old2/x", "/all/fresh/y"].map((p) =>
    snapshot(db.item(p)!)
  );
  const freshFile = `${dir.path}/all.fresh.capra`;
  const freshMtime = (await Deno.stat(freshFile)).mtime!.getTime();
  const lines: string[] = [];
  const gc = new GcScheduler(db, {
    retainMs: 30 * DAY,
    log: (l) => lines.push(l),
    firstDelayMs: 10,
    intervalMs: 60_000,
  });
  gc.start();
  // The first pass runs on its own after firstDelayMs.
  for (let i = 0; i < 200 && lines.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const pass = await gc.runOnce(); // a second pass finds nothing left to drop
  await gc.stop();
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines.join("\n"), /\/all\/old1: dropped 24 commits/);
  assert.match(lines.join("\n"), /\/all\/old2: dropped 24 commits/);
  assert.deepEqual(pass, { repositories: 3, droppedCommits: 0, failed: 0 });
  assert.equal(
    (await Deno.stat(freshFile)).mtime!.getTime(),
    freshMtime,
    "a repository without old history is not rewritten",
  );
  assert.deepEqual(
    ["/all/old1/x", "/all/old2/x", "/all/fresh/y"].map((p) =>
      snapshot(db.item(p)!)
    ),
    before,
  );
  await db.close();
});

Deno.test("GcScheduler reports refused retentions instead of failing the server", async () => {
  const db = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  await db.open("/all/a");
  db.create("/all/a/x", "all", { n: 1 });
  await db.flush();
  const lines: string[] = [];
  const gc = new GcScheduler(db, { retainMs: 1000, log: (l) => lines.push(l) });
  const pass = await gc.runOnce();
  await gc.stop();
  assert.equal(pass.failed, 1);
  assert.match(lines[0], /\/all\/a: Invalid retention 1000 ms/);
  await db.close();
});
