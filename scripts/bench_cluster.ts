/**
 * Cluster benchmarks: 3 nats-server nodes (R3 stream) and `capra serve --nats` processes
 * on 127.0.0.1, clients in this process.
 * - propagation client on A -> client on B, p50/p99, measured on the same writes as the
 *   same-server path (client on A -> another client on A), the baseline;
 * - accepted commits/s with 1, 2 and 3 members: signed HTTP pushes from 2 clients per
 *   member, timed until every member holds every commit (the 1-member figure is the
 *   baseline);
 * - catch-up of a member that missed 10,000 commits (its own log line: from its start
 *   to ready), beside a fresh client pulling the same commits from a member.
 * `benchCluster()` returns rows (none, with a message, when nats-server is missing); run
 * this file directly to print them.
 *
 * @module
 */

import {
  type Database,
  openDatabase,
  ServerSession,
  SyncClient,
} from "../mod.ts";
import type { Schema } from "../lib/schema/schema.ts";
import { NatsCluster, natsServerBinary } from "../tests/_nats_cluster.ts";
import { CapraMember } from "../tests/_capra_cluster.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";

/** One cluster benchmark result (`baseline`: the same-run figure it compares with). */
export interface ClusterBenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: number;
  readonly target?: string;
}

const LATENCY_SAMPLES = 200;
const THROUGHPUT_N = Number(Deno.env.get("CAPRA_BENCH_CLUSTER_N") ?? 10_000);
const CATCH_UP_N = 10_000;
const SCHEMA: Schema = {
  ns: "bench",
  version: 1,
  fields: { n: { type: "number" }, s: { type: "string" } },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memoryDb(): Promise<Database> {
  return openDatabase({ memory: true, schemas: [SCHEMA] });
}

/** Members of one stream, started and ready. */
async function members(
  nats: NatsCluster,
  dir: string,
  stream: string,
  ids: string[],
): Promise<CapraMember[]> {
  const rootKey = `${dir}/root.key`;
  await loadOrCreateRootKey(rootKey);
  const out = ids.map((id) =>
    new CapraMember({
      id,
      dataDir: `${dir}/${stream}-${id}`,
      rootKey,
      nats: nats.urls,
      stream,
    })
  );
  await Promise.all(out.map((m) => m.start()));
  await Promise.all(out.map((m) => m.waitReady()));
  return out;
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];

async function latencyRows(
  rows: ClusterBenchRow[],
  nats: NatsCluster,
  dir: string,
): Promise<void> {
  const [a, b] = await members(nats, dir, "BLAT", ["a", "b"]);
  const repo = "/bench/live";
  const dbs = [await memoryDb(), await memoryDb(), await memoryDb()];
  const clients: SyncClient[] = [];
  try {
    for (
      const [db, url] of [[dbs[0], a.url], [dbs[1], a.url], [
        dbs[2],
        b.url,
      ]] as const
    ) {
      clients.push(await SyncClient.connect(db, url, { repos: [repo] }));
    }
    for (const c of clients) await c.sync();
    const same: number[] = [], cross: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const onA = Promise.withResolvers<number>();
      const onB = Promise.withResolvers<number>();
      const offA = dbs[1].repository(repo).onChange(() =>
        onA.resolve(performance.now())
      );
      const offB = dbs[2].repository(repo).onChange(() =>
        onB.resolve(performance.now())
      );
      const t = performance.now();
      dbs[0].create(`${repo}/x${i}`, "bench", { n: i });
      const [ta, tb] = await Promise.all([onA.promise, onB.promise]);
      offA();
      offB();
      same.push(ta - t);
      cross.push(tb - t);
      await sleep(2);
    }
    const r = (x: number) => Number(x.toFixed(2));
    rows.push({
      name: "propagation client on A → client on B (cluster): p50",
      value: r(pct(cross, 0.5)),
      baseline: r(pct(same, 0.5)),
      unit: "ms",
      target: "≤ 2× same-server",
    }, {
      name: "propagation client on A → client on B (cluster): p99",
      value: r(pct(cross, 0.99)),
      baseline: r(pct(same, 0.99)),
      unit: "ms",
    });
  } finally {
    for (const c of clients) c.close();
    for (const d of dbs) await d.close();
    await Promise.all([a, b].map((m) => m.kill("SIGTERM")));
  }
}

/** N commits pushed over signed HTTP by 2 clients per member, until all hold them. */
async function throughput(
  nats: NatsCluster,
  dir: string,
  count: number,
): Promise<number> {
  const ids = ["a", "b", "c"].slice(0, count);
  const ms = await members(nats, dir, `BTP${count}`, ids);
  const writers: { db: Database; session: ServerSession; repo: string }[] = [];
  try {
    const per = Math.ceil(THROUGHPUT_N / (2 * count));
    for (let i = 0; i < 2 * count; i++) {
      const db = await memoryDb();
      const member = ms[i % count];
      const session = await ServerSession.create(db, member.url);
      const repo = `/bench/tp${i}`;
      await db.open(repo);
      for (let k = 0; k < per; k++) {
        db.create(`${repo}/k${k}`, "bench", { n: k, s: `item ${k}` });
      }
      await db.flush();
      writers.push({ db, session, repo });
    }
    const total = per * 2 * count;
    const holds = async (m: CapraMember) =>
      (await m.metric("capra_commits_accepted_total")) +
      (await m.metric("capra_cluster_ingested_total"));
    await sleep(300); // the writers' new sessions reach every member first
    const before = await Promise.all(ms.map(holds));
    const t = performance.now();
    await Promise.all(
      writers.map((w) =>
        w.db.syncWith(w.repo, w.session.httpTransport(w.repo), w.session.hooks)
      ),
    );
    for (let i = 0; i < ms.length; i++) {
      while ((await holds(ms[i])) - before[i] < total) await sleep(10);
    }
    return total / ((performance.now() - t) / 1000);
  } finally {
    for (const w of writers) await w.db.close();
    await Promise.all(ms.map((m) => m.kill("SIGTERM")));
  }
}

async function catchUpRows(
  rows: ClusterBenchRow[],
  nats: NatsCluster,
  dir: string,
): Promise<void> {
  const [a, b] = await members(nats, dir, "BCU", ["a", "b"]);
  const repo = "/bench/missed";
  const writer = await memoryDb();
  try {
    await b.kill("SIGTERM"); // a clean stop: its checkpoint is written
    const session = await ServerSession.create(writer, a.url);
    await writer.open(repo);
    for (let k = 0; k < CATCH_UP_N; k++) {
      writer.create(`${repo}/k${k}`, "bench", { n: k, s: `item ${k}` });
    }
    await writer.flush();
    await writer.syncWith(repo, session.httpTransport(repo), session.hooks);
    while ((await a.metric("capra_cluster_published_total")) < CATCH_UP_N) {
      await sleep(20);
    }
    const t = performance.now();
    await b.start();
    await b.waitReady();
    const wall = performance.now() - t;
    const line = b.lines.find((l) =>
      /is ready \(caught up to seq \d+ in/.test(l)
    );
    const own = Number(/in (\d+) ms\)/.exec(line ?? "")?.[1] ?? NaN);
    // Baseline: a fresh client pulling the same commits from a member, in this run.
    const fresh = await memoryDb();
    const fs = await ServerSession.create(fresh, a.url);
    const t1 = performance.now();
    await fresh.syncWith(repo, fs.httpTransport(repo), fs.hooks);
    const pullMs = performance.now() - t1;
    if (fresh.count(repo) !== CATCH_UP_N) throw new Error("pull incomplete");
    await fresh.close();
    rows.push({
      name:
        `catch-up of a member that missed ${CATCH_UP_N} commits (start to ready; fresh client pull as baseline)`,
      value: Math.round(own),
      baseline: Math.round(pullMs),
      unit: "ms",
      target: "≤ 2 s",
    }, {
      name: "same, wall time from process start to /healthz ready",
      value: Math.round(wall),
      unit: "ms",
    });
  } finally {
    await writer.close();
    await Promise.all([a, b].map((m) => m.kill("SIGTERM")));
  }
}

/** Runs the cluster benchmarks; no rows (and a message) without nats-server. */
export async function benchCluster(): Promise<ClusterBenchRow[]> {
  if (!natsServerBinary()) {
    console.error(
      "cluster benchmarks skipped: nats-server is not installed (apt-get install nats-server)",
    );
    return [];
  }
  const rows: ClusterBenchRow[] = [];
  const nats = await NatsCluster.start(3);
  const dir = await Deno.makeTempDir({ prefix: "capra-bench-cluster-" });
  try {
    await latencyRows(rows, nats, dir);
    const rates: number[] = [];
    for (const count of [1, 2, 3]) {
      const rate = Math.round(await throughput(nats, dir, count));
      rates.push(rate);
      rows.push({
        name: `accepted commits/s, ${count} member${
          count > 1 ? "s" : ""
        } (every member holds every commit; 1 member as baseline)`,
        value: rate,
        baseline: rates[0],
        unit: "commits/s",
      });
    }
    await catchUpRows(rows, nats, dir);
  } finally {
    await nats.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return rows;
}

if (import.meta.main) {
  for (const r of await benchCluster()) {
    console.log(
      `${r.name.padEnd(100)} ${String(r.value).padStart(8)} ${r.unit}${
        r.baseline !== undefined ? ` (baseline ${r.baseline})` : ""
      }${r.target ? `  target ${r.target}` : ""}`,
    );
  }
}
