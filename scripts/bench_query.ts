/**
 * Query benchmarks: Capra live queries against SQLite (node:sqlite, in memory), without
 * and with an index on the field used. `deno run -A scripts/bench_query.ts [n]` prints a
 * table; `benchQueries(n)` returns the figures (scripts/bench.ts may include them).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { type Database, openDatabase, type Query } from "../mod.ts";
import { BENCH_SCHEMA } from "./bench_schema.ts";

/** One benchmark row: milliseconds for Capra and for SQLite without and with an index. */
export interface QueryBenchResult {
  name: string;
  capraMs: number;
  sqliteMs: number;
  sqliteIndexedMs: number;
}

const REPO = "/todo/qbench";
/** Runs per measurement; the median is reported. */
const RUNS = 5;
/** Updates averaged for the live-update figure. */
const LIVE_UPDATES = 1_000;
/** SQLite has no live query: each "update" re-runs the query, so fewer rounds. */
const SQLITE_LIVE_UPDATES = 20;

const text = (i: number) => `task number ${i}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeRuns(run: () => Promise<void> | void): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function capraDb(n: number): Promise<Database> {
  const db = await openDatabase({ memory: true, schemas: [BENCH_SCHEMA] });
  await db.open(REPO);
  for (let i = 0; i < n; i++) {
    db.create(`${REPO}/k${i}`, "todo", {
      text: text(i),
      done: i % 2 === 0,
      n: i,
    });
  }
  await db.flush(); // signing must not run during the measurements
  return db;
}

function sqliteDb(n: number, index?: string): DatabaseSync {
  const sql = new DatabaseSync(":memory:");
  sql.exec(
    "CREATE TABLE items (key TEXT PRIMARY KEY, text TEXT NOT NULL, done INTEGER, n REAL)",
  );
  const insert = sql.prepare(
    "INSERT INTO items (key, text, done, n) VALUES (?, ?, ?, ?)",
  );
  sql.exec("BEGIN");
  for (let i = 0; i < n; i++) insert.run(`k${i}`, text(i), i % 2 ? 0 : 1, i);
  sql.exec("COMMIT");
  if (index) sql.exec(`CREATE INDEX items_idx ON items (${index})`);
  return sql;
}

function sqliteTime(
  n: number,
  index: string,
  query: string,
  params: (string | number)[] = [],
): Promise<[number, number]> {
  return Promise.all([undefined, index].map((idx) => {
    const sql = sqliteDb(n, idx);
    const stmt = sql.prepare(query);
    const ms = timeRuns(() => void stmt.all(...params));
    return ms.finally(() => sql.close());
  })) as Promise<[number, number]>;
}

function nextChange(q: Query<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const off = q.onResultsChanged(() => {
      off();
      resolve();
    });
  });
}

async function liveUpdate(db: Database, sorted: Query<unknown>, n: number) {
  const results = sorted.results;
  let total = 0;
  for (let u = 0; u < LIVE_UPDATES; u++) {
    const item = results[(u * 7919) % results.length];
    const t = performance.now();
    const changed = nextChange(sorted);
    item.set("text", `updated ${u} ${n}`);
    await changed;
    total += performance.now() - t;
    if (u % 100 === 99) await db.flush(); // keep signing out of the timed part
  }
  return total / LIVE_UPDATES;
}

function sqliteLive(n: number, index: string | undefined): number {
  const sql = sqliteDb(n, index);
  const update = sql.prepare("UPDATE items SET text = ? WHERE key = ?");
  const select = sql.prepare(
    "SELECT key, text, done, n FROM items WHERE done = 1 ORDER BY text, key",
  );
  const t = performance.now();
  for (let u = 0; u < SQLITE_LIVE_UPDATES; u++) {
    update.run(`updated ${u}`, `k${((u * 7919) % (n / 2)) * 2}`);
    select.all();
  }
  const ms = (performance.now() - t) / SQLITE_LIVE_UPDATES;
  sql.close();
  return ms;
}

/**
 * Measures live queries over `n` items `{text, done, n}` against SQLite.
 *
 * @example
 * ```ts ignore
 * for (const r of await benchQueries(100_000)) console.log(r.name, r.capraMs);
 * ```
 */
export async function benchQueries(n: number): Promise<QueryBenchResult[]> {
  const db = await capraDb(n);
  const out: QueryBenchResult[] = [];
  const tenth = Math.floor(n / 10);

  // 1. Predicate, 10% hits: time until ready.
  const predicateMs = await timeRuns(async () => {
    const q = db.query({
      source: REPO,
      predicate: (i) => (i.get("n") as number) < tenth,
    });
    await q.ready;
    if (q.count !== tenth) throw new Error(`expected ${tenth}, got ${q.count}`);
    q.close();
  });
  const [p0, p1] = await sqliteTime(
    n,
    "n",
    "SELECT key, text, done, n FROM items WHERE n < ?",
    [tenth],
  );
  out.push({
    name: "query, predicate 10% hits",
    capraMs: predicateMs,
    sqliteMs: p0,
    sqliteIndexedMs: p1,
  });

  // 2. Sorted, 50% hits, results read.
  const sortedOptions = {
    source: REPO,
    predicate: (i: { get(f: string): unknown }) => i.get("done") === true,
    sortBy: "text",
  };
  const sortedMs = await timeRuns(async () => {
    const q = db.query(sortedOptions);
    await q.ready;
    let chars = 0;
    for (const item of q.results) chars += (item.get("text") as string).length;
    if (chars === 0) throw new Error("no results");
    q.close();
  });
  const [s0, s1] = await sqliteTime(
    n,
    "text",
    "SELECT key, text, done, n FROM items WHERE done = 1 ORDER BY text, key",
  );
  out.push({
    name: "query, sorted 50% hits, results read",
    capraMs: sortedMs,
    sqliteMs: s0,
    sqliteIndexedMs: s1,
  });

  // 3. One update under a live sorted query of n/2 results.
  const live = db.query(sortedOptions);
  await live.ready;
  const liveMs = await liveUpdate(db, live, n);
  live.close();
  out.push({
    name: `live update under a sorted query of ${n / 2} results`,
    capraMs: liveMs,
    sqliteMs: sqliteLive(n, undefined),
    sqliteIndexedMs: sqliteLive(n, "text"),
  });

  // 4. A chain of two queries.
  const chainMs = await timeRuns(async () => {
    const base = db.query({
      source: REPO,
      predicate: (i) => i.get("done") === true,
    });
    const chain = db.query({
      source: base,
      predicate: (i) => (i.get("n") as number) % 10 === 0,
      sortBy: "n",
    });
    await chain.ready;
    chain.close();
    base.close();
  });
  const [c0, c1] = await sqliteTime(
    n,
    "done",
    "SELECT * FROM (SELECT key, text, done, n FROM items WHERE done = 1) WHERE n % 10 = 0 ORDER BY n",
  );
  out.push({
    name: "chain of two queries",
    capraMs: chainMs,
    sqliteMs: c0,
    sqliteIndexedMs: c1,
  });
  await db.close();
  return out;
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 100_000);
  const fmt = (ms: number) =>
    ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(1)} ms`;
  console.log("| benchmark | Capra | SQLite | SQLite, indexed |");
  console.log("|---|---|---|---|");
  for (const r of await benchQueries(n)) {
    console.log(
      `| ${r.name} | ${fmt(r.capraMs)} | ${fmt(r.sqliteMs)} | ${
        fmt(r.sqliteIndexedMs)
      } |`,
    );
  }
}
