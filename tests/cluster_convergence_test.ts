/**
 * Cluster convergence: 3 nats-server nodes, 3 `capra serve --nats` processes, client
 * replicas on different members making seeded random edits of every field type on the
 * same items at once. Afterwards every member holds exactly the commits the clients
 * created (the independent record: each client's own `onCommits`), every client holds
 * them too, and all compute the same values.
 */
import assert from "node:assert/strict";
import type { Database } from "../mod.ts";
import { Rng } from "./_helpers.ts";
import { seedFor } from "./_seed.ts";
import { applyChange, observe, randomChange } from "./_edits.ts";
import { natsServerBinary, NO_NATS_SERVER } from "./_nats_cluster.ts";
import { eventually, startCluster } from "./_capra_cluster.ts";
import { ClusterClient, idsOf, pull, valuesOf } from "./_cluster_clients.ts";

const HAS_NATS = natsServerBinary() !== null;
if (!HAS_NATS) console.warn(NO_NATS_SERVER);

const REPOS = ["/all/conv1", "/all/conv2"];
const KEYS = ["i1", "i2", "i3", "i4"];
const STEPS = Number(Deno.env.get("CAPRA_CLUSTER_STEPS") ?? 300);

Deno.test({
  name:
    `cluster: random edits of every field type by clients on 3 members converge (${STEPS} steps)`,
  ignore: !HAS_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const seed = seedFor("cluster convergence");
  const rng = new Rng(seed);
  const cluster = await startCluster();
  const clients: ClusterClient[] = [];
  const pulled: Database[] = [];
  try {
    // Two clients on a, one on b, one on c, with skewed clocks.
    for (const m of [0, 0, 1, 2]) {
      clients.push(
        await ClusterClient.open(
          cluster.members[m].url,
          REPOS,
          rng.int(2000) - 1000,
        ),
      );
    }
    for (const c of clients) await c.client!.sync();
    for (let s = 0; s < STEPS; s++) {
      const c = rng.pick(clients);
      const path = `${rng.pick(REPOS)}/${rng.pick(KEYS)}`;
      applyChange(c.db, path, randomChange(rng, observe(c.db.item(path))));
      const roll = rng.next();
      if (roll < 0.1) await c.client!.sync();
      else if (roll < 0.3) await new Promise((r) => setTimeout(r, rng.int(5)));
    }
    // Every client's commits are acknowledged by its member.
    for (const c of clients) await c.client!.sync();
    const created = new Set<string>();
    for (const c of clients) for (const id of c.created) created.add(id);
    const expected = (repo: string) =>
      clients.flatMap((c) => c.db.repository(repo).commitIds()).filter((
        id,
      ) => created.has(id));
    // Each client holds its own commits: the union of those is what everyone must hold.
    const union = Object.fromEntries(
      REPOS.map((r) => [r, [...new Set(expected(r))].sort()]),
    );
    assert.equal(
      Object.values(union).flat().length,
      created.size,
      `seed ${seed}: every created commit is in one of the two repositories`,
    );
    for (const m of cluster.members) {
      await eventually(
        async () => {
          const db = await pull(m.url, REPOS);
          const same = REPOS.every((r) =>
            JSON.stringify(idsOf(db, r)) === JSON.stringify(union[r])
          );
          if (same) pulled.push(db);
          else await db.close();
          return same;
        },
        30_000,
        () => `seed ${seed}: member ${m.id} does not hold every commit`,
        200,
      );
    }
    await eventually(
      () =>
        clients.every((c) =>
          REPOS.every((r) =>
            JSON.stringify(idsOf(c.db, r)) === JSON.stringify(union[r])
          )
        ),
      30_000,
      () => `seed ${seed}: a client did not receive every commit by push`,
      100,
    );
    const reference = pulled[0];
    for (const db of [...pulled, ...clients.map((c) => c.db)]) {
      for (const r of REPOS) {
        assert.deepEqual(
          valuesOf(db, r),
          valuesOf(reference, r),
          `seed ${seed}: values of ${r}`,
        );
      }
    }
    console.log(
      `cluster convergence: ${created.size} commits on ${cluster.members.length} members and ${clients.length} clients agree`,
    );
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    for (const db of pulled) await db.close().catch(() => {});
    await cluster.stop();
  }
});
