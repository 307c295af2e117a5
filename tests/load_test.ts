/**
 * Load: 100 WebSocket clients each write 50 commits to shared repositories through a
 * real server process (`capra serve`); every client ends with every commit and the
 * server's memory returns near its start level once they leave.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Database, SyncClient } from "../mod.ts";
import { tempDir } from "./_helpers.ts";
import { clientDb } from "./_sync_server.ts";

const CLIENTS = Number(Deno.env.get("CAPRA_LOAD_CLIENTS") ?? 100);
const COMMITS_PER_CLIENT = 50;
const BATCHES = 5;
const REPOS = ["/all/load0", "/all/load1", "/all/load2", "/all/load3"];
/** Allowed growth of the server's heap after every client has left. */
const MAX_HEAP_GROWTH_BYTES = 64 * 1024 * 1024;
/** Upper bound of the whole exchange. */
const MAX_LOAD_MS = 240_000;
/** Upper bound of the server's start. */
const MAX_START_MS = 30_000;

function countOf(db: Database): number {
  return REPOS.reduce((s, r) => s + db.count(r), 0);
}

/** Resolves when `db` has seen `n` distinct items change across REPOS. */
function untilCount(db: Database, n: number): Promise<void> {
  if (countOf(db) >= n) return Promise.resolve();
  const seen = new Set<string>();
  return new Promise((resolve) => {
    const offs = REPOS.map((r) =>
      db.repository(r).onChange((change) => {
        seen.add(change.path);
        if (seen.size >= n) {
          for (const off of offs) off();
          resolve();
        }
      })
    );
  });
}

/** Metrics token of the load server (its config). */
const METRICS_TOKEN = "load-test-metrics-token";

async function heapOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  })).text();
  return Number(/^capra_heap_used_bytes (\d+)$/m.exec(text)![1]);
}

/**
 * Starts `capra serve` on 127.0.0.1:0 and returns its URL. Its config lets the clients,
 * which all come from 127.0.0.1 here, have more connections and sessions than one
 * address may by default.
 */
async function startServer(dir: string) {
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  const config = join(dir, "capra.config.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      sessions: { perAddressPerMinute: 10 * CLIENTS },
      limits: { connectionsPerAddress: 10 * CLIENTS },
      metrics: { token: METRICS_TOKEN },
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
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
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + MAX_START_MS;
  while (!/http:\/\/[\d.]+:\d+/.test(out) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  reader.releaseLock();
  const url = out.match(/http:\/\/[\d.]+:\d+/)![0];
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      const status = await child.status;
      await child.stdout.cancel().catch(() => {});
      return status;
    },
  };
}

Deno.test(`load: ${CLIENTS} WebSocket clients x ${COMMITS_PER_CLIENT} commits, everyone gets everything`, async () => {
  await using tmp = await tempDir();
  const server = await startServer(tmp.path);
  const dbs: Database[] = [];
  const clients: SyncClient[] = [];
  try {
    const heapStart = await heapOf(server.url);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        dbs[i] = await clientDb();
        clients[i] = await SyncClient.connect(dbs[i], server.url, {
          repos: REPOS,
          // Under full load a push's acknowledgement may time out; the commits still
          // arrive and the final reconciliation confirms it.
          onError: () => {},
        });
      }),
    );
    await Promise.all(clients.map((c) => c.sync()));
    const total = CLIENTS * COMMITS_PER_CLIENT;
    const delivered = dbs.map((db) => untilCount(db, total));
    for (let batch = 0; batch < BATCHES; batch++) {
      dbs.forEach((db, i) => {
        for (let k = 0; k < COMMITS_PER_CLIENT / BATCHES; k++) {
          const n = batch * (COMMITS_PER_CLIENT / BATCHES) + k;
          db.create(`${REPOS[n % REPOS.length]}/c${i}-${n}`, "all", { n });
        }
      });
      await Promise.all(dbs.map((d) => d.flush()));
    }
    // Pushes alone deliver everything; then one reconciliation each confirms it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(delivered),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`not delivered within ${MAX_LOAD_MS} ms`)),
          MAX_LOAD_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    await Promise.all(clients.map((c) => c.sync()));
    for (const db of dbs) assert.equal(countOf(db), total);
    const elapsed = performance.now() - t0;
    for (const c of clients) c.close();
    const metrics = await (await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    })).text();
    assert.match(
      metrics,
      new RegExp(`^capra_commits_accepted_total ${total}$`, "m"),
    );
    const heapEnd = await heapOf(server.url);
    console.log(
      `load: ${total} commits x ${CLIENTS} clients in ${
        elapsed.toFixed(0)
      } ms; ` +
        `server heap ${(heapStart / 1e6).toFixed(1)} -> ${
          (heapEnd / 1e6).toFixed(1)
        } MB`,
    );
    assert.ok(
      heapEnd - heapStart < MAX_HEAP_GROWTH_BYTES,
      `server heap grew ${heapEnd - heapStart} B`,
    );
  } finally {
    for (const c of clients) c?.close();
    await Promise.all(dbs.map((d) => d?.close()));
    const status = await server.stop();
    assert.equal(status.code, 0, "graceful shutdown");
  }
});
