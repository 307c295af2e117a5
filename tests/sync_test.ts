/** Replicas converge through a server over the stateless sync rounds (memory and HTTP). */
import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { answerSyncBytes, type SyncTransport } from "../lib/sync/sync_round.ts";
import { HttpSyncTransport } from "../lib/sync/http_transport.ts";
import { createApp } from "../server/app.ts";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";

const REPO = "/all/sync";

async function network(n: number) {
  const server = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  const clients: Database[] = [];
  for (let i = 0; i < n; i++) {
    clients.push(await openDatabase({ memory: true, schemas: [EVERYTHING] }));
  }
  for (const a of [server, ...clients]) {
    for (const b of [server, ...clients]) {
      if (a !== b) a.trustSession(b.session);
    }
    await a.open(REPO);
  }
  let online = true;
  const transport: SyncTransport = {
    request: (bytes) => {
      if (!online) return Promise.reject(new Error("offline"));
      return answerSyncBytes((r) => server.open(r), bytes);
    },
  };
  return { server, clients, transport, setOnline: (v: boolean) => online = v };
}

Deno.test("two replicas converge through a server, offline edits included", async () => {
  const { server, clients: [a, b], transport, setOnline } = await network(2);
  a.create(`${REPO}/x`, "all", {
    s: "start",
    body: "hello",
    tags: new Set(["t"]),
  });
  await a.syncWith(REPO, transport);
  await b.syncWith(REPO, transport);
  assert.equal(b.item(`${REPO}/x`)!.get("s"), "start");
  setOnline(false);
  a.item(`${REPO}/x`)!.update({ s: "a", body: "hello world" });
  b.item(`${REPO}/x`)!.update({
    n: 2,
    body: "oh hello",
    tags: new Set(["t", "u"]),
  });
  await assert.rejects(a.syncWith(REPO, transport), /offline/);
  setOnline(true);
  await a.syncWith(REPO, transport);
  await b.syncWith(REPO, transport);
  await a.syncWith(REPO, transport);
  const xa = a.item(`${REPO}/x`)!, xb = b.item(`${REPO}/x`)!;
  const xs = server.item(`${REPO}/x`)!;
  assert.equal(snapshot(xa), snapshot(xb));
  assert.equal(snapshot(xa), snapshot(xs));
  assert.equal(xa.get("body"), "oh hello world");
  assert.deepEqual(xa.get("tags"), new Set(["t", "u"]));
  for (const d of [server, a, b]) await d.close();
});

Deno.test("in-sync replicas settle in one round of a few bytes", async () => {
  const { server, clients: [a], transport } = await network(1);
  for (let i = 0; i < 2000; i++) a.create(`${REPO}/k${i}`, "all", { n: i });
  const first = await a.syncWith(REPO, transport);
  assert.equal(first.commitsSent, 2000);
  assert.equal(server.count(REPO), 2000);
  const again = await a.syncWith(REPO, transport);
  assert.equal(again.rounds, 1);
  assert.ok(
    again.bytesSent + again.bytesReceived < 1024,
    `${again.bytesSent + again.bytesReceived} B`,
  );
  a.item(`${REPO}/k7`)!.set("n", -7);
  const one = await a.syncWith(REPO, transport);
  assert.equal(one.commitsSent, 1);
  assert.ok(
    one.bytesSent + one.bytesReceived < 4096,
    `${one.bytesSent + one.bytesReceived} B`,
  );
  assert.equal(server.item(`${REPO}/k7`)!.get("n"), -7);
  for (const d of [server, a]) await d.close();
});

Deno.test("random edits on 3 clients converge through the HTTP route (seeded)", async () => {
  const seed = testSeed("sync http");
  const rng = new Rng(seed);
  const { server, clients } = await network(3);
  const app = createApp({ db: server });
  const http = new HttpSyncTransport(
    "http://capra.test",
    REPO,
    (url, init) => app.request(url, init),
  );
  for (let step = 0; step < 60; step++) {
    const c = rng.pick(clients);
    const key = `${REPO}/i${rng.int(4)}`;
    const item = c.item(key);
    if (!item) c.create(key, "all", { n: rng.int(9) });
    else if (rng.bool(0.1)) item.delete();
    else item.update({ n: rng.int(100), s: `s${rng.int(5)}` });
    if (rng.bool(0.3)) await c.syncWith(REPO, http);
  }
  for (let round = 0; round < 2; round++) {
    for (const c of clients) await c.syncWith(REPO, http);
  }
  for (let i = 0; i < 4; i++) {
    const views = [server, ...clients].map((d) => d.item(`${REPO}/i${i}`));
    for (const v of views) {
      assert.equal(
        v && snapshot(v),
        views[0] && snapshot(views[0]),
        `seed ${seed}`,
      );
    }
  }
  for (const d of [server, ...clients]) await d.close();
});

Deno.test("the HTTP route refuses malformed and mismatched messages with clear errors", async () => {
  const { server } = await network(0);
  const app = createApp({ db: server });
  const post = (path: string, body: Uint8Array) =>
    app.request(path, {
      method: "POST",
      body: body as Uint8Array<ArrayBuffer>,
    });
  const garbage = await post("/v1/sync/all/sync", new Uint8Array([1, 2, 3]));
  assert.equal(garbage.status, 400);
  assert.match(
    (await garbage.json()).message,
    /Invalid|MessagePack|sync message/i,
  );
  const { encodeSyncMessage } = await import("../lib/sync/protocol.ts");
  const wrong = await post(
    "/v1/sync/all/sync",
    encodeSyncMessage({ repo: "/all/other" as never }),
  );
  assert.equal(wrong.status, 400);
  assert.match((await wrong.json()).message, /posted to \/all\/sync/);
  await server.close();
});
