/**
 * Flow control of the WebSocket pushes (issue 14) through the guarded server (serveGuarded,
 * as `capra serve`): a client that stops reading does not delay the others, holds at most
 * its buffer bound on the server, and catches up by reconciliation once it reads again,
 * without being disconnected; one that stays stuck is closed after the stuck timeout; an
 * older client that cannot be told to catch up is closed so it reconciles on reconnect;
 * time the server's own event loop was blocked does not count as the peer being stuck.
 */

import assert from "node:assert/strict";
import { type Database, ServerSession, SyncClient } from "../mod.ts";
import { encodeWsFrame } from "../lib/sync/ws_protocol.ts";
import { signRequest } from "../lib/sync/request_signing.ts";
import { serveGuarded } from "../server/serve.ts";
import {
  HubConnection,
  PushFrame,
  WS_CLOSE_CATCH_UP,
  WS_CLOSE_STUCK,
} from "../server/ws_connection.ts";
import { ServerMetrics } from "../server/metrics.ts";
import { clientDb, GENEROUS_ISSUANCE, secureServer } from "./_sync_server.ts";
import { PausableWebSocket, RAW_SOCKETS } from "./_raw_ws.ts";

const REPO = "/all/flow";

/** Per-socket bound of the test servers (small, so a test overflows it quickly). */
const BOUND = 64 * 1024;
/** Payload of each commit: enough of them fill the kernel's socket buffers too. */
const PAD = "x".repeat(256 * 1024);
/**
 * Most commits written while waiting for the server to leave pushes out (the kernel
 * buffers of a loopback socket pair can take tens of MB before the server's fill).
 */
const MAX_COMMITS = 400;
/** Commits written after the server started leaving pushes out. */
const MORE_COMMITS = 10;
/** Upper bound of every wait (a broken flow control fails instead of hanging). */
const WAIT_MS = 120_000;

/** Resolves once `db` holds `n` items in REPO (checked on every change). */
function untilCount(db: Database, n: number): Promise<void> {
  if (db.count(REPO) >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${db.count(REPO)} of ${n} items after ${WAIT_MS} ms`),
        ),
      WAIT_MS,
    );
    const off = db.repository(REPO).onChange(() => {
      if (db.count(REPO) >= n) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/** Polls `fn` every 10 ms until it is true (bounded). */
async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < WAIT_MS / 10; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

async function setup(limits: Record<string, number>) {
  const server = await secureServer({
    limits: {
      ...GENEROUS_ISSUANCE,
      bytesPerSessionPerMinute: 1024 * 1024 * 1024,
      wsPushBufferBytes: BOUND,
      ...limits,
    },
  });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${served.addr.port}`;
  return { server, served, url };
}

/**
 * Writes big items one at a time (each its own push: with `follower`, the next only once
 * the follower received it) until `lagging()` holds, then MORE_COMMITS more; returns
 * how many it wrote.
 */
async function writeUntilLagging(
  writer: Database,
  lagging: () => boolean,
  follower?: Database,
): Promise<number> {
  let n = 0, extra = 0;
  while (extra < MORE_COMMITS) {
    if (n >= MAX_COMMITS) {
      throw new Error(`no lag after ${n} commits`);
    }

    writer.create(`${REPO}/i${n}`, "all", { s: `${PAD}${n}` });
    n++;
    await writer.flush();
    if (follower) await untilCount(follower, n);
    if (lagging()) extra++;
  }
  return n;
}

Deno.test("a client that stops reading does not delay the others, stays within its bound and catches up", async () => {
  const { server, served, url } = await setup({ wsStuckTimeoutMs: 600_000 });
  const writer = await clientDb(),
    fast = await clientDb(),
    slow = await clientDb();
  const clients: SyncClient[] = [];
  let catchUps = 0;
  try {
    clients.push(
      await SyncClient.connect(writer, url, { repos: [REPO] }),
      await SyncClient.connect(fast, url, { repos: [REPO] }),
    );
    clients.push(
      await SyncClient.connect(slow, url, {
        repos: [REPO],
        WebSocket: PausableWebSocket as unknown as typeof WebSocket,
        onCatchUp: () => catchUps++,
      }),
    );
    for (const c of clients) await c.sync();
    const raw = RAW_SOCKETS.at(-1)!;
    raw.pause();
    let maxSlow = 0;
    const sampler = setInterval(() => {
      maxSlow = Math.max(maxSlow, server.hub!.maxBufferedBytes);
    }, 5);
    const m = server.metrics;
    let written: number;
    try {
      // Each commit reaches the fast client while the slow one reads nothing.
      written = await writeUntilLagging(
        writer,
        () => m.pushesSkipped >= 1,
        fast,
      );
    } finally {
      clearInterval(sampler);
    }
    assert.equal(fast.count(REPO), written);
    assert.equal(server.hub!.lagging, 1, "the slow socket lags");
    assert.equal(m.socketsLagged, 1, "no other socket ever lagged");
    assert.ok(m.pushesSkipped > 0, "pushes were left out for the slow socket");
    assert.ok(slow.count(REPO) < written, "the slow client did not read yet");
    // What the server holds for it: the bound plus at most one tick's push.
    const onePush = PAD.length + 4096;
    assert.ok(
      maxSlow <= BOUND + onePush,
      `unsent bytes of one socket reached ${maxSlow} (bound ${BOUND})`,
    );
    raw.resume();
    await untilCount(slow, written);
    assert.ok(catchUps >= 1, "the client was told to catch up");
    assert.ok(m.catchUps >= 1);
    assert.equal(raw.closeCode, undefined, "never disconnected");
    assert.equal(RAW_SOCKETS.at(-1), raw, "no reconnection");
    assert.equal(m.stuckCloses + m.catchUpCloses, 0);
    // And it keeps receiving pushes afterwards.
    writer.create(`${REPO}/after`, "all", { n: 1 });
    await untilCount(slow, written + 1);
  } finally {
    for (const c of clients) c.close();
    await served.close();
    for (const d of [writer, fast, slow, server.db]) await d.close();
  }
});

Deno.test("a socket stuck over its bound is closed after the stuck timeout; its client reconnects and reconciles", async () => {
  const { server, served, url } = await setup({ wsStuckTimeoutMs: 1000 });
  const writer = await clientDb(), slow = await clientDb();
  const clients: SyncClient[] = [];
  try {
    clients.push(await SyncClient.connect(writer, url, { repos: [REPO] }));
    clients.push(
      await SyncClient.connect(slow, url, {
        repos: [REPO],
        WebSocket: PausableWebSocket as unknown as typeof WebSocket,
        backoffInitialMs: 10,
        onError: () => {},
      }),
    );
    for (const c of clients) await c.sync();
    const raw = RAW_SOCKETS.at(-1)!;
    raw.pause();
    const written = await writeUntilLagging(
      writer,
      () => server.metrics.pushesSkipped >= 1,
    );
    await until(() => server.metrics.stuckCloses === 1, "the stuck close");
    // The server gave up on it: the close frame may not get through a full buffer, so
    // the connection itself was closed; the client sees it once it reads again.
    raw.resume();
    await until(() => raw.readyState === 3, "the close");
    assert.ok(
      raw.closeCode === undefined || raw.closeCode === WS_CLOSE_STUCK,
      `closed with ${raw.closeCode}`,
    );
    // The client reconnected on a new socket and reconciled everything.
    await untilCount(slow, written).catch((e) => {
      throw new Error(
        `${e.message}; metrics ${
          JSON.stringify(server.metrics)
        }, ${RAW_SOCKETS.length} sockets`,
      );
    });
    assert.notEqual(RAW_SOCKETS.at(-1), raw, "a new socket");
  } finally {
    for (const c of clients) c.close();
    await served.close();
    for (const d of [writer, slow, server.db]) await d.close();
  }
});

Deno.test("a client without the catch-up feature is closed once it drained, to reconcile on reconnect", async () => {
  const { server, served, url } = await setup({ wsStuckTimeoutMs: 600_000 });
  const writer = await clientDb(), old = await clientDb();
  const cw = await SyncClient.connect(writer, url, { repos: [REPO] });
  const raw = new PausableWebSocket(`${url.replace("http", "ws")}/v1/ws`);
  try {
    await cw.sync();
    const session = await ServerSession.create(old, url);
    await until(() => raw.readyState === 1, "the socket open");
    const welcome = new Promise<void>((r) => raw.onmessage = () => r());
    // An older client's hello: no features.
    raw.send(encodeWsFrame({
      t: "hello",
      fields: await signRequest(
        { sign: (m) => old.sign(m) },
        session.encoded,
        "GET",
        "/v1/ws",
        new Uint8Array(0),
      ),
    }));
    await welcome;
    raw.onmessage = null;
    raw.send(encodeWsFrame({ t: "sub", repo: REPO }));
    await until(() => server.hub!.connected === 2, "two sockets");
    raw.pause();
    await writeUntilLagging(writer, () => server.hub!.lagging === 1);
    raw.resume();
    await until(
      () => raw.closeCode !== undefined,
      `the close (${server.hub!.lagging} lagging, ${
        server.hub!.maxBufferedBytes
      } B)`,
    );
    assert.equal(raw.closeCode, WS_CLOSE_CATCH_UP);
    assert.equal(server.metrics.catchUpCloses, 1);
    assert.equal(server.metrics.catchUps, 0);
  } finally {
    raw.close();
    cw.close();
    await served.close();
    for (const d of [writer, old, server.db]) await d.close();
  }
});

Deno.test("the stuck timeout counts the peer's stalls, not the server's own busy event loop", () => {
  const socket = {
    binaryType: "arraybuffer",
    readyState: 1,
    bufferedAmount: 0,
    bytesWritten: 0,
    onmessage: null,
    onclose: null,
    onerror: null,
    closedWith: undefined as number | undefined,
    send(d: Uint8Array) {
      this.bufferedAmount += d.length;
    },
    close(code?: number) {
      this.closedWith = code;
    },
  };
  const metrics = new ServerMetrics();
  const conn = new HubConnection(
    socket,
    {
      pushBufferBytes: 1000,
      stuckTimeoutMs: 1000,
    },
    metrics,
    () => {},
  );
  conn.subs.add(REPO);
  let t = 0;
  socket.bufferedAmount = 5000;
  conn.deliver(REPO, [new PushFrame(new Uint8Array(10), 1)], t);
  assert.ok(conn.lagging, "over the bound: lagging");
  // The server's loop was blocked 10 s: one check late, it counts as one short step.
  t += 10_000;
  assert.equal(conn.checkLag(t), true);
  assert.equal(socket.closedWith, undefined);
  // Progress (bytes reached the peer) resets the count.
  for (let i = 0; i < 15; i++) {
    t += 50;
    socket.bytesWritten += 10;
    assert.equal(conn.checkLag(t), true);
  }
  // Then no progress at all for the timeout: closed as stuck.
  let checks = 0;
  while (conn.checkLag(t += 50)) checks++;
  assert.equal(socket.closedWith, WS_CLOSE_STUCK);
  assert.equal(metrics.stuckCloses, 1);
  assert.ok(checks >= 1000 / 50 - 1, `closed after ${checks} checks`);
});
