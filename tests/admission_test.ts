/**
 * Admission control (issue 14) through the guarded server: past capacity a new
 * connection is refused with 503 and Retry-After (probes still answer), a write of an
 * accepted client is refused with 503 `server_busy` and Retry-After and loses nothing
 * (it goes through once the load is gone), and lag caused by other processes taking the
 * CPU is not counted as this server's overload.
 */

import assert from "node:assert/strict";
import { SyncClient } from "../mod.ts";
import { serveGuarded } from "../server/serve.ts";
import {
  ADMISSION_MIN_CPU_SHARE,
  ADMISSION_RETRY_AFTER_S,
  LAG_WINDOW_SAMPLES,
  LoopLagMonitor,
} from "../server/limits/admission.ts";
import { DEFAULT_LIMITS } from "../server/limits/limits.ts";
import { clientDb, GENEROUS_ISSUANCE, secureServer } from "./_sync_server.ts";

const REPO = "/all/admission";

/** GET on a connection of its own (admission is decided on a connection's first request). */
async function freshGet(url: string): Promise<Response> {
  using client = Deno.createHttpClient({});
  const res = await fetch(url, { client });
  // Read the body before the client closes.
  const body = await res.arrayBuffer();
  return new Response(res.status === 101 ? null : body, {
    status: res.status,
    headers: res.headers,
  });
}

/** Fills the lag window with `ms` samples, the process busy at `share` of a core. */
function load(lag: LoopLagMonitor, ms: number, share = 1): void {
  for (let i = 0; i < LAG_WINDOW_SAMPLES; i++) lag.record(ms);
  lag.cpuShare = share;
}

Deno.test("lag while the process is not busy (other processes took the CPU) is not overload", () => {
  const lag = new LoopLagMonitor();
  load(lag, 500, ADMISSION_MIN_CPU_SHARE / 2);
  assert.equal(lag.medianMs, 500);
  assert.equal(lag.busyLagMs, 0);
  lag.cpuShare = ADMISSION_MIN_CPU_SHARE;
  assert.equal(lag.busyLagMs, 500);
});

Deno.test("past capacity: new connections get 503 + Retry-After, writes 503 server_busy, probes answer, nothing is lost", async () => {
  const server = await secureServer({ limits: GENEROUS_ISSUANCE });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  // The test drives the lag itself.
  server.admission.lag.stop();
  const url = `http://127.0.0.1:${served.addr.port}`;
  const writer = await clientDb();
  const errors: unknown[] = [];
  const client = await SyncClient.connect(writer, url, {
    repos: [REPO],
    onError: (e) => errors.push(e),
  });
  try {
    await client.sync();
    writer.create(`${REPO}/before`, "all", { n: 0 });
    await client.sync();
    // Over the write threshold (and so over the connection one).
    load(server.admission.lag, DEFAULT_LIMITS.admissionWriteLagMs + 50);
    assert.equal(server.admission.acceptsConnections, false);

    const refused = await freshGet(`${url}/v1/ws`);
    assert.equal(refused.status, 503);
    assert.equal(
      refused.headers.get("retry-after"),
      String(ADMISSION_RETRY_AFTER_S),
    );
    assert.equal((await refused.json()).code, "server_busy");
    const health = await freshGet(`${url}/healthz`);
    assert.equal(health.status, 200, "probes are always admitted");
    await health.body?.cancel();
    assert.ok((server.metrics.connectionsShed ?? 0) >= 1);

    // The accepted client's write is refused, not lost.
    const shedBefore = server.metrics.writesShed;
    writer.create(`${REPO}/during`, "all", { n: 1 });
    await client.sync().catch((e) => errors.push(e));
    assert.ok(server.metrics.writesShed > shedBefore, "the write was shed");
    assert.equal(server.db.item(`${REPO}/during`), undefined);

    // Load gone: the same write goes through.
    load(server.admission.lag, 0);
    await client.sync();
    assert.equal(server.db.item(`${REPO}/during`)?.get("n"), 1);
    const admitted = await freshGet(`${url}/v1/ws`);
    assert.notEqual(admitted.status, 503);
    await admitted.body?.cancel();
  } finally {
    client.close();
    await served.close();
    await writer.close();
    await server.db.close();
  }
});
