/**
 * Attacks on the read-only views and the public surface (issue 11, findings 7, 8 and 9):
 * unsigned reads of every repository, one undecodable commit breaking a whole view,
 * public metrics and missing security headers.
 */

import assert from "node:assert/strict";
import { openDatabase, ServerSession } from "../mod.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";
import { statusOf } from "./_attack.ts";

const BASE = "http://capra.test";
const METRICS_TOKEN = "a-metrics-token-of-some-length";
const byName = (req: Request) =>
  req.headers.get("authorization")?.replace(/^Bearer /, "") ?? null;

async function writer(
  server: TestServer,
  repo: string,
  keys: string[],
  token?: string,
) {
  const db = await clientDb();
  const session = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
    ...(token ? { token } : {}),
  });
  await db.open(repo);
  for (const k of keys) db.create(`${repo}/${k}`, "all", { n: 1 });
  await db.syncWith(repo, session.httpTransport(repo), session.hooks);
  return { db, session };
}

Deno.test("finding 7: the JSON views need a session or a bearer user, and obey the read rules", async () => {
  const server = await secureServer({
    authenticate: byName,
    rules: [
      // Only alice reads /private/*; /news/* is public.
      {
        pattern: "/private/*",
        rule: (r) => r.op === "write" || r.session.userId === "alice",
      },
      { pattern: "/news/*", rule: () => true, public: true },
    ],
  });
  const w = await writer(server, "/all/open", ["a", "b"]);
  const p = await writer(server, "/private/x", ["s"], "alice");
  const n = await writer(server, "/news/today", ["headline"]);
  const opened = server.db.openRepositoryCount;
  // 1,000 unsigned reads of repositories nobody may read without a session.
  for (let i = 0; i < 1000; i++) {
    const res = await server.app.request(`/v1/repos/all/r${i}`);
    assert.equal(res.status, 401);
    await res.body?.cancel();
  }
  assert.equal(server.db.openRepositoryCount, opened, "nothing was opened");
  for (const path of ["/v1/repos/all/open", "/v1/items/all/open/a"]) {
    assert.deepEqual(await statusOf(await server.app.request(path)), {
      status: 401,
      code: "unsigned",
    });
  }
  // A signed session reads (GET signed with an empty body).
  const signed = await server.app.request("/v1/repos/all/open", {
    headers: await w.session.sign(
      "GET",
      "/v1/repos/all/open",
      new Uint8Array(0),
    ),
  });
  assert.deepEqual((await signed.json()).keys, ["a", "b"]);
  // A replayed signed GET is refused.
  const headers = await w.session.sign(
    "GET",
    "/v1/items/all/open/a",
    new Uint8Array(0),
  );
  assert.equal(
    (await server.app.request("/v1/items/all/open/a", { headers })).status,
    200,
  );
  assert.equal(
    (await server.app.request("/v1/items/all/open/a", { headers })).status,
    401,
  );
  // Bearer users read, within the rules.
  const bob = { authorization: "Bearer bob" };
  const alice = { authorization: "Bearer alice" };
  assert.equal(
    (await server.app.request("/v1/repos/all/open", { headers: bob })).status,
    200,
  );
  assert.equal(
    (await server.app.request("/v1/repos/private/x", { headers: bob })).status,
    403,
  );
  assert.equal(
    (await server.app.request("/v1/items/private/x/s", { headers: alice }))
      .status,
    200,
  );
  // A public repository is read without a session; /sys and /user never are.
  const news = await server.app.request("/v1/repos/news/today");
  assert.deepEqual((await news.json()).keys, ["headline"]);
  assert.equal(
    (await server.app.request("/v1/items/news/today/headline")).status,
    200,
  );
  assert.equal(
    (await server.app.request("/v1/repos/sys/sessions")).status,
    401,
  );
  assert.equal(
    (await server.app.request("/v1/repos/sys/sessions", { headers: bob }))
      .status,
    403,
  );
  for (const d of [w.db, p.db, n.db, server.db]) await d.close();
});

Deno.test("finding 8: an item with an unregistered schema is marked; the rest of the view still decodes", async () => {
  const server = await secureServer();
  const db = await openDatabase({
    memory: true,
    schemas: [
      { ns: "all", version: 1, fields: { n: { type: "number" } } },
      {
        ns: "mystery",
        version: 1,
        fields: { x: { type: "string" }, tags: { type: "set" } },
      },
    ],
  });
  const session = await ServerSession.create(db, BASE, { fetch: server.fetch });
  await db.open("/all/mixed");
  db.create("/all/mixed/a", "all", { n: 1 });
  db.create("/all/mixed/b", "mystery", { x: "hi", tags: new Set(["t"]) });
  await db.syncWith(
    "/all/mixed",
    session.httpTransport("/all/mixed"),
    session.hooks,
  );
  const get = async (path: string) =>
    await server.app.request(path, {
      headers: await session.sign("GET", path, new Uint8Array(0)),
    });
  const list = await get("/v1/repos/all/mixed");
  assert.equal(list.status, 200);
  const listing = await list.json();
  assert.deepEqual(listing.keys, ["a", "b"]);
  assert.equal(listing.count, 2);
  assert.equal(listing.undecodable.length, 1);
  assert.equal(listing.undecodable[0].key, "b");
  assert.equal(listing.undecodable[0].schema, "mystery/1");
  const a = await (await get("/v1/items/all/mixed/a")).json();
  assert.deepEqual(a.data, { n: 1 });
  const bRes = await get("/v1/items/all/mixed/b");
  assert.equal(bRes.status, 200);
  const b = await bRes.json();
  assert.equal(b.decoded, false);
  assert.equal(b.schema, "mystery/1");
  assert.match(b.reason, /mystery\/1/);
  assert.equal(b.heads.length, 1);
  assert.equal(b.raw.x, "hi");
  for (const d of [db, server.db]) await d.close();
});

Deno.test("finding 9: /metrics needs its token (or a separate address); every response carries the security headers", async () => {
  const open = await secureServer();
  const hidden = await open.app.request("/metrics");
  assert.equal(hidden.status, 404);
  await hidden.body?.cancel();
  const separate = await open.metricsApp.request("/metrics");
  assert.match(await separate.text(), /^capra_sessions_issued_total 0$/m);
  const server = await secureServer({ metricsToken: METRICS_TOKEN });
  assert.equal((await server.app.request("/metrics")).status, 401);
  assert.equal(
    (await server.app.request("/metrics", {
      headers: { authorization: "Bearer wrong-token-of-some-length" },
    })).status,
    401,
  );
  const ok = await server.app.request("/metrics", {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.match(await ok.text(), /^capra_open_repositories \d+$/m);
  const responses = [
    await server.app.request("/"),
    await server.app.request("/app.js"),
    await server.app.request("/healthz"),
    await server.app.request("/nope"),
    await server.app.request("/v1/sync/all/x", { method: "POST" }),
    await server.app.request("/v1/repos/all/x"),
    await server.app.request("/v1/ws"),
    await server.app.request("/v1/sessions", { method: "POST", body: "{" }),
  ];
  for (const res of responses) {
    const h = res.headers;
    const csp = h.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/, `${res.url} ${res.status}`);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(h.get("x-content-type-options"), "nosniff");
    assert.equal(h.get("x-frame-options"), "DENY");
    assert.equal(h.get("referrer-policy"), "no-referrer");
    await res.body?.cancel();
  }
  for (const d of [open.db, server.db]) await d.close();
});
