/**
 * `deno task bench`: Capra against SQLite (node:sqlite, WAL, synchronous=FULL) in the
 * same run on the same machine. Cold figures run in a fresh process each. Prints a
 * Markdown table (the README's), then the Chromium table (scripts/bench_browser.ts:
 * the browser client beside Yjs + y-indexeddb, skipped without Chromium), and writes
 * bench-results/latest.json.
 *
 * Environment: CAPRA_BENCH_N (default 100000).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../mod.ts";
import { benchEncoding } from "./bench_encoding.ts";
import { BENCH_SCHEMA } from "./bench_schema.ts";
import { benchQueries } from "./bench_query.ts";
import { benchSync } from "./bench_sync.ts";
import { benchCluster } from "./bench_cluster.ts";
import { bundleSizes, CLIENT_GZIP_TARGET_BYTES } from "./bundle.ts";
import { benchFanout, FANOUT_TARGET_PER_S } from "./bench_fanout.ts";
import { formatLoadRow, LOAD_CLIENT_COUNTS, runLoad } from "./bench_load.ts";
import { benchBrowser, browserTable } from "./bench_browser.ts";

const N = Number(Deno.env.get("CAPRA_BENCH_N") ?? 100_000);
const SINGLE = 200;
const rows: {
  name: string;
  capra: string;
  sqlite: string;
  ratio: string;
  target?: string;
}[] = [];

function fmtMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  if (ms >= 0.001) return `${(ms * 1000).toFixed(2)} µs`;
  return `${(ms * 1e6).toFixed(0)} ns`;
}

function row(
  name: string,
  capra: number,
  sqlite: number,
  fmt: (x: number) => string,
  target?: string,
) {
  rows.push({
    name,
    capra: fmt(capra),
    sqlite: fmt(sqlite),
    ratio: `${
      capra / sqlite < 0.01
        ? (capra / sqlite).toPrecision(2)
        : (capra / sqlite).toFixed(2)
    }×`,
    target,
  });
  console.error(`${name}: capra ${fmt(capra)}, sqlite ${fmt(sqlite)}`);
}

const text = (i: number) => `task number ${i}`;
const root = await Deno.makeTempDir({ prefix: "capra-bench-" });
const capraDir = `${root}/capra`, sqliteDir = `${root}/sqlite`;
await Deno.mkdir(sqliteDir);

// --- create N signed items + flush
const db = await openDatabase({ dir: capraDir, schemas: [BENCH_SCHEMA] });
await db.open("/todo/bench");
let t = performance.now();
for (let i = 0; i < N; i++) {
  db.create(`/todo/bench/k${i}`, "todo", {
    text: text(i),
    done: i % 2 === 0,
    n: i,
  });
}
await db.flush();
const capraCreate = performance.now() - t;

const sql = new DatabaseSync(`${sqliteDir}/bench.sqlite`);
sql.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
sql.exec(
  "CREATE TABLE items (key TEXT PRIMARY KEY, text TEXT NOT NULL, done INTEGER, n REAL)",
);
const insert = sql.prepare(
  "INSERT INTO items (key, text, done, n) VALUES (?, ?, ?, ?)",
);
t = performance.now();
sql.exec("BEGIN");
for (let i = 0; i < N; i++) {
  insert.run(`k${i}`, text(i), i % 2 === 0 ? 1 : 0, i);
}
sql.exec("COMMIT");
const sqliteCreate = performance.now() - t;
row(
  `create ${N} signed items + flush`,
  capraCreate,
  sqliteCreate,
  fmtMs,
  "≤ 6 s",
);

// --- single create + flush
await db.open("/todo/single");
t = performance.now();
for (let i = 0; i < SINGLE; i++) {
  db.create(`/todo/single/s${i}`, "todo", { text: text(i), n: i });
  await db.flush();
}
const capraSingle = (performance.now() - t) / SINGLE;
t = performance.now();
for (let i = 0; i < SINGLE; i++) insert.run(`s${i}`, text(i), 0, i);
const sqliteSingle = (performance.now() - t) / SINGLE;
row("single create + flush", capraSingle, sqliteSingle, fmtMs);

// --- update + flush
const update = sql.prepare("UPDATE items SET n = ? WHERE key = ?");
t = performance.now();
for (let i = 0; i < SINGLE; i++) {
  db.item(`/todo/bench/k${i}`)!.set("n", -i);
  await db.flush();
}
const capraUpdate = (performance.now() - t) / SINGLE;
t = performance.now();
for (let i = 0; i < SINGLE; i++) update.run(-i, `k${i}`);
const sqliteUpdate = (performance.now() - t) / SINGLE;
row("update + flush", capraUpdate, sqliteUpdate, fmtMs);

// --- bulk create 100 + flush
const BULKS = 50;
t = performance.now();
for (let b = 0; b < BULKS; b++) {
  for (let i = 0; i < 100; i++) {
    db.create(`/todo/single/b${b}x${i}`, "todo", { text: text(i) });
  }
  await db.flush();
}
const capraBulk = (performance.now() - t) / BULKS;
t = performance.now();
for (let b = 0; b < BULKS; b++) {
  sql.exec("BEGIN");
  for (let i = 0; i < 100; i++) insert.run(`b${b}x${i}`, text(i), 0, i);
  sql.exec("COMMIT");
}
const sqliteBulk = (performance.now() - t) / BULKS;
row("bulk create 100 + flush", capraBulk, sqliteBulk, fmtMs);

// --- read by path (warm)
const READS = 1_000_000;
let sink = 0;
t = performance.now();
for (let i = 0; i < READS; i++) {
  sink += (db.item(`/todo/bench/k${i % N}`)!.get("n") as number) | 0;
}
const capraRead = (performance.now() - t) / READS;
const select = sql.prepare("SELECT n FROM items WHERE key = ?");
const SQL_READS = 200_000;
t = performance.now();
for (let i = 0; i < SQL_READS; i++) {
  sink += (select.get(`k${i % N}`) as { n: number }).n | 0;
}
const sqliteRead = (performance.now() - t) / SQL_READS;
row("read by path", capraRead, sqliteRead, fmtMs, "≤ 1 µs");

// --- MessagePack decode and base64url encode of the stored commits (the baselines are
// @msgpack/msgpack and Uint8Array.prototype.toBase64, measured in the same run)
{
  const repo = db.repository("/todo/bench");
  const ids = repo.commitIds().slice(0, 20_000);
  const commits = ids.map((id) => repo.commitRecord(id)!.subarray(65));
  for (const r of benchEncoding(commits)) {
    row(r.name, r.capraMs, r.baselineMs, fmtMs, r.target);
  }
}

await db.close();
sql.exec("PRAGMA wal_checkpoint(TRUNCATE)");
sql.close();

// The cold figures use a repository holding exactly N items: drop the extra repo.
await Deno.remove(`${capraDir}/todo.single.capra`);
const sqlCleanup = new DatabaseSync(`${sqliteDir}/bench.sqlite`);
sqlCleanup.exec("DELETE FROM items WHERE key NOT LIKE 'k%'; VACUUM;");
sqlCleanup.close();

async function cold(engine: string, dir: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./bench_cold.ts", import.meta.url).pathname,
      engine,
      dir,
      String(N),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`cold ${engine} run failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as {
    openMs: number;
    rssAfterOpen: number;
    readAllMs: number;
  };
}
const runs = 3;
const capraCold = [], sqliteCold = [];
for (let i = 0; i < runs; i++) {
  capraCold.push(await cold("capra", capraDir));
  sqliteCold.push(await cold("sqlite", sqliteDir));
}
const median = (xs: number[]) =>
  xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
row(
  `cold open of the ${N}-item repository`,
  median(capraCold.map((c) => c.openMs)),
  median(sqliteCold.map((c) => c.openMs)),
  fmtMs,
  "≤ 150 ms",
);
row(
  `read all ${N} values (after cold open)`,
  median(capraCold.map((c) => c.readAllMs)),
  median(sqliteCold.map((c) => c.readAllMs)),
  fmtMs,
);
const capraBytes = (await Deno.stat(`${capraDir}/todo.bench.capra`)).size;
const sqliteBytes = (await Deno.stat(`${sqliteDir}/bench.sqlite`)).size;
row(
  "bytes on disk per item",
  capraBytes / N,
  sqliteBytes / N,
  (x) => `${x.toFixed(0)} B`,
  "≤ 200 B",
);
const mb = (x: number) => `${(x / 1024 / 1024).toFixed(0)} MB`;
row(
  "RSS after open",
  median(capraCold.map((c) => c.rssAfterOpen)),
  median(sqliteCold.map((c) => c.rssAfterOpen)),
  mb,
  "≤ 150 MB",
);

// --- memory: 1,000 repositories × 100 items opened, then idle (fresh process)
{
  const memDir = `${root}/memory`;
  const script = new URL("./bench_memory.ts", import.meta.url).pathname;
  const run = (mode: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", script, mode, memDir],
      stdout: "piped",
      stderr: "inherit",
    }).output();
  await run("build");
  const out = await run("measure");
  const m = JSON.parse(new TextDecoder().decode(out.stdout));
  const mb = (x: number) => `${x.toFixed(0)} MB`;
  rows.push({
    name: "1,000 repositories × 100 items: RSS open → after idle close",
    capra: `${mb(m.rssOpen)} → ${mb(m.rssIdle)}`,
    sqlite: "",
    ratio: "",
  }, {
    name: "same: JS heap + external buffers open → after idle close",
    capra: `${mb(m.heapOpen)} → ${mb(m.heapIdle)}`,
    sqlite: "",
    ratio: "",
  }, {
    name: "reopen one idle repository of 100 items",
    capra: fmtMs(m.reopenMs),
    sqlite: "",
    ratio: "",
  });
}

// --- garbage collection: 100 items × 1,000 edits, before and after compact (fresh processes)
{
  const gcDir = `${root}/gc`;
  const script = new URL("./bench_gc.ts", import.meta.url).pathname;
  const step = async (mode: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, mode, gcDir],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`bench_gc ${mode} failed`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  await step("build");
  const before = await step("open");
  const compacted = await step("compact");
  const after = await step("open");
  const kb = (x: number) => `${(x / 1024).toFixed(0)} KB`;
  rows.push({
    name: "100 items × 1,000 edits: file size before → after GC",
    capra: `${kb(before.bytes)} → ${kb(after.bytes)}`,
    sqlite: "",
    ratio: "",
  }, {
    name: "same: cold open + read all before → after GC",
    capra: `${fmtMs(before.openMs)} → ${fmtMs(after.openMs)}`,
    sqlite: "",
    ratio: "",
  }, {
    name: "same: compaction time (rewrite, fsync, rename)",
    capra: fmtMs(compacted.compactMs),
    sqlite: "",
    ratio: "",
  });
}

await Deno.remove(root, { recursive: true });

// --- live queries (in-memory Capra vs in-memory SQLite; the SQLite column is without
// an index, the target column also shows SQLite with an index on the field)
const queryTargets: [string, string][] = [
  ["live update", "≤ 0.2 ms"],
  ["predicate", "≤ 60 ms"],
  ["sorted", "≤ 120 ms"],
];
for (const q of await benchQueries(N)) {
  const target = queryTargets.find(([k]) => q.name.includes(k))?.[1];
  row(
    `${q.name} (SQLite with index: ${fmtMs(q.sqliteIndexedMs)})`,
    q.capraMs,
    q.sqliteMs,
    fmtMs,
    target,
  );
}

// --- sync (SQLite has no sync: the pull row compares with copying the same 10,000
// rows from one SQLite file into a fresh one, durable, in the same run)
{
  const dir = await Deno.makeTempDir({ prefix: "capra-bench-sync-" });
  const src = new DatabaseSync(`${dir}/src.sqlite`);
  src.exec(
    "PRAGMA journal_mode=WAL; CREATE TABLE items (key TEXT PRIMARY KEY, n INTEGER, s TEXT)",
  );
  const ins = src.prepare("INSERT INTO items VALUES (?, ?, ?)");
  src.exec("BEGIN");
  for (let i = 0; i < 10_000; i++) ins.run(`k${i}`, i, `item ${i}`);
  src.exec("COMMIT");
  const t0 = performance.now();
  const dst = new DatabaseSync(`${dir}/dst.sqlite`);
  dst.exec(
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE items (key TEXT PRIMARY KEY, n INTEGER, s TEXT)",
  );
  const put = dst.prepare("INSERT INTO items VALUES (?, ?, ?)");
  dst.exec("BEGIN");
  for (const r of src.prepare("SELECT key, n, s FROM items").iterate()) {
    const o = r as { key: string; n: number; s: string };
    put.run(o.key, o.n, o.s);
  }
  dst.exec("COMMIT");
  const copyMs = performance.now() - t0;
  src.close();
  dst.close();
  await Deno.remove(dir, { recursive: true });
  for (const r of await benchSync()) {
    const value = r.unit === "ms"
      ? fmtMs(r.value)
      : r.unit === "B"
      ? `${r.value.toLocaleString("en-US")} B`
      : `${r.value.toLocaleString("en-US")} ${
        r.value === 1 ? r.unit.replace(/s$/, "") : r.unit
      }`;
    const isPull = r.name.includes("pulls") && r.name.endsWith("wall time");
    rows.push({
      name: r.name,
      capra: value,
      sqlite: isPull ? fmtMs(copyMs) : "",
      ratio: isPull ? `${(r.value / copyMs).toFixed(2)}×` : "",
      target: r.target,
    });
    console.error(`${r.name}: ${value}`);
  }
}
// --- one server, C live clients (issue 14): a real `capra serve` and two load processes
{
  const fan = await benchFanout(2000);
  rows.push({
    name:
      `push fan-out on one core, ${fan.clients} sockets (main thread, no socket writes)`,
    capra: `${fan.deliveriesPerS.toLocaleString("en-US")} deliveries/s`,
    sqlite: "",
    ratio: "",
    target: `≥ ${FANOUT_TARGET_PER_S.toLocaleString("en-US")}/s`,
  });
  console.error(`fan-out: ${fan.deliveriesPerS} deliveries/s`);
  for (const c of LOAD_CLIENT_COUNTS) {
    const r = await runLoad(c);
    console.error(formatLoadRow(r));
    const perCore = r.serverCpu > 0
      ? Math.round(r.pushDeliveriesPerS / (r.serverCpu / 100))
      : 0;
    rows.push({
      name:
        `load C=${c}: server CPU / RSS / accepted of sent / deliveries (per CPU-s)`,
      capra:
        `${r.serverCpu} / ${r.rssMaxMb} MB / ${r.commitsAcceptedPerS} of ${r.commitsSentPerS}/s / ` +
        `${r.pushDeliveriesPerS.toLocaleString("en-US")}/s (${
          perCore.toLocaleString("en-US")
        })`,
      sqlite: "",
      ratio: "",
      target: c === 2000 ? "every commit accepted" : "",
    }, {
      name:
        `load C=${c}: propagation p50/p99, /healthz p99, disconnects (load ${r.loadAverage})`,
      capra:
        `${r.propagationP50Ms.toFixed(0)} / ${
          r.propagationP99Ms.toFixed(0)
        } ms, ` +
        `${r.healthP99Ms.toFixed(1)} ms, ${r.disconnects}`,
      sqlite: "",
      ratio: "",
      target: c === 2000 ? "p99 ≤ 250 ms, /healthz p99 ≤ 50 ms, 0" : "",
    });
  }
}
// --- cluster: 3 NATS JetStream nodes and capra serve --nats processes (skipped with a
// message without nats-server). The SQLite column holds each row's same-run baseline
// (named in the row): same-server propagation, 1 member, a fresh client's pull.
for (const r of await benchCluster()) {
  const fmt = (x: number) =>
    r.unit === "ms" ? fmtMs(x) : `${x.toLocaleString("en-US")} ${r.unit}`;
  rows.push({
    name: r.name,
    capra: fmt(r.value),
    sqlite: r.baseline !== undefined ? fmt(r.baseline) : "",
    ratio: r.baseline ? `${(r.value / r.baseline).toFixed(2)}×` : "",
    target: r.target,
  });
  console.error(`${r.name}: ${fmt(r.value)}`);
}
// --- browser bundles (deno bundle --minify, then gzip)
{
  const b = await bundleSizes();
  const kb = (x: number) => `${(x / 1024).toFixed(1)} KB`;
  rows.push({
    name: "client library bundle, min / min+gzip",
    capra: `${kb(b.clientBytes)} / ${kb(b.clientGzipBytes)}`,
    sqlite: "",
    ratio: "",
    target: `≤ ${CLIENT_GZIP_TARGET_BYTES / 1024} KB gzip`,
  }, {
    name: "web app bundle, min / min+gzip",
    capra: `${kb(b.appBytes)} / ${kb(b.appGzipBytes)}`,
    sqlite: "",
    ratio: "",
  });
}
if (sink === 42) console.error(""); // keep reads observable

const header =
  "| operation | Capra | SQLite | Capra / SQLite | target |\n|---|---:|---:|---:|---|";
const table = [
  header,
  ...rows.map((r) =>
    `| ${r.name} | ${r.capra} | ${r.sqlite} | ${r.ratio} | ${r.target ?? ""} |`
  ),
].join("\n");
console.log(table);
// --- the browser client in headless Chromium, beside Yjs + y-indexeddb
const browserRows = await benchBrowser(N);
if (browserRows.length) console.log(`\n${browserTable(browserRows)}`);
await Deno.mkdir("bench-results", { recursive: true });
await Deno.writeTextFile(
  "bench-results/latest.json",
  JSON.stringify(
    { date: new Date().toISOString(), n: N, rows, browserRows },
    null,
    2,
  ),
);
