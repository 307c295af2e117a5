/**
 * The convergence invariant over the real server: seeded random concurrent edits of
 * every field type on three Deno replicas with skewed clocks, each connected to a
 * secured server (sessions, signed requests, verification) over WebSocket on
 * 127.0.0.1, going offline and back at random. Afterwards the server, every client and
 * a fresh replica that only pulls hold the same commits, heads and values.
 */
import assert from "node:assert/strict";
import { type Database, openDatabase, SyncClient } from "../mod.ts";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";
import { randomEdit } from "./_edits.ts";
import { listen, secureServer } from "./_sync_server.ts";

const CASES = Number(Deno.env.get("CAPRA_SERVER_CONVERGENCE_CASES") ?? 60);
const KEYS = ["i1", "i2", "i3"];

function connect(db: Database, url: string, repo: string): Promise<SyncClient> {
  return SyncClient.connect(db, url, {
    repos: [repo],
    backoffInitialMs: 5,
    backoffMaxMs: 50,
    onError: () => {},
  });
}

Deno.test(`convergence through a secured server over WebSocket: ${CASES} seeded cases, offline periods`, async () => {
  const seed = testSeed("server convergence");
  const rng = new Rng(seed);
  const server = await secureServer();
  const net = await listen(server);
  try {
    for (let c = 0; c < CASES; c++) {
      const repo = `/all/conv${c}`;
      const dbs: Database[] = [];
      for (let i = 0; i < 3; i++) {
        const offset = rng.int(2000) - 1000;
        dbs.push(
          await openDatabase({
            memory: true,
            schemas: [EVERYTHING],
            clock: () => Date.now() + offset,
          }),
        );
      }
      const clients: (SyncClient | null)[] = [];
      for (const d of dbs) clients.push(await connect(d, net.url, repo));
      const steps = 20 + rng.int(30);
      for (let s = 0; s < steps; s++) {
        const i = rng.int(dbs.length);
        const roll = rng.next();
        if (roll < 0.7) {
          const path = `${repo}/${rng.pick(KEYS)}`;
          const item = dbs[i].item(path);
          if (item) randomEdit(rng, item);
          else dbs[i].create(path, "all", { s: "new", n: rng.int(3) });
        } else if (roll < 0.82) {
          // Toggle this replica offline / back online (reconnect reconciles).
          if (clients[i]) {
            clients[i]!.close();
            clients[i] = null;
          } else clients[i] = await connect(dbs[i], net.url, repo);
        } else if (roll < 0.92) {
          if (clients[i]) await clients[i]!.sync();
        } else {
          await new Promise((r) => setTimeout(r, rng.int(5)));
        }
      }
      for (let i = 0; i < dbs.length; i++) {
        clients[i] ??= await connect(dbs[i], net.url, repo);
      }
      for (let round = 0; round < 2; round++) {
        for (const cl of clients) await cl!.sync();
      }
      // A replica that never wrote anything pulls the result from the server.
      const fresh = await openDatabase({ memory: true, schemas: [EVERYTHING] });
      const puller = await connect(fresh, net.url, repo);
      await puller.sync();
      const all = [server.db, ...dbs, fresh];
      const ref = server.db.repository(repo);
      const refIds = ref.commitIds().sort();
      for (const d of all) {
        const ctx = `seed ${seed}, case ${c}`;
        assert.deepEqual(
          d.repository(repo).commitIds().sort(),
          refIds,
          `${ctx}: same commits`,
        );
        for (const key of KEYS) {
          const a = server.db.item(`${repo}/${key}`);
          const b = d.item(`${repo}/${key}`);
          assert.equal(b === undefined, a === undefined, `${ctx}: ${key}`);
          if (!a || !b) continue;
          assert.deepEqual(
            [...b.heads].sort(),
            [...a.heads].sort(),
            `${ctx}: ${key} heads`,
          );
          assert.equal(snapshot(b), snapshot(a), `${ctx}: ${key} value`);
        }
      }
      puller.close();
      for (const cl of clients) cl!.close();
      for (const d of [...dbs, fresh]) await d.close();
      await server.db.close(repo);
    }
  } finally {
    await net.close();
    await server.db.close();
  }
});
