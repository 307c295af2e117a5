/**
 * Sync of many big commits (found by the backpressure test of issue 14): a round's
 * messages stay under the protocol's size limit however big the records, the rest goes
 * in later rounds, so 40 commits of 256 KiB (10 MiB) go both ways in full.
 */

import assert from "node:assert/strict";
import { SyncClient } from "../mod.ts";
import { serveGuarded } from "../server/serve.ts";
import { clientDb, GENEROUS_ISSUANCE, secureServer } from "./_sync_server.ts";

const REPO = "/all/big";
const ITEMS = 40;
const PAD = "y".repeat(256 * 1024);

Deno.test("40 commits of 256 KiB sync up and down in messages under the size limit", async () => {
  const server = await secureServer({
    limits: { ...GENEROUS_ISSUANCE, bytesPerSessionPerMinute: 1 << 30 },
  });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${served.addr.port}`;
  const writer = await clientDb(), reader = await clientDb();
  const errors: unknown[] = [];
  const clients: SyncClient[] = [];
  try {
    clients.push(
      await SyncClient.connect(writer, url, {
        repos: [REPO],
        onError: (e) => errors.push(e),
      }),
    );
    for (let i = 0; i < ITEMS; i++) {
      writer.create(`${REPO}/i${i}`, "all", { s: `${PAD}${i}` });
    }
    await writer.flush();
    await clients[0].sync();
    await server.db.open(REPO);
    assert.equal(
      server.db.count(REPO),
      ITEMS,
      "all of them reached the server",
    );
    // A fresh replica pulls them all.
    clients.push(
      await SyncClient.connect(reader, url, {
        repos: [REPO],
        onError: (e) => errors.push(e),
      }),
    );
    await clients[1].sync();
    assert.equal(reader.count(REPO), ITEMS, "all of them reached the reader");
    assert.equal(reader.item(`${REPO}/i39`)?.get("s"), `${PAD}39`);
    assert.deepEqual(errors.map(String), []);
  } finally {
    for (const c of clients) c.close();
    await served.close();
    for (const d of [writer, reader, server.db]) await d.close();
  }
});
