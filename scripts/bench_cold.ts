/**
 * Cold-start measurements, run by scripts/bench.ts in a fresh process each:
 * `deno run -A scripts/bench_cold.ts capra|sqlite DIR N`. Prints one JSON line.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../mod.ts";
import { BENCH_SCHEMA } from "./bench_schema.ts";

const [engine, dir, nText] = Deno.args;
const n = Number(nText);
const rss = () => Deno.memoryUsage().rss;

if (engine === "capra") {
  const t0 = performance.now();
  const db = await openDatabase({ dir, schemas: [BENCH_SCHEMA] });
  const repo = await db.open("/todo/bench");
  const openMs = performance.now() - t0;
  const rssAfterOpen = rss();
  const count = repo.count();
  const t1 = performance.now();
  let sum = 0;
  for (const key of repo.keys()) {
    const item = db.item(`/todo/bench/${key}`)!;
    sum += (item.get("text") as string).length + (item.get("n") as number) +
      (item.get("done") ? 1 : 0);
  }
  const readAllMs = performance.now() - t1;
  if (count !== n) throw new Error(`expected ${n} items, found ${count}`);
  console.log(JSON.stringify({ openMs, rssAfterOpen, readAllMs, sum }));
  await db.close();
} else {
  const t0 = performance.now();
  const db = new DatabaseSync(`${dir}/bench.sqlite`);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  const count =
    (db.prepare("SELECT count(*) AS c FROM items").get() as { c: number }).c;
  const openMs = performance.now() - t0;
  const rssAfterOpen = rss();
  const t1 = performance.now();
  let sum = 0;
  for (const row of db.prepare("SELECT text, done, n FROM items").iterate()) {
    const r = row as { text: string; done: number; n: number };
    sum += r.text.length + r.n + r.done;
  }
  const readAllMs = performance.now() - t1;
  if (count !== n) throw new Error(`expected ${n} rows, found ${count}`);
  console.log(JSON.stringify({ openMs, rssAfterOpen, readAllMs, sum }));
  db.close();
}
