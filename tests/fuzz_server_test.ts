/**
 * Fuzz: at least 10,000 random inputs per endpoint; never a 5xx, nothing stored. The
 * second test covers the endpoints and fields of issue 11: signed session requests,
 * revocations, the JSON views (signed, bearer, unsigned), metrics tokens and the body
 * hash of signed sync requests.
 */
import assert from "node:assert/strict";
import { Account, ServerSession } from "../mod.ts";
import { compileRules } from "../lib/sync/declared_rules.ts";
import { signSessionRequest } from "../lib/sync/session_request.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { encodeWsFrame } from "../lib/sync/ws_protocol.ts";
import { Rng, testSeed } from "./_helpers.ts";
import { clientDb, secureServer } from "./_sync_server.ts";
import { freshKey, sessionRequest } from "./_attack.ts";
import { SIGNED_HEADERS } from "../lib/sync/request_signing.ts";
import { HttpError } from "../server/errors.ts";

const INPUTS_PER_ENDPOINT = 10_000;
const REPO = "/all/fuzz";

function randomBytes(rng: Rng, max: number): Uint8Array {
  const out = new Uint8Array(rng.int(max));
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

/** Random bytes, or a valid message with a few bytes flipped. */
function fuzzBody(rng: Rng, valid: Uint8Array): Uint8Array {
  if (rng.bool(0.5)) return randomBytes(rng, 200);
  const b = valid.slice();
  for (let k = 0; k <= rng.int(4); k++) b[rng.int(b.length)] = rng.int(256);
  return b;
}

Deno.test("fuzz every HTTP endpoint and the WebSocket frames (seeded)", async () => {
  const seed = testSeed("server fuzz");
  const rng = new Rng(seed);
  const server = await secureServer();
  const db = await clientDb();
  const session = await ServerSession.create(db, "http://capra.test", {
    fetch: server.fetch,
  });
  const statuses = new Map<number, number>();
  const check = async (res: Response, what: string) => {
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${what}: ${res.status} (seed ${seed})`);
    await res.body?.cancel();
  };
  const valid = encodeSyncMessage({ repo: REPO as never });
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    const body = fuzzBody(rng, valid);
    // Unsigned, and signed by a valid session (the body is what is fuzzed).
    await check(
      await server.app.request(`/v1/sync${REPO}`, {
        method: "POST",
        body: body as Uint8Array<ArrayBuffer>,
      }),
      "unsigned sync",
    );
    await check(
      await server.app.request(`/v1/sync${REPO}`, {
        method: "POST",
        headers: await session.sign("POST", `/v1/sync${REPO}`, body),
        body: body as Uint8Array<ArrayBuffer>,
      }),
      "signed sync",
    );
    const json = rng.bool(0.5)
      ? JSON.stringify({
        publicKey: new TextDecoder().decode(randomBytes(rng, 60)),
      })
      : new TextDecoder().decode(randomBytes(rng, 100));
    await check(
      await server.app.request("/v1/sessions", { method: "POST", body: json }),
      "sessions",
    );
    const id = encodeURIComponent(
      new TextDecoder().decode(randomBytes(rng, 30)),
    );
    await check(
      await server.app.request(`/v1/sessions/${id}`, { method: "DELETE" }),
      "delete session",
    );
  }
  // WebSocket frames: each fake socket gets a random (or mutated) frame before or
  // after a valid hello; the hub must answer with an error or ignore, never crash.
  const hello = encodeWsFrame({
    t: "hello",
    fields: await session.sign("GET", "/v1/ws", new Uint8Array(0)),
  });
  let closed = 0;
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    const sent: Uint8Array[] = [];
    const done = Promise.withResolvers<void>();
    const socket = {
      readyState: 1,
      bufferedAmount: 0,
      binaryType: "arraybuffer",
      send: (b: Uint8Array) => void sent.push(b),
      close: () => {
        closed++;
        done.resolve();
      },
    } as unknown as WebSocket;
    server.hub!.attach(socket);
    const frame = rng.bool(0.3)
      ? encodeWsFrame({ t: "req", id: rng.int(9), msg: fuzzBody(rng, valid) })
      : fuzzBody(rng, hello);
    socket.onmessage!(
      new MessageEvent("message", { data: frame.slice().buffer }),
    );
    // Either refused (closed) or answered/ignored: let the hub's queue run.
    await Promise.race([
      done.promise,
      new Promise((r) => setTimeout(r, 0)),
    ]);
    socket.onclose!(new CloseEvent("close"));
  }
  assert.ok(closed > INPUTS_PER_ENDPOINT / 2, `${closed} refused`);
  assert.equal((await server.db.open(REPO)).count(), 0);
  assert.equal(server.hub!.connected, 0);
  // Still serving.
  const health = await server.app.request("/healthz");
  assert.equal(health.status, 200);
  await health.body?.cancel();
  console.log("statuses", Object.fromEntries(statuses));
  for (const d of [db, server.db]) await d.close();
});

/** A random string of printable and other characters. */
function randomText(rng: Rng, max: number): string {
  return new TextDecoder().decode(randomBytes(rng, max));
}

/** A copy of `headers` with one field dropped, replaced or garbled. */
function fuzzHeaders(
  rng: Rng,
  headers: Record<string, string>,
): Record<string, string> {
  const out = { ...headers };
  const names = Object.keys(out);
  const name = rng.pick(names);
  const roll = rng.int(4);
  if (roll === 0) delete out[name];
  else if (roll === 1) {
    out[name] = randomText(rng, 80).replace(/[^\x20-\x7e]/g, "");
  } else if (roll === 2) {
    const v = out[name];
    const i = rng.int(Math.max(1, v.length));
    out[name] = v.slice(0, i) + (v[i] === "A" ? "B" : "A") + v.slice(i + 1);
  }
  return out;
}

Deno.test("fuzz the issue-11 endpoints: session requests, revocation, views, metrics, body hashes", async () => {
  const seed = testSeed("server fuzz (issue 11)");
  const rng = new Rng(seed);
  const token = "fuzz-metrics-token-0123456789";
  const server = await secureServer({
    metricsToken: token,
    authenticate: (req) => {
      const h = req.headers.get("authorization");
      if (!h) return null;
      if (h === "Bearer alice" || h === "Bearer admin") return h.slice(7);
      throw new HttpError(401, "bad_token", "Unknown bearer token");
    },
    admins: ["admin"],
    rules: [{ pattern: "/pub/*", rule: (r) => r.op === "read", public: true }],
  });
  const db = await clientDb();
  const session = await ServerSession.create(db, "http://capra.test", {
    fetch: server.fetch,
  });
  const statuses = new Map<string, number>();
  const check = async (res: Response, what: string) => {
    const k = `${what} ${res.status}`;
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
    assert.ok(res.status < 500, `${what}: ${res.status} (seed ${seed})`);
    await res.body?.cancel();
  };
  const key = await freshKey();
  const sync = encodeSyncMessage({ repo: REPO as never });
  const paths = [
    "/v1/repos/all/fuzz",
    "/v1/repos/pub/news",
    "/v1/repos/sys/sessions",
    "/v1/repos/user/alice",
    "/v1/items/all/fuzz/x",
    "/v1/items/pub/news/x",
  ];
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    // Session requests: valid ones with a header or the body garbled.
    const init = await sessionRequest(key, {
      ...(rng.bool(0.3)
        ? { authorization: rng.pick(["Bearer alice", "Bearer x", "Basic y"]) }
        : {}),
      now: Date.now() + (rng.bool(0.1) ? rng.int(200_000) - 100_000 : 0),
    });
    const headers = fuzzHeaders(rng, init.headers as Record<string, string>);
    const body = rng.bool(0.3)
      ? fuzzBody(rng, init.body as Uint8Array)
      : init.body as Uint8Array;
    await check(
      await server.app.request("/v1/sessions", {
        method: "POST",
        headers,
        body: body as Uint8Array<ArrayBuffer>,
      }),
      "POST /v1/sessions",
    );
    // Revocation of random ids (signed or bearer or nothing); never our own session.
    const id = rng.bool(0.5)
      ? encodeURIComponent(randomText(rng, 30))
      : (await freshKey()).sessionId;
    const delPath = `/v1/sessions/${id}`;
    const delHeaders: Record<string, string> = rng.bool(0.5)
      ? await session.sign("DELETE", delPath, new Uint8Array(0))
      : rng.bool(0.5)
      ? {
        authorization: rng.pick(["Bearer alice", "Bearer admin", "Bearer no"]),
      }
      : {};
    await check(
      await server.app.request(delPath, {
        method: "DELETE",
        headers: fuzzHeaders(rng, { ...delHeaders, "x-pad": "1" }),
      }),
      "DELETE /v1/sessions/:id",
    );
    // Views: signed (maybe garbled), bearer, or unsigned.
    const path = rng.bool(0.8)
      ? rng.pick(paths)
      : `/v1/${rng.pick(["repos", "items"])}/${
        encodeURIComponent(randomText(rng, 12))
      }/${encodeURIComponent(randomText(rng, 12))}`;
    const viewHeaders: Record<string, string> = rng.bool(0.4)
      ? fuzzHeaders(rng, await session.sign("GET", path, new Uint8Array(0)))
      : rng.bool(0.5)
      ? { authorization: rng.pick(["Bearer alice", "Bearer nobody", "x"]) }
      : {};
    await check(
      await server.app.request(path, { headers: viewHeaders }),
      "GET views",
    );
    // Metrics tokens.
    await check(
      await server.app.request("/metrics", {
        headers: rng.bool(0.1) ? { authorization: `Bearer ${token}` } : {
          authorization: `Bearer ${
            randomText(rng, 40).replace(/[^\x20-\x7e]/g, "")
          }`,
        },
      }),
      "GET /metrics",
    );
    // Signed sync requests with a garbled body hash or other signed field.
    const signed = await session.sign("POST", `/v1/sync${REPO}`, sync);
    const garbled = rng.bool(0.5)
      ? {
        ...signed,
        [SIGNED_HEADERS.bodyHash]: randomText(rng, 50).replace(
          /[^\x20-\x7e]/g,
          "",
        ),
      }
      : fuzzHeaders(rng, signed);
    await check(
      await server.app.request(`/v1/sync${REPO}`, {
        method: "POST",
        headers: garbled,
        body: (rng.bool(0.5) ? sync : fuzzBody(rng, sync)) as Uint8Array<
          ArrayBuffer
        >,
      }),
      "POST /v1/sync (headers)",
    );
  }
  // Our own session survived every random revocation attempt.
  assert.equal(server.trust.isRevoked(session.record.id), false);
  assert.equal((await server.db.open(REPO)).count(), 0);
  assert.equal((await server.db.open("/pub/news")).count(), 0);
  const health = await server.app.request("/healthz");
  assert.equal(health.status, 200);
  await health.body?.cancel();
  console.log("statuses", Object.fromEntries(statuses));
  for (const d of [db, server.db]) await d.close();
});

Deno.test("fuzz the user-system endpoints: sign-in bodies, passkey options, invites, account, admin, members", async () => {
  const seed = testSeed("server fuzz (users)");
  const rng = new Rng(seed);
  const server = await secureServer({
    rules: compileRules([
      { pattern: "/list/*", read: "members", write: "members" },
    ]),
    users: { signUp: "open", scryptLog2N: 4 },
  });
  const db = await clientDb();
  const session = await ServerSession.create(db, "http://capra.test", {
    fetch: server.fetch,
    signIn: { method: "sign-up", name: "alice", password: "alice-password" },
  });
  await new Account(session).claim("/list/mine");
  const statuses = new Map<string, number>();
  const check = async (res: Response, what: string) => {
    const k = `${what} ${res.status}`;
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
    assert.ok(res.status < 500, `${what}: ${res.status} (seed ${seed})`);
    await res.body?.cancel();
  };
  const junk = () =>
    rng.pick<unknown>([
      null,
      7,
      "",
      randomText(rng, 20),
      [],
      { a: 1 },
      "alice",
      "x".repeat(rng.int(300)),
      true,
    ]);
  const signIns = () =>
    rng.pick<unknown>([
      { method: "password", name: junk(), password: junk() },
      { method: "password", name: "alice", password: randomText(rng, 12) },
      { method: "passkey", challengeId: junk(), response: junk() },
      { method: "sign-up", name: junk(), password: junk(), invite: junk() },
      { method: "sign-up", name: junk(), passkey: junk() },
      { method: junk() },
      junk(),
    ]);
  const signed = [
    ["GET", "/v1/auth/me"],
    ["GET", "/v1/auth/devices"],
    ["POST", "/v1/auth/password"],
    ["GET", "/v1/admin/users"],
    ["POST", "/v1/admin/invites"],
    ["PUT", "/v1/members/list/x"],
    ["GET", "/v1/members/list/mine"],
    ["POST", "/v1/members/list/mine"],
    ["POST", "/v1/members/todo/x"],
  ] as const;
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    const key = await freshKey();
    const { body, headers } = await signSessionRequest(key, {
      extra: { signIn: signIns(), device: junk() },
    });
    await check(
      await server.app.request("/v1/sessions", {
        method: "POST",
        headers: rng.bool(0.2) ? fuzzHeaders(rng, headers) : headers,
        body: (rng.bool(0.2) ? fuzzBody(rng, body) : body) as Uint8Array<
          ArrayBuffer
        >,
      }),
      "POST /v1/sessions (signIn)",
    );
    const options = rng.bool(0.5)
      ? JSON.stringify({
        purpose: rng.pick(["sign-in", "sign-up", junk()]),
        publicKey: rng.bool(0.7) ? encodeBase64Url(key.publicKey) : junk(),
        ...(rng.bool(0.5) ? { name: junk() } : {}),
        ...(rng.bool(0.2) ? { invite: junk() } : {}),
      })
      : randomText(rng, 120);
    await check(
      await server.app.request("/v1/auth/passkey/options", {
        method: "POST",
        body: options,
      }),
      "POST /v1/auth/passkey/options",
    );
    await check(
      await server.app.request(
        `/v1/auth/invites/${encodeURIComponent(randomText(rng, 50))}`,
      ),
      "GET /v1/auth/invites/:token",
    );
    const [method, path] = rng.pick(signed);
    const json = new TextEncoder().encode(
      rng.bool(0.8)
        ? JSON.stringify({
          [
            rng.pick([
              "add",
              "remove",
              "everywhere",
              "user",
              "password",
              "name",
              "role",
            ])
          ]: junk(),
        })
        : randomText(rng, 40),
    );
    const payload = method === "GET" ? new Uint8Array(0) : json;
    const fields = await session.sign(method, path, payload);
    await check(
      await server.app.request(path, {
        method,
        headers: rng.bool(0.3) ? fuzzHeaders(rng, fields) : fields,
        ...(payload.length ? { body: payload as Uint8Array<ArrayBuffer> } : {}),
      }),
      `${method} ${path}`,
    );
    const id = encodeURIComponent(randomText(rng, 30));
    await check(
      await server.app.request(`/v1/auth/devices/${id}`, {
        method: "DELETE",
        headers: await session.sign(
          "DELETE",
          `/v1/auth/devices/${id}`,
          new Uint8Array(0),
        ),
      }),
      "DELETE /v1/auth/devices/:id",
    );
  }
  // alice is still the one user, still signed in, still the owner.
  assert.deepEqual(
    (await server.users!.users.list()).map((u) => u.name).filter((n) =>
      n === "alice"
    ),
    ["alice"],
  );
  assert.equal(server.trust.isRevoked(session.record.id), false);
  assert.equal((await server.users!.members.get("/list/mine"))?.owner, "alice");
  console.log("statuses", Object.fromEntries(statuses));
  for (const d of [db, server.db]) await d.close();
});
