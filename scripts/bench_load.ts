/**
 * The load bench: one `capra serve` (a separate process, unchanged) and C light clients
 * in two load-generator processes (bench_load_client.ts). Each client follows the shared
 * repository and its own; every client writes one commit per second to its own
 * repository and one in ten also one per second to the shared one, so the shared
 * repository fans out about 0.1·C² pushes per second. This process measures the server:
 * CPU (from /proc, 1 core = 100), RSS, commits accepted and push deliveries per second
 * (from /metrics), `/healthz` latency (probed on a fixed schedule, not one after the
 * other, so a stall counts as long as it lasts), and collects the clients' reports
 * (propagation of shared commits, refusals, disconnects).
 *
 * Standalone: `deno run -A scripts/bench_load.ts [--clients 100,500] [--seconds 20]
 * [--direct]` (`--direct`: serve without the connection guard, to measure its cost).
 *
 * @module
 */

import { join } from "node:path";
import type { LoadReport } from "./bench_load_client.ts";

/** Client counts of the load rows. */
export const LOAD_CLIENT_COUNTS = [100, 500, 1000, 2000];
/** Measured window per client count. */
export const LOAD_RUN_MS = 20_000;
/** `/healthz` probe period. */
const PROBE_EVERY_MS = 20;
/** Longest wait for the clients to connect. */
const SETUP_TIMEOUT_MS = 180_000;
const METRICS_TOKEN = "bench-load-metrics-token";
const LOAD_PROCESSES = 2;
const SAMPLERS_PER_PROCESS = 8;

/** The measurements of one client count. */
export interface LoadRow {
  readonly clients: number;
  readonly direct: boolean;
  readonly loadAverage: string;
  readonly serverCpu: number;
  /** CPU of each load-generator process (1 core = 100). */
  readonly loadCpu: number[];
  readonly rssMaxMb: number;
  readonly commitsSentPerS: number;
  readonly commitsAcceptedPerS: number;
  readonly pushDeliveriesPerS: number;
  readonly clientCommitsPerS: number;
  readonly propagationP50Ms: number;
  readonly propagationP99Ms: number;
  readonly healthP50Ms: number;
  readonly healthP99Ms: number;
  readonly healthFailures: number;
  readonly refused: Record<string, number>;
  readonly disconnects: number;
  readonly ackTimeouts: number;
  readonly catchups: number;
  /** Smallest share of the run's shared commits a sampler received. */
  readonly sampledCompleteness: number;
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function procTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function procRssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function metricsOf(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(capra_\w+) (\S+)$/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

async function startServer(dir: string, clients: number, direct: boolean) {
  const config = join(dir, "capra.config.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      sessions: { perAddressPerMinute: 10 * clients + 100 },
      limits: {
        connectionsPerAddress: 2 * clients + 100,
        maxConnections: 2 * clients + 1000,
      },
      metrics: { token: METRICS_TOKEN },
    }),
  );
  const entry = direct
    ? new URL("./bench_load_direct.ts", import.meta.url).pathname
    : new URL("../server/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      // Profiling aid: CAPRA_BENCH_INSPECT=host:port opens the server's inspector.
      ...(Deno.env.get("CAPRA_BENCH_INSPECT")
        ? [`--inspect=${Deno.env.get("CAPRA_BENCH_INSPECT")}`]
        : []),
      entry,
      "serve",
      "--dir",
      join(dir, "data"),
      "--root-key",
      join(dir, "root.key"),
      "--port",
      "0",
      "--config",
      config,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/http:\/\/[\d.]+:\d+/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("capra serve exited before listening");
    out += value;
  }
  // Keep draining its stdout.
  (async () => {
    for (;;) {
      if ((await reader.read().catch(() => ({ done: true }))).done) return;
    }
  })();
  return { child, url: out.match(/http:\/\/[\d.]+:\d+/)![0] };
}

function spawnLoad(url: string, first: number, count: number) {
  const script = new URL("./bench_load_client.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      script,
      url,
      String(first),
      String(count),
      String(SAMPLERS_PER_PROCESS),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error("load process ended early");
      buffered += value;
    }
  };
  const writer = child.stdin.getWriter();
  return {
    child,
    nextLine,
    send: (line: string) => writer.write(new TextEncoder().encode(line + "\n")),
    close: () => writer.close().catch(() => {}),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs the workload with `clients` clients for `runMs`; returns its row. */
export async function runLoad(
  clients: number,
  options: { runMs?: number; direct?: boolean } = {},
): Promise<LoadRow> {
  const runMs = options.runMs ?? LOAD_RUN_MS;
  const direct = options.direct ?? false;
  const dir = await Deno.makeTempDir({ prefix: "capra-bench-load-" });
  const server = await startServer(dir, clients, direct);
  const loads: ReturnType<typeof spawnLoad>[] = [];
  try {
    const per = Math.ceil(clients / LOAD_PROCESSES);
    for (let p = 0; p < LOAD_PROCESSES; p++) {
      const count = Math.min(per, clients - p * per);
      if (count > 0) loads.push(spawnLoad(server.url, p * per, count));
    }
    await withTimeout(
      Promise.all(loads.map(async (l) => {
        const line = await l.nextLine();
        if (line !== "ready") throw new Error(`load process said ${line}`);
      })),
      SETUP_TIMEOUT_MS,
      "client setup",
    );
    const startAt = Date.now() + 1000;
    for (const l of loads) await l.send(`start ${startAt} ${runMs}`);
    await new Promise((r) => setTimeout(r, startAt - Date.now()));
    // Skip the first two seconds: every client has started writing by then.
    await new Promise((r) => setTimeout(r, 2000));
    const m0 = await metricsOf(server.url);
    const t0 = performance.now(), ticks0 = procTicks(server.child.pid);
    const loadTicks0 = loads.map((l) => procTicks(l.child.pid));
    const health: number[] = [];
    let healthFailures = 0, rssMax = 0;
    const probes: Promise<void>[] = [];
    const windowMs = runMs - 3000;
    const probeTimer = setInterval(() => {
      const at = performance.now();
      probes.push(
        fetch(`${server.url}/healthz`).then(async (r) => {
          await r.body?.cancel();
          if (r.ok) health.push(performance.now() - at);
          else healthFailures++;
        }, () => void healthFailures++),
      );
    }, PROBE_EVERY_MS);
    const rssTimer = setInterval(() => {
      rssMax = Math.max(rssMax, procRssMb(server.child.pid));
    }, 1000);
    await new Promise((r) => setTimeout(r, windowMs));
    clearInterval(probeTimer);
    clearInterval(rssTimer);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (procTicks(server.child.pid) - ticks0) / 100 / seconds * 100;
    const loadCpu = loads.map((l, i) =>
      Math.round(
        (procTicks(l.child.pid) - loadTicks0[i]) / 100 / seconds * 100,
      )
    );
    const m1 = await metricsOf(server.url);
    await Promise.all(probes);
    const reports: LoadReport[] = await withTimeout(
      Promise.all(loads.map(async (l) => JSON.parse(await l.nextLine()))),
      runMs + 60_000,
      "client reports",
    );
    const sum = (f: (r: LoadReport) => number) =>
      reports.reduce((n, r) => n + f(r), 0);
    const refused: Record<string, number> = {};
    for (const r of reports) {
      for (const [k, v] of Object.entries(r.refused)) {
        refused[k] = (refused[k] ?? 0) + v;
      }
    }
    const latencies = reports.flatMap((r) => r.latencies);
    const sharedSent = sum((r) => r.sharedSent);
    const sampled = reports.flatMap((r) => r.sampled);
    const rate = (k: string) => ((m1[k] ?? 0) - (m0[k] ?? 0)) / seconds;
    const [la1] = (await Deno.readTextFile("/proc/loadavg")).split(" ");
    return {
      clients,
      direct,
      loadAverage: la1,
      serverCpu: Math.round(cpu),
      loadCpu,
      rssMaxMb: Math.round(rssMax),
      commitsSentPerS: Math.round(sum((r) => r.commitsSent) / (runMs / 1000)),
      commitsAcceptedPerS: Math.round(rate("capra_commits_accepted_total")),
      pushDeliveriesPerS: Math.round(rate("capra_push_deliveries_total")),
      clientCommitsPerS: Math.round(sum((r) => r.pushCommits) / (runMs / 1000)),
      propagationP50Ms: percentile(latencies, 50),
      propagationP99Ms: percentile(latencies, 99),
      healthP50Ms: percentile(health, 50),
      healthP99Ms: percentile(health, 99),
      healthFailures,
      refused,
      disconnects: sum((r) => r.disconnects),
      ackTimeouts: sum((r) => r.ackTimeouts),
      catchups: sum((r) => r.catchups),
      sampledCompleteness: sampled.length && sharedSent
        ? Math.min(...sampled) / sharedSent
        : NaN,
    };
  } finally {
    for (const l of loads) {
      await l.close();
      try {
        l.child.kill("SIGKILL");
      } catch { /* ended */ }
      await l.child.status;
    }
    server.child.kill("SIGTERM");
    await server.child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One printable line per row. */
export function formatLoadRow(r: LoadRow): string {
  const ms = (x: number) => Number.isFinite(x) ? x.toFixed(1) : "-";
  return `C=${r.clients}${
    r.direct ? " (direct)" : ""
  }: load ${r.loadAverage}, ` +
    `cpu ${r.serverCpu} (load gens ${
      r.loadCpu.join("+")
    }), rss ${r.rssMaxMb} MB, sent ${r.commitsSentPerS}/s, ` +
    `accepted ${r.commitsAcceptedPerS}/s, deliveries ${r.pushDeliveriesPerS}/s ` +
    `(clients counted ${r.clientCommitsPerS}/s), propagation p50/p99 ` +
    `${ms(r.propagationP50Ms)}/${ms(r.propagationP99Ms)} ms, healthz p50/p99 ` +
    `${ms(r.healthP50Ms)}/${
      ms(r.healthP99Ms)
    } ms (${r.healthFailures} failed), ` +
    `refused ${JSON.stringify(r.refused)}, disconnects ${r.disconnects}, ` +
    `ack timeouts ${r.ackTimeouts}, catch-ups ${r.catchups}, sampled ` +
    `completeness ${(r.sampledCompleteness * 100).toFixed(1)}%`;
}

if (import.meta.main) {
  const args = Deno.args;
  const at = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const counts = (at("--clients") ?? LOAD_CLIENT_COUNTS.join(",")).split(",")
    .map(Number);
  const runMs = Number(at("--seconds") ?? LOAD_RUN_MS / 1000) * 1000;
  const direct = args.includes("--direct");
  for (const c of counts) {
    console.log(formatLoadRow(await runLoad(c, { runMs, direct })));
  }
}
