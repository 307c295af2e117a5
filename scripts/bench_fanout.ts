/**
 * Push fan-out on one core: the server's PushFanout and HubConnection (unchanged) deliver
 * the commits of one shared repository to C subscribed sockets, all on this thread. The
 * sockets take the frames the way the guarded socket does (queued, bytes counted) but
 * write nowhere, so this measures the main thread's cost per delivery; the load rows
 * measure it end to end. Each tick carries the commits one tick of the load workload
 * brings to the shared repository (0.1·C commits per second, ticks of 100 ms).
 *
 * Standalone: `deno run -A scripts/bench_fanout.ts [--clients 2000]`.
 *
 * @module
 */

import { openDatabase, type Schema } from "../mod.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import type { SessionRecord } from "../lib/core/session.ts";
import { PushFanout } from "../server/push_fanout.ts";
import { HubConnection, type HubSocket } from "../server/ws_connection.ts";
import { ServerMetrics } from "../server/metrics.ts";
import type { SyncService } from "../server/sync_service.ts";

/** Deliveries per second the fan-out must sustain on one core (issue 14). */
export const FANOUT_TARGET_PER_S = 150_000;
/** Measured window. */
const RUN_MS = 3_000;
const REPO = "/bench/shared";
const SCHEMA: Schema = {
  ns: "bench",
  version: 1,
  fields: { n: { type: "number" }, s: { type: "string" } },
};

/** A socket that queues frames like the guarded one and drops them at each tick. */
class CountingSocket implements HubSocket {
  binaryType = "arraybuffer";
  readyState = 1;
  bufferedAmount = 0;
  bytesWritten = 0;
  onmessage = null;
  onclose = null;
  onerror = null;
  queue: Uint8Array[] = [];
  send(data: Uint8Array): void {
    this.sendEncoded(data);
  }
  sendEncoded(frame: Uint8Array): void {
    this.queue.push(frame);
    this.bufferedAmount += frame.length;
  }
  /** What a write loop does once the kernel took the bytes. */
  drain(): void {
    this.bytesWritten += this.bufferedAmount;
    this.bufferedAmount = 0;
    this.queue.length = 0;
  }
  close(): void {
    this.readyState = 3;
  }
}

/** Deliveries per second of `clients` subscribers, and the frames encoded per tick. */
export async function benchFanout(
  clients = 2000,
): Promise<
  { deliveriesPerS: number; clients: number; commitsPerTick: number }
> {
  const db = await openDatabase({ memory: true, schemas: [SCHEMA] });
  const metrics = new ServerMetrics();
  const record = { id: db.sessionId } as unknown as SessionRecord;
  const service = {
    metrics,
    trust: { lookup: () => record },
    rules: { perItem: () => false },
    mayReadItem: () => true,
    sessionRecords: () => [],
  } as unknown as SyncService;
  const sockets: CountingSocket[] = [];
  const conns = new Set<HubConnection>();
  for (let i = 0; i < clients; i++) {
    const s = new CountingSocket();
    const c = new HubConnection(
      s,
      {
        pushBufferBytes: 1 << 20,
        stuckTimeoutMs: 60_000,
      },
      metrics,
      () => {},
    );
    c.session = record;
    c.subs.add(REPO);
    sockets.push(s);
    conns.add(c);
  }
  const fanout = new PushFanout({ subscribersOf: () => conns }, service);
  const repo = await db.open(REPO);
  const commitsPerTick = Math.max(1, Math.round(clients * 0.1 / 10));
  let n = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < RUN_MS) {
      const ids: CommitId[] = [];
      for (let i = 0; i < commitsPerTick; i++) {
        const item = db.create(`${REPO}/k${n}`, "bench", {
          n,
          s: `item ${n}`,
        });
        n++;
        ids.push(...item.heads);
      }
      // Committed and stored, as an ingest leaves them.
      await repo.flush();
      fanout.add(repo, ids, undefined);
      await fanout.flush();
      for (const s of sockets) s.drain();
    }
  } finally {
    fanout.stop();
    await db.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    deliveriesPerS: Math.round(metrics.pushDeliveries / seconds),
    clients,
    commitsPerTick,
  };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--clients");
  const clients = i === -1 ? 2000 : Number(Deno.args[i + 1]);
  const r = await benchFanout(clients);
  console.log(
    `fan-out on one core: ${r.deliveriesPerS} deliveries/s to ${r.clients} sockets (${r.commitsPerTick} commits per tick; target ≥ ${FANOUT_TARGET_PER_S})`,
  );
}
