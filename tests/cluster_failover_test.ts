/**
 * Failures of a cluster while clients write (3 nats-server nodes, 3 `capra serve --nats`
 * processes, one writing client per member, everything on 127.0.0.1, every process
 * killed by pid):
 * - SIGKILL of a member, then its restart: nothing it acknowledged is lost (its own
 *   client is gone: only the member and the stream can deliver those commits), and it
 *   catches up with what the others wrote meanwhile;
 * - SIGKILL of the stream leader node, then of a follower: nothing acknowledged is lost
 *   and members converge within 10 s of the node's return;
 * - every NATS node down for 5 s: members keep serving their clients, and converge
 *   once NATS is back.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Rng } from "./_helpers.ts";
import { seedFor } from "./_seed.ts";
import { natsServerBinary, NO_NATS_SERVER } from "./_nats_cluster.ts";
import { startCluster, type TestCluster } from "./_capra_cluster.ts";
import { ClusterClient, waitConverged, WriteLoad } from "./_cluster_clients.ts";

const HAS_NATS = natsServerBinary() !== null;
if (!HAS_NATS) console.warn(NO_NATS_SERVER);
const REPO = "/all/load";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => {
  if (Deno.env.get("CAPRA_CLUSTER_LOG")) {
    console.error(`${new Date().toISOString().slice(17, 23)} ${line}`);
  }
};

/** One writing client per member. */
async function writers(cluster: TestCluster): Promise<ClusterClient[]> {
  const out: ClusterClient[] = [];
  for (const m of cluster.members) {
    out.push(await ClusterClient.open(m.url, [REPO]));
  }
  for (const c of out) await c.client!.sync();
  return out;
}

/** Everything the given clients created (their own replicas hold it all). */
function createdBy(clients: readonly ClusterClient[]): Set<string> {
  const out = new Set<string>();
  for (const c of clients) for (const id of c.created) out.add(id);
  return out;
}

const options = {
  ignore: !HAS_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
};

Deno.test({
  ...options,
  name:
    "cluster: SIGKILL of a member during writes loses nothing it acknowledged; it catches up on restart",
}, async () => {
  const rng = new Rng(seedFor("cluster member kill"));
  const cluster = await startCluster();
  const clients = await writers(cluster);
  const load = new WriteLoad(REPO, rng);
  try {
    clients.forEach((c, i) => load.start(c, `w${i}`));
    await sleep(1000 + rng.int(500));
    const victim = cluster.members[1];
    await victim.kill("SIGKILL");
    // The victim's client goes with it: what it acknowledged must come from the member.
    await load.stop(clients[1]);
    clients[1].disconnect();
    const ackedByVictim = new Set(
      [...clients[1].created].filter((id) => load.acked.has(id)),
    );
    assert.ok(ackedByVictim.size > 0, "the victim acknowledged commits");
    await sleep(1500);
    await victim.start();
    await victim.waitReady();
    await sleep(500);
    await load.stop();
    for (const c of [clients[0], clients[2]]) await c.client!.sync();
    const mustHold = new Set([
      ...ackedByVictim,
      ...createdBy([clients[0], clients[2]]),
    ]);
    const ms = await waitConverged(
      cluster.members.map((m) => m.url),
      REPO,
      mustHold,
      30_000,
    );
    console.log(
      `member kill: ${load.writes} writes, ${ackedByVictim.size} acknowledged by the killed member, converged ${ms} ms after the writes`,
    );
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  }
});

Deno.test({
  ...options,
  name:
    "cluster: a member SIGKILLed while NATS is down keeps what it acknowledged and delivers it after its restart",
}, async () => {
  const cluster = await startCluster();
  const [a, b, c] = cluster.members;
  const writer = await ClusterClient.open(b.url, [REPO]);
  try {
    await Promise.all(cluster.nats.nodes.map((n) => n.kill("SIGKILL")));
    for (let i = 0; i < 20; i++) {
      writer.db.create(`${REPO}/offline${i}`, "all", { n: i });
    }
    await writer.client!.sync(); // acknowledged by b, which cannot publish
    const acked = new Set(writer.created);
    await b.kill("SIGKILL");
    await writer.close(); // only b's data directory can deliver these now
    await Promise.all(cluster.nats.nodes.map((n) => n.start()));
    await b.start();
    await b.waitReady();
    const ms = await waitConverged([a.url, b.url, c.url], REPO, acked, 60_000);
    assert.ok(
      b.lines.some((l) => /reconciled|republished/.test(l)),
      `b repaired its dirty repositories:\n${b.lines.join("\n")}`,
    );
    console.log(
      `${acked.size} commits acknowledged during the outage reached every member ${ms} ms after b was ready`,
    );
  } finally {
    await writer.close().catch(() => {});
    await cluster.stop();
  }
});

/** The name of the node leading the stream, asked through a NATS connection. */
async function streamLeader(cluster: TestCluster): Promise<string> {
  const nc = await connect({ servers: cluster.nats.nodes.map((n) => n.url) });
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    for (let i = 0; i < 100; i++) {
      const leader = (await jsm.streams.info("CAPRA")).cluster?.leader;
      if (leader) return leader;
      await sleep(100);
    }
    throw new Error("the stream has no leader");
  } finally {
    await nc.close();
  }
}

Deno.test({
  ...options,
  name:
    "cluster: SIGKILL of the stream leader, then of a follower, during writes: nothing lost, convergence within 10 s of the node's return",
}, async () => {
  const rng = new Rng(seedFor("cluster nats node kill"));
  const cluster = await startCluster();
  const clients = await writers(cluster);
  try {
    for (const role of ["leader", "follower"] as const) {
      const load = new WriteLoad(REPO, rng);
      clients.forEach((c, i) => load.start(c, `${role}${i}`));
      await sleep(500 + rng.int(500));
      const leader = await streamLeader(cluster);
      const node = cluster.nats.nodes.find((n) =>
        role === "leader" ? n.name === leader : n.name !== leader
      )!;
      await node.kill("SIGKILL");
      log(`killed ${role} ${node.name}`);
      await sleep(2000);
      await node.start();
      log(`restarted ${node.name}`);
      const back = Date.now();
      await sleep(500);
      await load.stop();
      for (const c of clients) await c.client!.sync();
      log("writes stopped and synced");
      const mustHold = createdBy(clients);
      const ms = await waitConverged(
        cluster.members.map((m) => m.url),
        REPO,
        mustHold,
        10_000 - (Date.now() - back),
      );
      console.log(
        `${role} ${node.name} killed: ${load.writes} writes, converged ${
          Date.now() - back
        } ms after its return (${ms} ms after the last write)`,
      );
    }
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  }
});

Deno.test({
  ...options,
  name:
    "cluster: every NATS node down for 5 s during writes: members keep serving their clients, then converge",
}, async () => {
  const rng = new Rng(seedFor("cluster nats outage"));
  const cluster = await startCluster();
  const clients = await writers(cluster);
  const load = new WriteLoad(REPO, rng);
  try {
    clients.forEach((c, i) => load.start(c, `w${i}`));
    await sleep(500);
    await Promise.all(cluster.nats.nodes.map((n) => n.kill("SIGKILL")));
    const ackedBefore = load.acked.size;
    await sleep(5000);
    // Members kept acknowledging their own clients' writes without NATS.
    assert.ok(
      load.acked.size > ackedBefore,
      `syncs went on during the outage (${ackedBefore} -> ${load.acked.size})`,
    );
    for (const m of cluster.members) {
      assert.equal(
        (await m.health()).status,
        200,
        `${m.id} stays ready without NATS`,
      );
    }
    await Promise.all(cluster.nats.nodes.map((n) => n.start()));
    const back = Date.now();
    await sleep(500);
    await load.stop();
    for (const c of clients) await c.client!.sync();
    const ms = await waitConverged(
      cluster.members.map((m) => m.url),
      REPO,
      createdBy(clients),
      60_000,
    );
    console.log(
      `NATS outage: ${load.writes} writes, converged ${
        Date.now() - back
      } ms after NATS came back (${ms} ms after the last write)`,
    );
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  }
});
