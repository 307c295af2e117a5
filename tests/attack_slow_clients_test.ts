/**
 * Attacks by slow clients (issue 11, finding 5): half-sent requests held open, more
 * connections than a client should have, idle keep-alive connections and silent
 * WebSockets. The first test attacks `capra serve` itself (default limits); the others
 * serve a test server the same way (serveGuarded) with short limits.
 */

import assert from "node:assert/strict";
import { SyncClient } from "../mod.ts";
import { encodeWsFrame } from "../lib/sync/ws_protocol.ts";
import { signRequest } from "../lib/sync/request_signing.ts";
import { serveGuarded } from "../server/serve.ts";
import { clientDb, secureServer } from "./_sync_server.ts";
import { tempDir } from "./_helpers.ts";
import { ServerSession } from "../mod.ts";

const utf8 = new TextEncoder();

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(
          () => reject(new Error(`Timed out waiting for ${what}`)),
          ms,
        )
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with what the server sent once it closes the connection (or null at `ms`). */
async function closedWithin(
  conn: Deno.Conn,
  ms: number,
): Promise<string | null> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"wait">((r) => timer = setTimeout(() => r("wait"), left)),
    ]);
    clearTimeout(timer);
    if (n === "wait") return null;
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

async function startCapra(dir: string) {
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "serve", "--dir", `${dir}/data`, "--port", "0"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 30_000;
  while (!/http:\/\/[\d.]+:\d+/.test(out) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const m = /http:\/\/([\d.]+):(\d+)/.exec(out);
  return {
    child,
    reader,
    hostname: m?.[1] ?? "127.0.0.1",
    port: Number(m?.[2]),
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    },
  };
}

Deno.test("finding 5: capra serve closes 300 half-sent requests and caps connections per address", async () => {
  await using dir = await tempDir();
  const capra = await startCapra(dir.path);
  const conns: Deno.Conn[] = [];
  try {
    assert.ok(capra.port > 0, "capra serve listens");
    for (let i = 0; i < 300; i++) {
      const c = await Deno.connect({
        hostname: capra.hostname,
        port: capra.port,
      });
      conns.push(c);
      // Half send the start of a request, half send nothing at all.
      if (i % 2 === 0) {
        await c.write(
          utf8.encode(
            `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`,
          ),
        );
      }
    }
    // Headers never finish: every connection is closed by the header timeout (10 s by
    // default), or refused at once beyond the per-address cap (64).
    const outcomes = await Promise.all(
      conns.map((c) => closedWithin(c, 25_000)),
    );
    const open = outcomes.filter((o) => o === null).length;
    assert.equal(open, 0, `${open} half-sent requests still open`);
    const refused = outcomes.filter((o) =>
      o?.startsWith("HTTP/1.1 429")
    ).length;
    const timedOut = outcomes.filter((o) =>
      o?.startsWith("HTTP/1.1 408")
    ).length;
    assert.ok(refused >= 300 - 64, `${refused} refused by the per-address cap`);
    assert.equal(refused + timedOut, 300);
    // The server still serves.
    const health = await fetch(
      `http://${capra.hostname}:${capra.port}/healthz`,
    );
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await capra.stop();
  }
});

const SHORT = {
  sessionsPerAddressPerMinute: 100_000,
  headersTimeoutMs: 300,
  bodyTimeoutMs: 500,
  keepAliveTimeoutMs: 500,
  connectionsPerAddress: 5,
  maxHeaderBytes: 8192,
  wsIdleTimeoutMs: 1500,
  wsHelloTimeoutMs: 5_000,
};

Deno.test("finding 5: header, body and keep-alive timeouts; the head cap", async () => {
  const server = await secureServer({ limits: SHORT });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const port = served.addr.port;
  const open = () => Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // Headers dripped one byte at a time still have to finish in time.
    const drip = await open();
    const dripping = (async () => {
      for (
        const b of utf8.encode("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
      ) {
        try {
          await drip.write(new Uint8Array([b]));
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const dripped = await closedWithin(drip, 10_000);
    await dripping;
    assert.match(dripped ?? "still open", /^HTTP\/1\.1 408/);
    drip.close();
    // A body that never completes.
    const body = await open();
    await body.write(
      utf8.encode(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
      ),
    );
    assert.notEqual(await closedWithin(body, 10_000), null, "body timeout");
    body.close();
    // An idle keep-alive connection after a complete request.
    const idle = await open();
    await idle.write(utf8.encode("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    const answered = await closedWithin(idle, 10_000);
    assert.match(answered ?? "still open", /^HTTP\/1\.1 200/);
    idle.close();
    // A head larger than the cap.
    const big = await open();
    await big.write(
      utf8.encode(`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(9000)}\r\n\r\n`),
    ).catch(() => {});
    assert.match(
      await closedWithin(big, 10_000) ?? "still open",
      /^HTTP\/1\.1 431/,
    );
    big.close();
    // Normal requests still work through the guard (keep-alive reuse included).
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  } finally {
    await served.close();
    await server.db.close();
  }
});

Deno.test("finding 5: a client address holds at most connectionsPerAddress connections", async () => {
  // Default timeouts: the held connections stay open while the test runs, even under load.
  const server = await secureServer({
    limits: { sessionsPerAddressPerMinute: 100_000, connectionsPerAddress: 5 },
  });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const open = () =>
    Deno.connect({ hostname: "127.0.0.1", port: served.addr.port });
  try {
    // Five connections per address; the sixth is refused at once.
    const held: Deno.Conn[] = [];
    for (let i = 0; i < 5; i++) held.push(await open());
    const sixth = await open();
    assert.match(
      await closedWithin(sixth, 5_000) ?? "still open",
      /^HTTP\/1\.1 429/,
    );
    sixth.close();
    for (const c of held) c.close();
    for (let i = 0; i < 500 && served.guard.connections > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const res = await fetch(`http://127.0.0.1:${served.addr.port}/healthz`);
    assert.equal(res.status, 200, "a closed connection frees its place");
    await res.body?.cancel();
    assert.ok(server.metrics.connectionsRefused >= 1);
  } finally {
    await served.close();
    await server.db.close();
  }
});

Deno.test("finding 5: silent WebSockets are closed; nothing large is read before the hello", async () => {
  const server = await secureServer({ limits: SHORT });
  const served = await serveGuarded(server, { hostname: "127.0.0.1", port: 0 });
  const url = `ws://127.0.0.1:${served.addr.port}/v1/ws`;
  const db = await clientDb();
  try {
    const session = await ServerSession.create(
      db,
      `http://127.0.0.1:${served.addr.port}`,
    );
    // Authenticated, then silent: closed by the idle timeout.
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const closed = new Promise<number>((r) => ws.onclose = (e) => r(e.code));
    await new Promise((r) => ws.onopen = r);
    const welcome = new Promise((r) => ws.onmessage = r);
    ws.send(encodeWsFrame({
      t: "hello",
      fields: await signRequest(
        { sign: (m) => db.sign(m) },
        session.encoded,
        "GET",
        "/v1/ws",
        new Uint8Array(0),
      ),
    }));
    await welcome;
    assert.equal(await within(closed, 10_000, "the idle close"), 4000);
    // A large frame before the hello: refused at once.
    const early = new WebSocket(url);
    early.binaryType = "arraybuffer";
    const earlyClosed = new Promise<number>((r) =>
      early.onclose = (e) => r(e.code)
    );
    await new Promise((r) => early.onopen = r);
    early.send(new Uint8Array(64 * 1024));
    assert.equal(await within(earlyClosed, 10_000, "the early close"), 1008);
    // A SyncClient reconnects after an idle close and keeps syncing.
    const live = await SyncClient.connect(
      db,
      `http://127.0.0.1:${served.addr.port}`,
      { repos: ["/all/ws"], onError: () => {} },
    );
    try {
      await live.sync();
      await new Promise((r) => setTimeout(r, 2000)); // idle-closed meanwhile
      db.create("/all/ws/a", "all", { n: 1 });
      await live.sync();
      assert.equal(server.db.count("/all/ws"), 1);
    } finally {
      live.close();
    }
  } finally {
    await served.close();
    for (const d of [db, server.db]) await d.close();
  }
});
