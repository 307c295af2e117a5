/**
 * Memory benchmark: 1,000 repositories × 100 items opened, then left idle until they
 * close themselves; RSS at each step and the time to reopen one. Run by scripts/bench.ts:
 * `deno run -A --v8-flags=--expose-gc scripts/bench_memory.ts measure DIR` in a fresh
 * process (after `... build DIR`). Prints one JSON line.
 *
 * @module
 */

import { openDatabase } from "../mod.ts";
import { BENCH_SCHEMA } from "./bench_schema.ts";

/** Repositories in the memory benchmark. */
export const MEMORY_REPOS = 1_000;
/** Items per repository. */
export const MEMORY_ITEMS = 100;

const [mode, dir] = Deno.args;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const rssMb = () => {
  gc();
  return Deno.memoryUsage().rss / 1024 / 1024;
};
const heapMb = () => {
  const m = Deno.memoryUsage();
  return (m.heapUsed + m.external) / 1024 / 1024;
};

if (mode === "build") {
  const db = await openDatabase({ dir, schemas: [BENCH_SCHEMA] });
  for (let r = 0; r < MEMORY_REPOS; r++) {
    await db.open(`/todo/m${r}`);
    for (let i = 0; i < MEMORY_ITEMS; i++) {
      db.create(`/todo/m${r}/k${i}`, "todo", { text: `task ${r}.${i}`, n: i });
    }
    if (r % 100 === 99) await db.flush();
    await db.close(`/todo/m${r}`);
  }
  await db.close();
} else if (mode === "measure") {
  const idleCloseMs = 200;
  const rssStart = rssMb();
  const db = await openDatabase({ dir, schemas: [BENCH_SCHEMA], idleCloseMs });
  let sum = 0;
  for (let r = 0; r < MEMORY_REPOS; r++) {
    const repo = await db.open(`/todo/m${r}`);
    sum += repo.count();
    sum += db.item(`/todo/m${r}/k7`)!.get("n") as number;
  }
  const rssOpen = rssMb();
  const heapOpen = heapMb();
  // Leave them idle: the sweep closes every repository after one idle period.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && db.isOpen(`/todo/m${MEMORY_REPOS - 1}`)) {
    await new Promise((r) => setTimeout(r, idleCloseMs));
  }
  const rssIdle = rssMb();
  const heapIdle = heapMb();
  let stillOpen = 0;
  for (let r = 0; r < MEMORY_REPOS; r++) {
    if (db.isOpen(`/todo/m${r}`)) stillOpen++;
  }
  const t = performance.now();
  await db.open("/todo/m500");
  sum += db.item("/todo/m500/k7")!.get("n") as number;
  const reopenMs = performance.now() - t;
  console.log(
    JSON.stringify({
      rssStart,
      rssOpen,
      rssIdle,
      heapOpen,
      heapIdle,
      stillOpen,
      reopenMs,
      sum,
    }),
  );
  await db.close();
}
