/**
 * Chromium rows of `deno task bench`: Capra's browser client (IndexedDB, signatures in
 * workers) beside Yjs + y-indexeddb, the reference, measured in the same run in the
 * same headless Chromium: creating 10,000 and 100,000 records until they are in
 * IndexedDB, reopening (a fresh page) and reading every value, IndexedDB bytes per
 * record, JS heap after the reload, the longest main-thread task of each (the page
 * must stay responsive: target ≤ 50 ms), and a fresh browser pulling 10,000 records
 * from a server (Capra: signed commits over HTTP from a Capra server; Yjs: the
 * document's encoded state over HTTP). A row with signatures made on the page, as
 * before workers, shows what the workers changed. Skipped with a message when
 * /usr/bin/chromium is missing.
 *
 * Run alone: `deno run -A scripts/bench_browser.ts` (CAPRA_BENCH_N sets the large N).
 *
 * @module
 */

import * as Y from "yjs";
import { type Browser, chromium, type Page } from "playwright-core";
import { openDatabase } from "../mod.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { ServerSession } from "../lib/sync/server_session.ts";
import { createServer } from "../server/app.ts";
import { bundleModule } from "./bundle.ts";
import { BATCH, fillYjs, type Measured } from "./bench_browser_page.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Records a fresh browser pulls. */
const PULL_N = 10_000;
const PULL_REPO = "/todo/pull";
/** Longest main-thread task the page may have (a frame budget of 50 ms). */
export const LONG_TASK_TARGET_MS = 50;

/** One row: Capra, the Yjs reference, their ratio and the target. */
export interface BrowserBenchRow {
  readonly name: string;
  readonly capra: string;
  readonly yjs: string;
  readonly ratio: string;
  readonly target?: string;
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

function longest(m: Measured): string {
  return m.longestTaskMs === 0
    ? `< ${LONG_TASK_TARGET_MS} ms`
    : `${m.longestTaskMs.toFixed(0)} ms (${m.longTasks} long)`;
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : "";
}

async function heapMb(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize } = await cdp.send("Runtime.getHeapUsage") as {
    usedSize: number;
  };
  await cdp.detach();
  return usedSize / (1 << 20);
}

type BenchGlobal = {
  bench: Record<string, (...args: unknown[]) => Promise<Measured>>;
};

async function call<T extends Measured>(
  page: Page,
  fn: string,
  ...args: unknown[]
): Promise<T> {
  return await page.evaluate(
    ([fn, args]) =>
      (globalThis as unknown as BenchGlobal).bench[fn as string](
        ...(args as unknown[]),
      ),
    [fn, args] as const,
  ) as T;
}

/** Starts a server with the bench page, a Capra repository and a Yjs state to pull. */
async function benchServer() {
  const tmp = await Deno.makeTempDir({ prefix: "capra-bench-browser-" });
  const js = await bundleModule("scripts/bench_browser_page.ts", `${tmp}/b.js`);
  await Deno.remove(tmp, { recursive: true });
  const doc = new Y.Doc();
  for (let i = 0; i < PULL_N; i += BATCH) {
    fillYjs(doc, i, Math.min(PULL_N, i + BATCH));
  }
  const { key: root } = await generateSigningKey();
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({ memory: true, signer: root, trust });
  const server = createServer({
    db,
    security: { root, trust },
    assets: {
      "/": {
        type: "text/html; charset=utf-8",
        body:
          '<!doctype html><meta charset="utf-8"><script type="module" src="/bench.js"></script>',
      },
      "/bench.js": { type: "text/javascript; charset=utf-8", body: js },
      "/bench/yjs-state": {
        type: "application/octet-stream",
        body: Y.encodeStateAsUpdate(doc),
      },
    },
  });
  const ac = new AbortController();
  const { promise, resolve } = Promise.withResolvers<number>();
  const http = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: ({ port }) => resolve(port),
  }, server.app.fetch);
  const url = `http://127.0.0.1:${await promise}`;
  // A Deno replica fills the repository the browser pulls.
  const writer = await openDatabase({
    memory: true,
    schemas: [{
      ns: "todo",
      version: 1,
      fields: {
        text: { type: "string", required: true },
        done: { type: "boolean", default: false },
        n: { type: "number" },
      },
    }],
  });
  const session = await ServerSession.create(writer, url);
  await writer.open(PULL_REPO);
  for (let i = 0; i < PULL_N; i++) {
    writer.create(`${PULL_REPO}/k${i}`, "todo", {
      text: `task number ${i}`,
      done: i % 2 === 0,
      n: i,
    });
  }
  await writer.flush();
  await writer.syncWith(
    PULL_REPO,
    session.httpTransport(PULL_REPO),
    session.hooks,
  );
  await writer.close();
  return {
    url,
    async close() {
      server.hub?.closeAll();
      ac.abort();
      await http.finished;
      await db.close();
    },
  };
}

async function freshPage(browser: Browser, url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => console.error("bench page error:", e.message));
  await page.goto(url);
  await page.waitForFunction(() => "bench" in globalThis);
  return page;
}

async function reopened(page: Page, url: string): Promise<Page> {
  const next = await page.context().newPage();
  await page.close();
  await next.goto(url);
  await next.waitForFunction(() => "bench" in globalThis);
  return next;
}

/** The Chromium rows; empty (with a message) when Chromium is missing. */
export async function benchBrowser(
  largeN = Number(Deno.env.get("CAPRA_BENCH_N") ?? 100_000),
): Promise<BrowserBenchRow[]> {
  try {
    Deno.statSync(CHROMIUM);
  } catch {
    console.error(`browser bench skipped: ${CHROMIUM} is missing`);
    return [];
  }
  const rows: BrowserBenchRow[] = [];
  const log = (r: BrowserBenchRow) => {
    rows.push(r);
    console.error(`${r.name}: capra ${r.capra}, yjs ${r.yjs}`);
  };
  const server = await benchServer();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ARGS,
  });
  try {
    for (const n of [10_000, largeN]) {
      let page = await freshPage(browser, server.url);
      const c = await call<Measured & { bytesPerRecord: number }>(
        page,
        "capraCreate",
        `bench-capra-${n}`,
        n,
        "workers",
      );
      page = await reopened(page, server.url);
      const cr = await call(page, "capraReload", `bench-capra-${n}`);
      const cHeap = await heapMb(page);
      await page.context().close();
      page = await freshPage(browser, server.url);
      const y = await call<Measured & { bytesPerRecord: number }>(
        page,
        "yjsCreate",
        `bench-yjs-${n}`,
        n,
      );
      page = await reopened(page, server.url);
      const yr = await call(page, "yjsReload", `bench-yjs-${n}`);
      const yHeap = await heapMb(page);
      await page.context().close();
      if (c.count !== n || cr.count !== n || y.count !== n || yr.count !== n) {
        throw new Error(`browser bench ${n}: a side lost records`);
      }
      const k = n.toLocaleString("en-US");
      log({
        name: `Chromium: create ${k} records + persisted`,
        capra: fmtMs(c.ms),
        yjs: fmtMs(y.ms),
        ratio: ratio(c.ms, y.ms),
      });
      log({
        name: `Chromium: create ${k}: longest main-thread task`,
        capra: longest(c),
        yjs: longest(y),
        ratio: "",
        target: `≤ ${LONG_TASK_TARGET_MS} ms`,
      });
      log({
        name: `Chromium: reload, open + read all ${k}`,
        capra: fmtMs(cr.ms),
        yjs: fmtMs(yr.ms),
        ratio: ratio(cr.ms, yr.ms),
      });
      log({
        name: `Chromium: reload ${k}: longest main-thread task`,
        capra: longest(cr),
        yjs: longest(yr),
        ratio: "",
        target: `≤ ${LONG_TASK_TARGET_MS} ms`,
      });
      log({
        name: `Chromium: ${k} records: IndexedDB bytes per record`,
        capra: `${c.bytesPerRecord.toFixed(0)} B`,
        yjs: `${y.bytesPerRecord.toFixed(0)} B`,
        ratio: ratio(c.bytesPerRecord, y.bytesPerRecord),
      });
      log({
        name: `Chromium: ${k} records: JS heap after reload + read all`,
        capra: `${cHeap.toFixed(0)} MB`,
        yjs: `${yHeap.toFixed(0)} MB`,
        ratio: ratio(cHeap, yHeap),
      });
      if (n === 10_000) {
        // Before: signatures on the page's thread (no workers, no slices).
        const before = await freshPage(browser, server.url);
        const b = await call(
          before,
          "capraCreate",
          "bench-capra-page",
          n,
          "page",
        );
        await before.context().close();
        log({
          name: `Chromium: create ${k}, signing on the page (before workers)`,
          capra: `${fmtMs(b.ms)}, longest task ${longest(b)}`,
          yjs: "",
          ratio: "",
        });
      }
    }
    const cp = await freshPage(browser, server.url);
    const pull = await call(cp, "capraPull", PULL_REPO, PULL_N);
    await cp.context().close();
    const yp = await freshPage(browser, server.url);
    const ypull = await call(yp, "yjsPull", `${server.url}/bench/yjs-state`);
    await yp.context().close();
    if (pull.count !== PULL_N || ypull.count !== PULL_N) {
      throw new Error("browser bench: the pull is incomplete");
    }
    log({
      name: `Chromium: fresh browser pulls ${
        PULL_N.toLocaleString("en-US")
      } records`,
      capra: fmtMs(pull.ms),
      yjs: fmtMs(ypull.ms),
      ratio: ratio(pull.ms, ypull.ms),
    });
    log({
      name: "Chromium: pull: longest main-thread task",
      capra: longest(pull),
      yjs: longest(ypull),
      ratio: "",
      target: `≤ ${LONG_TASK_TARGET_MS} ms`,
    });
  } finally {
    await browser.close();
    await server.close();
  }
  return rows;
}

/** The rows as a Markdown table. */
export function browserTable(rows: readonly BrowserBenchRow[]): string {
  return [
    "| operation (headless Chromium) | Capra | Yjs + y-indexeddb | Capra / Yjs | target |",
    "|---|---:|---:|---:|---|",
    ...rows.map((r) =>
      `| ${r.name} | ${r.capra} | ${r.yjs} | ${r.ratio} | ${r.target ?? ""} |`
    ),
  ].join("\n");
}

if (import.meta.main) {
  console.log(browserTable(await benchBrowser()));
}
