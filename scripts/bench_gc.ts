/**
 * Garbage-collection benchmark: a repository of 100 items × 1,000 edits each (written
 * with a clock two days in the past), its file size and cold open time before and after
 * `compact(retainMs: 1 day)`. `deno run -A scripts/bench_gc.ts build|open|compact DIR`;
 * scripts/bench.ts runs each step in a fresh process. Prints one JSON line; `open` also
 * reports the memory held after open + read (`heapBytes`: JS heap + external buffers,
 * exact when run with `--v8-flags=--expose-gc`) and how many commits were decoded.
 *
 * @module
 */

import { openDatabase } from "../mod.ts";
import { BENCH_SCHEMA } from "./bench_schema.ts";

/** Items in the GC benchmark repository. */
export const GC_ITEMS = 100;
/** Edits per item. */
export const GC_EDITS = 1_000;
const DAY = 24 * 3_600_000;
const REPO = "/todo/gc";

const [mode, dir] = Deno.args;
if (mode === "build") {
  const t = { now: Date.now() - 2 * DAY };
  const db = await openDatabase({
    dir,
    schemas: [BENCH_SCHEMA],
    clock: () => t.now,
  });
  await db.open(REPO);
  const items = Array.from(
    { length: GC_ITEMS },
    (_, i) => db.create(`${REPO}/k${i}`, "todo", { text: `item ${i}`, n: 0 }),
  );
  for (let e = 1; e <= GC_EDITS; e++) {
    for (const item of items) item.set("n", e);
    t.now += 10;
    await db.flush();
  }
  await db.close();
  console.log(
    JSON.stringify({ bytes: (await Deno.stat(`${dir}/todo.gc.capra`)).size }),
  );
} else if (mode === "open") {
  const t0 = performance.now();
  const db = await openDatabase({ dir, schemas: [BENCH_SCHEMA] });
  const repo = await db.open(REPO);
  let sum = 0;
  for (let i = 0; i < GC_ITEMS; i++) {
    sum += db.item(`${REPO}/k${i}`)!.get("n") as number;
  }
  const openMs = performance.now() - t0;
  if (sum !== GC_ITEMS * GC_EDITS) {
    throw new Error(`wrong values after open: ${sum}`);
  }
  // Memory held by the opened repository (JS heap + buffers; exact with --expose-gc).
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 20)); // buffers are freed after the collection
  gc?.();
  const m = Deno.memoryUsage();
  const stats = repo.stats();
  await db.close();
  console.log(
    JSON.stringify({
      openMs,
      bytes: (await Deno.stat(`${dir}/todo.gc.capra`)).size,
      heapBytes: m.heapUsed + m.external,
      rss: m.rss,
      decodedCommits: stats.decodedCommits,
      lazyCommits: stats.lazyCommits,
    }),
  );
} else if (mode === "compact") {
  const db = await openDatabase({ dir, schemas: [BENCH_SCHEMA] });
  const t0 = performance.now();
  const result = await db.compact(REPO, { retainMs: DAY });
  const compactMs = performance.now() - t0;
  await db.close();
  console.log(JSON.stringify({ compactMs, ...result }));
}
