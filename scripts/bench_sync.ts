/**
 * Sync benchmarks: reconciliation cost in sync and with one new commit at 100,000
 * commits, a fresh client pulling 10,000 signed items, WebSocket propagation latency
 * and the server's accepted commits per second (with verification). `benchSync()`
 * returns rows; run this file directly to print them.
 *
 * The push and pull rows talk over HTTP on 127.0.0.1 to a server in its own process (this
 * file with `--serve-child`), as a real client and server would; it exits when this
 * process closes its stdin, or after {@link CHILD_SERVER_LIFETIME_MS} at the latest.
 * `CAPRA_BENCH_SYNC_ONLY=pull` (or reconcile, latency) runs a subset.
 *
 * @module
 */

import process from "node:process";
import { type Database, openDatabase, SyncClient } from "../mod.ts";
import { ServerSession } from "../lib/sync/server_session.ts";
import { answerSyncBytes, type SyncTransport } from "../lib/sync/sync_round.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { createServer, type Server } from "../server/app.ts";
import { serveGuarded } from "../server/serve.ts";
import type { Schema } from "../lib/schema/schema.ts";

/** One benchmark result. */
export interface SyncBenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: string;
}

const BIG_N = Number(Deno.env.get("CAPRA_BENCH_SYNC_N") ?? 100_000);
const PULL_N = 10_000;
const LATENCY_SAMPLES = 200;
const SCHEMA: Schema = {
  ns: "bench",
  version: 1,
  fields: { n: { type: "number" }, s: { type: "string" } },
};

async function memoryDb(): Promise<Database> {
  return await openDatabase({ memory: true, schemas: [SCHEMA] });
}

function fill(db: Database, repo: string, n: number): void {
  for (let i = 0; i < n; i++) {
    db.create(`${repo}/k${i}`, "bench", { n: i, s: `item ${i}` });
  }
}

async function reconciliationRows(rows: SyncBenchRow[]): Promise<void> {
  const repo = "/bench/big";
  const server = await memoryDb(), client = await memoryDb();
  server.trustSession(client.session);
  client.trustSession(server.session);
  await server.open(repo);
  await client.open(repo);
  fill(client, repo, BIG_N);
  const transport: SyncTransport = {
    request: (bytes) => answerSyncBytes((r) => server.open(r), bytes),
  };
  await client.syncWith(repo, transport);
  const inSync = await client.syncWith(repo, transport);
  rows.push({
    name: `in-sync reconciliation at ${BIG_N} commits: bytes`,
    value: inSync.bytesSent + inSync.bytesReceived,
    unit: "B",
    target: "≤ 1 KB",
  }, {
    name: `in-sync reconciliation at ${BIG_N} commits: rounds`,
    value: inSync.rounds,
    unit: "rounds",
    target: "1",
  });
  client.item(`${repo}/k77`)!.set("n", -1);
  const one = await client.syncWith(repo, transport);
  rows.push({
    name: `1 new commit among ${BIG_N}: bytes`,
    value: one.bytesSent + one.bytesReceived,
    unit: "B",
    target: "≤ 4 KB",
  }, {
    name: `1 new commit among ${BIG_N}: rounds`,
    value: one.rounds,
    unit: "rounds",
  });
  await client.close();
  await server.close();
}

async function secureServer(): Promise<{ db: Database; server: Server }> {
  const root = (await generateSigningKey()).key;
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    memory: true,
    signer: root,
    trust,
    schemas: [SCHEMA],
  });
  return { db, server: createServer({ db, security: { root, trust } }) };
}

/** Longest a benchmark server process lives, whatever happens to its parent. */
const CHILD_SERVER_LIFETIME_MS = 5 * 60_000;
const CHILD_FLAG = "--serve-child";

/**
 * Child mode: a secured in-memory server on 127.0.0.1 (port 0) in its own process, served
 * as `capra serve` serves (behind the connection guard). Prints its URL, then exits when
 * its stdin closes (the parent ended) or after {@link CHILD_SERVER_LIFETIME_MS}.
 */
async function serveChild(): Promise<void> {
  const { server } = await secureServer();
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  console.log(`LISTENING http://127.0.0.1:${served.addr.port}`);
  const timer = setTimeout(() => Deno.exit(3), CHILD_SERVER_LIFETIME_MS);
  for await (const _ of Deno.stdin.readable) { /* until EOF */ }
  clearTimeout(timer);
  await served.close();
  Deno.exit(0);
}

/** A benchmark server in its own process (a real client and server are apart). */
async function spawnServer(): Promise<
  { url: string; stop: () => Promise<void> }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      new URL(import.meta.url).pathname,
      CHILD_FLAG,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("benchmark server exited before listening");
    text += value;
  }
  const url = /LISTENING (\S+)/.exec(text)?.[1];
  if (!url) throw new Error(`benchmark server said ${text}`);
  return {
    url,
    stop: async () => {
      await stdin.close();
      await lines.cancel();
      await child.status;
    },
  };
}

async function pullRows(rows: SyncBenchRow[]): Promise<void> {
  const repo = "/bench/pull";
  const server = await spawnServer();
  try {
    const writer = await memoryDb();
    const ws = await ServerSession.create(writer, server.url);
    await writer.open(repo);
    fill(writer, repo, PULL_N);
    await writer.flush();
    let t = performance.now();
    await writer.syncWith(repo, ws.httpTransport(repo), ws.hooks);
    const pushMs = performance.now() - t;
    rows.push({
      name: "server accepted commits/s (signed HTTP, verified)",
      value: Math.round(PULL_N / (pushMs / 1000)),
      unit: "commits/s",
    });
    const fresh = await memoryDb();
    const fs = await ServerSession.create(fresh, server.url);
    const cpu0 = process.cpuUsage();
    t = performance.now();
    const stats = await fresh.syncWith(repo, fs.httpTransport(repo), fs.hooks);
    const pullMs = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    if (fresh.count(repo) !== PULL_N) throw new Error("pull incomplete");
    rows.push({
      name: `fresh client pulls ${PULL_N} signed items: wall time`,
      value: Math.round(pullMs),
      unit: "ms",
      target: "≤ 500 ms",
    }, {
      name: `fresh client pulls ${PULL_N} signed items: bytes`,
      value: stats.bytesSent + stats.bytesReceived,
      unit: "B",
    }, {
      // All threads of the client process (Web Crypto verifies on a thread pool): less
      // sensitive than wall time to other load on the machine.
      name: `fresh client pulls ${PULL_N} signed items: client CPU`,
      value: Math.round((cpu.user + cpu.system) / 1000),
      unit: "ms",
    }, {
      name: `fresh client pulls ${PULL_N} signed items: rounds`,
      value: stats.rounds,
      unit: "rounds",
    });
    for (const d of [writer, fresh]) await d.close();
  } finally {
    await server.stop();
  }
}

async function latencyRows(rows: SyncBenchRow[]): Promise<void> {
  const repo = "/bench/live";
  const { db, server } = await secureServer();
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${served.addr.port}`;
  const a = await memoryDb(), b = await memoryDb();
  const ca = await SyncClient.connect(a, url, { repos: [repo] });
  const cb = await SyncClient.connect(b, url, { repos: [repo] });
  await ca.sync();
  await cb.sync();
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const arrived = Promise.withResolvers<void>();
    const off = b.repository(repo).onChange(() => arrived.resolve());
    const t = performance.now();
    a.create(`${repo}/x${i}`, "bench", { n: i });
    await arrived.promise;
    samples.push(performance.now() - t);
    off();
  }
  samples.sort((x, y) => x - y);
  const pct = (p: number) =>
    Number(samples[Math.floor(p * (samples.length - 1))].toFixed(2));
  rows.push({
    name: "propagation client → server → client (WebSocket): p50",
    value: pct(0.5),
    unit: "ms",
    target: "≤ 20 ms",
  }, {
    name: "propagation client → server → client (WebSocket): p99",
    value: pct(0.99),
    unit: "ms",
  });
  ca.close();
  cb.close();
  await served.close();
  for (const d of [a, b, db]) await d.close();
}

/** Runs only the benchmarks named here (comma-separated: reconcile, pull, latency). */
const ONLY = Deno.env.get("CAPRA_BENCH_SYNC_ONLY")?.split(",");

/** Runs the sync benchmarks and returns their rows. */
export async function benchSync(): Promise<SyncBenchRow[]> {
  const rows: SyncBenchRow[] = [];
  const on = (name: string) => !ONLY || ONLY.includes(name);
  if (on("reconcile")) await reconciliationRows(rows);
  if (on("pull")) await pullRows(rows);
  if (on("latency")) await latencyRows(rows);
  return rows;
}

if (import.meta.main && Deno.args[0] === CHILD_FLAG) {
  await serveChild();
} else if (import.meta.main) {
  for (const r of await benchSync()) {
    console.log(
      `${r.name.padEnd(58)} ${String(r.value).padStart(10)} ${r.unit}${
        r.target ? `  (target ${r.target})` : ""
      }`,
    );
  }
}
