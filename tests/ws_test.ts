/** Real-time sync over WebSocket through a real server on 127.0.0.1. */
import assert from "node:assert/strict";
import { SyncClient } from "../mod.ts";
import { Rng, snapshot, testSeed } from "./_helpers.ts";
import { clientDb, listen, secureServer } from "./_sync_server.ts";

const REPO = "/all/live";

/** Resolves when `fn` becomes true, checked on every change of `db`'s repository. */
function until(
  db: Awaited<ReturnType<typeof clientDb>>,
  fn: () => boolean,
): Promise<void> {
  if (fn()) return Promise.resolve();
  return new Promise((resolve) => {
    const off = db.repository(REPO).onChange(() => {
      if (fn()) {
        off();
        resolve();
      }
    });
  });
}

Deno.test("two replicas and a server converge over WebSocket, pushes in real time", async () => {
  const server = await secureServer();
  const net = await listen(server);
  const a = await clientDb(), b = await clientDb();
  const ca = await SyncClient.connect(a, net.url, { repos: [REPO] });
  const cb = await SyncClient.connect(b, net.url, { repos: [REPO] });
  try {
    await ca.sync();
    await cb.sync();
    a.create(`${REPO}/x`, "all", { s: "from a", body: "hello" });
    // b learns it by push, without calling sync().
    await until(b, () => b.item(`${REPO}/x`)?.get("s") === "from a");
    // Concurrent edits on both sides.
    a.item(`${REPO}/x`)!.update({ n: 1, body: "hello world" });
    b.item(`${REPO}/x`)!.update({ s: "from b", body: "oh hello" });
    await ca.sync();
    await cb.sync();
    await ca.sync();
    assert.equal(
      snapshot(a.item(`${REPO}/x`)!),
      snapshot(b.item(`${REPO}/x`)!),
    );
    assert.equal(
      snapshot(a.item(`${REPO}/x`)!),
      snapshot(server.db.item(`${REPO}/x`)!),
    );
    assert.equal(a.item(`${REPO}/x`)!.get("body"), "oh hello world");
  } finally {
    ca.close();
    cb.close();
    await net.close();
    for (const d of [a, b, server.db]) await d.close();
  }
});

Deno.test("offline edits on both sides converge after reconnect; randomized edits (seeded)", async () => {
  const seed = testSeed("ws convergence");
  const rng = new Rng(seed);
  const server = await secureServer();
  let net = await listen(server);
  const dbs = [await clientDb(), await clientDb(), await clientDb()];
  const clients: SyncClient[] = [];
  for (const d of dbs) {
    clients.push(
      await SyncClient.connect(d, net.url, {
        repos: [REPO],
        backoffInitialMs: 5,
        backoffMaxMs: 50,
        onError: () => {},
      }),
    );
  }
  try {
    for (const c of clients) await c.sync();
    const edit = () => {
      const d = rng.pick(dbs);
      const key = `${REPO}/i${rng.int(5)}`;
      const item = d.item(key);
      if (!item) d.create(key, "all", { n: rng.int(9) });
      else if (rng.bool(0.1)) item.delete();
      else item.update({ n: rng.int(100), s: `s${rng.int(5)}` });
    };
    for (let i = 0; i < 40; i++) edit();
    // Cut the transport: the server goes away, everyone keeps editing offline.
    await net.close();
    for (let i = 0; i < 40; i++) edit();
    // Back on the same port: clients reconnect by themselves (backoff) and reconcile.
    net = await listen(server, Number(new URL(net.url).port));
    for (let round = 0; round < 2; round++) {
      for (const c of clients) await c.sync();
    }
    for (let i = 0; i < 5; i++) {
      const views = [server.db, ...dbs].map((d) => d.item(`${REPO}/i${i}`));
      for (const v of views) {
        assert.equal(
          v && snapshot(v),
          views[0] && snapshot(views[0]),
          `seed ${seed}`,
        );
      }
    }
  } finally {
    for (const c of clients) c.close();
    await net.close();
    for (const d of [...dbs, server.db]) await d.close();
  }
});

Deno.test("WebSocket: forged hello and forbidden subscriptions are refused", async () => {
  const server = await secureServer({
    authenticate: (req) => req.headers.get("authorization")?.slice(7) ?? null,
  });
  const net = await listen(server);
  const db = await clientDb();
  const { ServerSession } = await import("../mod.ts");
  const { encodeWsFrame, decodeWsFrame } = await import(
    "../lib/sync/ws_protocol.ts"
  );
  const session = await ServerSession.create(db, net.url, { token: "dave" });
  const open = async () => {
    const ws = new WebSocket(`${net.url.replace("http", "ws")}/v1/ws`);
    ws.binaryType = "arraybuffer";
    const frames: ReturnType<typeof decodeWsFrame>[] = [];
    const closed = new Promise<void>((r) => ws.onclose = () => r());
    let notify = () => {};
    ws.onmessage = (ev) => {
      frames.push(decodeWsFrame(new Uint8Array(ev.data)));
      notify();
    };
    await new Promise((r) => ws.onopen = r);
    const next = () =>
      frames.length ? Promise.resolve(frames.shift()!) : new Promise<
        ReturnType<typeof decodeWsFrame>
      >((r) => notify = () => r(frames.shift()!));
    return { ws, next, closed };
  };
  try {
    // Forged: a valid hello whose signature belongs to another request.
    const fields = await session.sign("GET", "/v1/other", new Uint8Array(0));
    const bad = await open();
    bad.ws.send(
      encodeWsFrame({ t: "hello", fields }) as Uint8Array<ArrayBuffer>,
    );
    const refusal = await bad.next();
    assert.equal(refusal.t, "error");
    assert.equal(refusal.t === "error" && refusal.error.code, "bad_signature");
    await bad.closed;
    // Valid hello, then a subscription to someone else's repository.
    const good = await open();
    good.ws.send(
      encodeWsFrame({
        t: "hello",
        fields: await session.sign("GET", "/v1/ws", new Uint8Array(0)),
      }) as Uint8Array<ArrayBuffer>,
    );
    assert.equal((await good.next()).t, "welcome");
    good.ws.send(
      encodeWsFrame({ t: "sub", repo: "/user/erin" }) as Uint8Array<
        ArrayBuffer
      >,
    );
    const denied = await good.next();
    assert.equal(denied.t === "error" && denied.error.code, "forbidden");
    good.ws.close();
    await good.closed;
    await server.hub!.whenAtMost(0);
  } finally {
    await net.close();
    for (const d of [db, server.db]) await d.close();
  }
});

Deno.test("WebSocket: an expired session gets session_expired, renews and delivers its edits", async () => {
  let now = Date.now();
  const clock = () => now;
  const server = await secureServer({ now: clock, sessionTtlMs: 60_000 });
  const net = await listen(server);
  const a = await clientDb();
  const errors: string[] = [];
  const ca = await SyncClient.connect(a, net.url, {
    repos: [REPO],
    now: clock,
    backoffInitialMs: 5,
    backoffMaxMs: 20,
    onError: (e) => errors.push(String((e as Error).message)),
  });
  try {
    await ca.sync();
    const firstExpiry = ca.session.record.expiresAt!;
    now += 61_000; // the session expires while connected
    a.create(`${REPO}/late`, "all", { n: 1 }); // made offline-ish, before renewal
    const deadline = Date.now() + 5000;
    while (!server.db.item(`${REPO}/late`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await ca.sync();
    assert.ok(server.db.item(`${REPO}/late`), "delivered after renewal");
    assert.ok(
      ca.errors.some((e) => e.code === "session_expired"),
      errors.join(),
    );
    assert.ok(ca.session.record.expiresAt! > firstExpiry);
  } finally {
    ca.close();
    await net.close();
    for (const d of [a, server.db]) await d.close();
  }
});

Deno.test("without `repos`, a client keeps every open repository in sync, also those opened later", async () => {
  const server = await secureServer();
  const net = await listen(server);
  const a = await clientDb(), b = await clientDb();
  await a.open("/all/early");
  const ca = await SyncClient.connect(a, net.url, { onError: () => {} });
  const cb = await SyncClient.connect(b, net.url, {
    repos: ["/all/early", "/all/late"],
  });
  try {
    a.create("/all/early/x", "all", { s: "opened before connect" });
    await a.open("/all/late"); // opened after connect: followed too
    a.create("/all/late/y", "all", { s: "opened after connect" });
    await ca.sync();
    await cb.sync();
    assert.equal(b.item("/all/early/x")?.get("s"), "opened before connect");
    assert.equal(b.item("/all/late/y")?.get("s"), "opened after connect");
    // And the other way round, by push.
    b.item("/all/late/y")!.set("n", 7);
    await cb.sync();
    await ca.sync();
    assert.equal(a.item("/all/late/y")!.get("n"), 7);
    // A closed client stops following.
    ca.close();
    await a.open("/all/after-close");
    a.create("/all/after-close/z", "all", { s: "local only" });
    await a.flush();
    assert.equal(server.db.isOpen("/all/after-close"), false);
  } finally {
    ca.close();
    cb.close();
    await net.close();
    for (const d of [a, b, server.db]) await d.close();
  }
});

Deno.test("commits the server refuses during a sync reach SyncClient.errors and onError", async () => {
  const server = await secureServer({
    rules: [{
      pattern: "/all/*",
      rule: (r) => r.op === "read" || !r.itemKey?.startsWith("ro"),
    }],
  });
  const net = await listen(server);
  const a = await clientDb();
  const reported: string[] = [];
  const ca = await SyncClient.connect(a, net.url, {
    repos: [REPO],
    onError: (e) => reported.push(String(e)),
  });
  try {
    await ca.sync();
    a.create(`${REPO}/ok`, "all", { s: "allowed" });
    a.create(`${REPO}/ro1`, "all", { s: "refused" });
    await ca.sync();
    assert.equal(server.db.item(`${REPO}/ok`)?.get("s"), "allowed");
    assert.equal(server.db.item(`${REPO}/ro1`), undefined);
    assert.ok(
      ca.errors.some((e) =>
        e.code === "rejected_commits" && /may not write/.test(e.message)
      ),
      JSON.stringify(ca.errors),
    );
    assert.ok(
      reported.some((r) => /rejected_commits/.test(r)),
      reported.join(),
    );
  } finally {
    ca.close();
    await net.close();
    for (const d of [a, server.db]) await d.close();
  }
});
