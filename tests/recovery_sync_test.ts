/** A server that lost its data directory (not its root key) is refilled by its clients. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SyncClient } from "../mod.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";
import { snapshot, tempDir } from "./_helpers.ts";
import { clientDb, listen, secureServer } from "./_sync_server.ts";

const REPOS = ["/all/r1", "/all/r2"];

Deno.test("recovery: wipe the server's data, restart with the same root key, clients refill it", async () => {
  await using tmp = await tempDir();
  const keyPath = join(tmp.path, "capra-root.key");
  const dataDir = join(tmp.path, "data");
  const first = await loadOrCreateRootKey(keyPath);
  assert.equal(first.created, true);
  assert.equal((await Deno.stat(keyPath)).mode! & 0o777, 0o600);
  let server = await secureServer({ root: first.key, dir: dataDir });
  let net = await listen(server);
  const port = Number(new URL(net.url).port);
  const a = await clientDb(), b = await clientDb();
  const opts = {
    repos: REPOS,
    backoffInitialMs: 5,
    backoffMaxMs: 100,
    onError: () => {},
  };
  const ca = await SyncClient.connect(a, net.url, opts);
  const cb = await SyncClient.connect(b, net.url, opts);
  try {
    for (let i = 0; i < 30; i++) {
      a.create(`${REPOS[i % 2]}/a${i}`, "all", { n: i });
      b.create(`${REPOS[i % 2]}/b${i}`, "all", { s: `b${i}` });
    }
    await ca.sync();
    await cb.sync();
    await ca.sync();
    assert.equal(server.db.count(REPOS[0]) + server.db.count(REPOS[1]), 60);
    // Disaster: stop, delete the data directory (the root key stays), restart empty.
    await net.close();
    await server.db.close();
    await Deno.remove(dataDir, { recursive: true });
    const again = await loadOrCreateRootKey(keyPath);
    assert.equal(again.created, false);
    server = await secureServer({ root: again.key, dir: dataDir });
    net = await listen(server, port);
    // Clients reconnect by themselves and reconcile; sync() returns once converged.
    await ca.sync();
    await cb.sync();
    for (const repo of REPOS) {
      await server.db.open(repo);
      assert.equal(server.db.count(repo), 30, repo);
      for (const key of server.db.keys(repo)) {
        assert.equal(
          snapshot(server.db.item(`${repo}/${key}`)!),
          snapshot(a.item(`${repo}/${key}`)!),
        );
      }
    }
  } finally {
    ca.close();
    cb.close();
    await net.close();
    for (const d of [a, b, server.db]) await d.close();
  }
});
