/**
 * The convergence invariant over the real server: seeded random concurrent edits of
 * every field type on three Deno replicas with skewed clocks, each connected to a
 * secured server (sessions, signed requests, verification) over WebSocket on
 * 127.0.0.1, going offline and back at random. Every write and every final value is
 * checked against the reference model (tests/_model.ts); afterwards the server, every
 * client and a fresh replica that only pulls hold the same commits, heads and values.
 *
 * Replayable: key pairs come from the seed, the server and every replica read one
 * virtual clock, and after each step the test waits until every connected replica holds
 * what the server holds, so what a write sees never depends on network timing. Writes
 * within one step happen with no await between them, so they are concurrent even
 * among connected replicas, with their pushes crossing on the wire.
 */
import assert from "node:assert/strict";
import { type Database, openDatabase, SyncClient } from "../mod.ts";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";
import { observe, randomChange } from "./_edits.ts";
import { listen, secureServer } from "./_sync_server.ts";
import { OracleNet, seededSigner, VirtualClock } from "./_replicas.ts";

const CASES = Number(Deno.env.get("CAPRA_SERVER_CONVERGENCE_CASES") ?? 40);
const REPO = "/all/conv";
const KEYS = ["i1", "i2", "i3"];
/** Sync rounds after which connected replicas must hold what the server holds. */
const SETTLE_ROUNDS = 30;
/** Of which the first ones only wait for pushes (1 ms each) instead of syncing. */
const PUSH_POLLS = 10;

function connect(
  db: Database,
  url: string,
  clock: VirtualClock,
): Promise<SyncClient> {
  return SyncClient.connect(db, url, {
    repos: [REPO],
    backoffInitialMs: 5,
    backoffMaxMs: 50,
    now: () => clock.now,
    onError: () => {},
  });
}

async function idsOf(db: Database): Promise<string> {
  const repo = db.repository(REPO);
  await repo.flush();
  return repo.commitIds().sort().join();
}

/** Syncs until every connected replica holds exactly what the server holds. */
async function settle(
  server: Database,
  dbs: readonly Database[],
  clients: readonly (SyncClient | null)[],
): Promise<void> {
  for (let round = 0; round <= SETTLE_ROUNDS; round++) {
    const want = await idsOf(server);
    let settled = true;
    for (let i = 0; i < dbs.length; i++) {
      if (clients[i] && await idsOf(dbs[i]) !== want) settled = false;
    }
    if (settled) return;
    if (round < PUSH_POLLS) {
      // Pushes usually finish the job: give them a moment before a full sync.
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    for (const c of clients) await c?.sync();
  }
  throw new Error(`replicas did not settle in ${SETTLE_ROUNDS} sync rounds`);
}

/** One seeded case on a fresh server; returns the digest of every replica's state. */
async function runCase(caseSeed: number): Promise<string> {
  const rng = new Rng(caseSeed);
  const clock = new VirtualClock();
  const server = await secureServer({
    now: () => clock.now,
    clock: () => clock.now,
  });
  await server.db.open(REPO);
  const net = await listen(server);
  const dbs: Database[] = [];
  const clients: (SyncClient | null)[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const skewMs = i < 3 ? rng.int(2000) - 1000 : 0;
      dbs.push(
        await openDatabase({
          memory: true,
          schemas: [EVERYTHING],
          signer: await seededSigner(caseSeed, i),
          clock: () => clock.now + skewMs,
        }),
      );
    }
    const writers = dbs.slice(0, 3), fresh = dbs[3];
    const oracle = OracleNet.attach(
      [...writers, fresh, server.db],
      REPO,
      { schemaOf: () => EVERYTHING },
    );
    for (const d of writers) clients.push(await connect(d, net.url, clock));
    const steps = 15 + rng.int(20);
    for (let s = 0; s < steps; s++) {
      clock.advance(rng.int(4));
      // 1-3 writes with no await between: concurrent, whoever is connected.
      for (let w = rng.int(3); w >= 0; w--) {
        const r = oracle.replicas[rng.int(writers.length)];
        const key = rng.pick(KEYS);
        const current = observe(r.db.item(`${REPO}/${key}`));
        oracle.write(r, key, randomChange(rng, current));
      }
      const i = rng.int(writers.length);
      if (rng.bool(0.25)) {
        if (clients[i]) {
          clients[i]!.close(); // offline: its writes stay local until it is back
          clients[i] = null;
        } else clients[i] = await connect(writers[i], net.url, clock);
      }
      await settle(server.db, writers, clients);
    }
    for (let i = 0; i < writers.length; i++) {
      clients[i] ??= await connect(writers[i], net.url, clock);
    }
    await settle(server.db, writers, clients);
    // A replica that never wrote anything pulls the result from the server.
    const puller = await connect(fresh, net.url, clock);
    try {
      await puller.sync();
    } finally {
      puller.close();
    }
    for (const r of oracle.replicas) await oracle.adoptHoldings(r);
    await oracle.check(`case seed ${caseSeed}`);
    const refIds = await idsOf(server.db);
    for (const d of [...writers, fresh]) {
      assert.equal(await idsOf(d), refIds, "same commits");
      for (const key of KEYS) {
        const a = server.db.item(`${REPO}/${key}`);
        const b = d.item(`${REPO}/${key}`);
        assert.equal(b === undefined, a === undefined, key);
        if (!a || !b) continue;
        assert.deepEqual([...b.heads].sort(), [...a.heads].sort(), key);
        assert.equal(snapshot(b), snapshot(a), `${key} value`);
      }
    }
    return await oracle.digest();
  } finally {
    for (const c of clients) c?.close();
    await net.close();
    for (const d of dbs) await d.close();
    await server.db.close();
  }
}

Deno.test(`convergence through a secured server over WebSocket against the model: ${CASES} seeded cases, offline periods`, async () => {
  const seed = testSeed("server convergence");
  const rng = new Rng(seed);
  for (let c = 0; c < CASES; c++) {
    const caseSeed = rng.int(2 ** 31);
    try {
      await runCase(caseSeed);
    } catch (e) {
      console.error(
        `server convergence case ${c} failed: case seed ${caseSeed} (run seed ${seed}; CAPRA_SEED=${seed} replays the run)`,
      );
      throw e;
    }
  }
});

Deno.test("a server convergence seed replays exactly: same commits, heads and values everywhere", async () => {
  const rng = new Rng(testSeed("server convergence replay"));
  for (let c = 0; c < 2; c++) {
    const seed = rng.int(2 ** 31);
    assert.equal(await runCase(seed), await runCase(seed), `case seed ${seed}`);
  }
});
