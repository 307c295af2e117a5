/**
 * A repository that closes under load (issue 14): while clients push commits to a
 * repository, the server closes it again and again (as an idle sweep or a GC pass
 * would); every push is still accepted, none fails with an internal error, and a GC
 * pass leaves the repositories it opened closed again.
 */

import assert from "node:assert/strict";
import { openDatabase, SyncClient } from "../mod.ts";
import { serveGuarded } from "../server/serve.ts";
import { GcScheduler } from "../server/gc_scheduler.ts";
import { EVERYTHING, tempDir } from "./_helpers.ts";
import { clientDb, GENEROUS_ISSUANCE, secureServer } from "./_sync_server.ts";

const REPO = "/all/closing";
const WRITERS = 4;
const COMMITS_PER_WRITER = 40;
/** Upper bound of the whole exchange (a failure ends it sooner). */
const WAIT_MS = 120_000;

Deno.test("ingest into a repository that keeps closing: every commit accepted, no internal error", async () => {
  await using dir = await tempDir();
  const server = await secureServer({
    dir: dir.path,
    limits: { ...GENEROUS_ISSUANCE, bytesPerSessionPerMinute: 1 << 30 },
  });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${served.addr.port}`;
  const errors: unknown[] = [];
  const writers = await Promise.all(
    Array.from({ length: WRITERS }, () => clientDb()),
  );
  const clients: SyncClient[] = [];
  let closes = 0, stop = false;
  // Closes the repository whenever nothing pins it, as fast as the event loop allows.
  const closer = (async () => {
    while (!stop) {
      const wasOpen = server.db.isOpen(REPO);
      await server.db.release(REPO);
      if (wasOpen && !server.db.isOpen(REPO)) closes++;
      await new Promise((r) => setTimeout(r, 0));
    }
  })();
  try {
    for (const w of writers) {
      clients.push(
        await SyncClient.connect(w, url, {
          repos: [REPO],
          onError: (e) => errors.push(e),
        }),
      );
    }
    const deadline = Date.now() + WAIT_MS;
    for (let i = 0; i < COMMITS_PER_WRITER; i++) {
      writers.forEach((w, k) =>
        w.create(`${REPO}/w${k}_${i}`, "all", { n: i })
      );
      await Promise.all(clients.map((c) => c.sync()));
      assert.ok(Date.now() < deadline, "pushes too slow");
    }
    const total = WRITERS * COMMITS_PER_WRITER;
    await server.db.open(REPO);
    assert.equal(server.db.count(REPO), total, "every commit on the server");
    assert.deepEqual(errors, [], "no client saw an error");
    assert.ok(closes > 0, "the repository did close during the pushes");
  } finally {
    stop = true;
    await closer;
    for (const c of clients) c.close();
    await served.close();
    for (const d of [...writers, server.db]) await d.close();
  }
});

Deno.test("a GC pass closes again the repositories it opened, and leaves open ones open", async () => {
  await using dir = await tempDir();
  const REPOS = 30;
  const db = await openDatabase({ dir: dir.path, schemas: [EVERYTHING] });
  try {
    for (let i = 0; i < REPOS; i++) {
      await db.open(`/all/r${i}`);
      db.create(`/all/r${i}/x`, "all", { n: i });
    }
    await db.flush();
    for (let i = 1; i < REPOS; i++) await db.close(`/all/r${i}`);
    assert.equal(
      db.openRepositoryCount,
      1,
      "only /all/r0 open before the pass",
    );
    const gc = new GcScheduler(db, {
      retainMs: 24 * 3600_000,
      log: () => {},
    });
    const result = await gc.runOnce();
    assert.equal(result.repositories, REPOS);
    assert.equal(result.failed, 0);
    assert.equal(
      db.openRepositoryCount,
      1,
      "the pass left nothing else resident",
    );
    assert.ok(db.isOpen("/all/r0"), "the repository open before stays open");
    // The closed ones reopen on use with their data.
    assert.equal(db.item("/all/r7/x")?.get("n"), 7);
  } finally {
    await db.close();
  }
});
