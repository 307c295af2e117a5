/** Sessions, signed requests and authorization rules over the HTTP routes (in-process). */
import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { SIGNED_HEADERS, signRequest } from "../lib/sync/request_signing.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import {
  encodeSessionRecord,
  sessionSignedBytes,
} from "../lib/core/session.ts";
import { sessionIdOf } from "../lib/crypto/keys.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";

const REPO = "/all/auth";
const BASE = "http://capra.test";

async function client(
  server: TestServer,
  token?: string,
  now?: () => number,
) {
  const db = await clientDb();
  const session = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
    ...(token ? { token } : {}),
    ...(now ? { now } : {}),
  });
  return { db, session };
}

/** A signed POST of `body` to the sync route of `repo`, with optional tampering. */
async function signedPost(
  server: TestServer,
  session: ServerSession,
  repo: string,
  body: Uint8Array,
  tamper: (h: Record<string, string>) => void = () => {},
) {
  const path = `/v1/sync${repo}`;
  const headers: Record<string, string> = await session.sign(
    "POST",
    path,
    body,
  );
  tamper(headers);
  return await server.app.request(path, {
    method: "POST",
    headers,
    body: body as Uint8Array<ArrayBuffer>,
  });
}

async function errorOf(res: Response) {
  const j = await res.json();
  assert.equal(typeof j.message, "string");
  return { status: res.status, code: j.code as string };
}

Deno.test("sessions: issued, signed requests sync; unsigned, forged, stale and replayed are refused", async () => {
  const server = await secureServer();
  const { db, session } = await client(server);
  assert.equal(session.record.id, db.sessionId);
  assert.ok(session.record.expiresAt! > Date.now());
  await db.open(REPO);
  db.create(`${REPO}/a`, "all", { n: 1 });
  const stats = await db.syncWith(
    REPO,
    session.httpTransport(REPO),
    session.hooks,
  );
  assert.equal(stats.commitsSent, 1);
  assert.equal(server.db.count(REPO), 1);

  const msg = encodeSyncMessage({ repo: REPO as never });
  const unsigned = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await errorOf(unsigned), { status: 401, code: "unsigned" });
  const forged = await signedPost(server, session, REPO, msg, (h) => {
    const s = h[SIGNED_HEADERS.signature];
    h[SIGNED_HEADERS.signature] = (s[0] === "A" ? "B" : "A") + s.slice(1);
  });
  assert.deepEqual(await errorOf(forged), {
    status: 401,
    code: "bad_signature",
  });
  const otherBody = await session.sign(
    "POST",
    `/v1/sync${REPO}`,
    new Uint8Array([1]),
  );
  const swapped = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers: otherBody,
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await errorOf(swapped), {
    status: 401,
    code: "bad_signature",
  });
  const stale = await signRequest(
    { sign: (m) => db.sign(m) },
    session.encoded,
    "POST",
    `/v1/sync${REPO}`,
    msg,
    Date.now() - 5 * 60_000,
  );
  const staleRes = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers: stale,
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await errorOf(staleRes), {
    status: 401,
    code: "stale_request",
  });
  const headers = await session.sign("POST", `/v1/sync${REPO}`, msg);
  const once = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers,
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.equal(once.status, 200);
  const replay = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers,
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await errorOf(replay), {
    status: 401,
    code: "replayed_request",
  });
  assert.equal(server.db.count(REPO), 1);
  for (const d of [db, server.db]) await d.close();
});

Deno.test("unknown, expired and revoked sessions are refused; nothing stored", async () => {
  let now = Date.now();
  const server = await secureServer({ now: () => now, sessionTtlMs: 60_000 });
  // Unknown: a record signed by some other "root".
  const db = await clientDb();
  const fakeRoot = (await generateSigningKey()).key;
  const unsignedRecord = {
    publicKey: db.session.publicKey,
    expiresAt: now + 60_000,
  };
  const fake = encodeSessionRecord({
    id: sessionIdOf(db.session.publicKey),
    ...unsignedRecord,
    rootSig: await fakeRoot.sign(sessionSignedBytes(unsignedRecord)),
  });
  const msg = encodeSyncMessage({ repo: REPO as never });
  const headers = await signRequest(
    { sign: (m) => db.sign(m) },
    fake,
    "POST",
    `/v1/sync${REPO}`,
    msg,
    now,
  );
  const res = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers,
    body: msg as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await errorOf(res), { status: 401, code: "bad_session" });

  // Expired.
  const { db: a, session: sa } = await client(server, undefined, () => now);
  await a.open(REPO);
  a.create(`${REPO}/x`, "all", { n: 1 });
  now += 61_000;
  await assert.rejects(
    a.syncWith(REPO, sa.httpTransport(REPO), sa.hooks),
    /expired/,
  );
  // Revoked: a fresh session revokes itself, then cannot sync.
  const { db: b, session: sb } = await client(server, undefined, () => now);
  const path = `/v1/sessions/${sb.record.id}`;
  const del = await server.app.request(path, {
    method: "DELETE",
    headers: await sb.sign("DELETE", path, new Uint8Array(0)),
  });
  assert.equal(del.status, 200);
  await b.open(REPO);
  b.create(`${REPO}/y`, "all", { n: 2 });
  await assert.rejects(
    b.syncWith(REPO, sb.httpTransport(REPO), sb.hooks),
    /revoked/,
  );
  // Another session may not revoke someone else's.
  const { db: c, session: sc } = await client(server, undefined, () => now);
  const other = `/v1/sessions/${sc.record.id}`;
  const { session: sd, db: d } = await client(server, undefined, () => now);
  const denied = await server.app.request(other, {
    method: "DELETE",
    headers: await sd.sign("DELETE", other, new Uint8Array(0)),
  });
  assert.equal(denied.status, 403);
  assert.equal((await server.db.open(REPO)).count(), 0);
  // Revocations survive in /sys/sessions.
  assert.equal(
    server.db.item(`/sys/sessions/${sessionKey(sb.record.id)}`)?.get("revoked"),
    true,
  );
  for (const x of [db, a, b, c, d, server.db]) await x.close();
});

function sessionKey(id: string): string {
  return [...atob(id.replace(/-/g, "+").replace(/_/g, "/") + "==")]
    .map((ch) => ch.charCodeAt(0).toString(16).padStart(2, "0")).join("");
}

Deno.test("forged commit signatures and id/content mismatches are refused per commit", async () => {
  const server = await secureServer();
  const { db, session } = await client(server);
  const repo = await db.open(REPO);
  db.create(`${REPO}/good`, "all", { n: 1 });
  db.create(`${REPO}/bad`, "all", { n: 2 });
  await db.flush();
  const [good, bad] = ["good", "bad"].map((k) => {
    const id = db.history(`${REPO}/${k}`)[0].id;
    return repo.commitRecord(id)!.slice();
  });
  const forged = bad.slice();
  forged[5] ^= 1; // inside the signature
  const mismatch = bad.slice();
  mismatch[mismatch.length - 1] ^= 1; // content no longer matches its id
  for (const rec of [forged, mismatch]) {
    const res = await signedPost(
      server,
      session,
      REPO,
      encodeSyncMessage({
        repo: REPO as never,
        commits: [rec],
        sessions: [session.encoded],
      }),
    );
    assert.ok(res.status === 200 || res.status === 400, `${res.status}`);
  }
  assert.equal((await server.db.open(REPO)).count(), 0);
  const ok = await signedPost(
    server,
    session,
    REPO,
    encodeSyncMessage({
      repo: REPO as never,
      commits: [good, forged],
      sessions: [session.encoded],
    }),
  );
  assert.equal(ok.status, 200);
  const { decodeSyncMessage } = await import("../lib/sync/protocol.ts");
  const answer = decodeSyncMessage(new Uint8Array(await ok.arrayBuffer()));
  assert.equal(answer.error?.code, "rejected_commits");
  assert.match(answer.error!.message, /signature/);
  assert.deepEqual(server.db.keys(REPO), ["good"]);
  for (const d of [db, server.db]) await d.close();
});

Deno.test("rules: /sys is root-only, /user/<id> owner-only, app rules refuse writes per commit", async () => {
  const server = await secureServer({
    authenticate: (req) => req.headers.get("authorization")?.slice(7) ?? null,
    rules: [{ pattern: "/ro/*", rule: (r) => r.op === "read" }],
  });
  const { db: alice, session: sa } = await client(server, "alice");
  assert.equal(sa.record.userId, "alice");
  const { db: bob, session: sb } = await client(server, "bob");
  // Alice writes her own repository.
  await alice.open("/user/alice");
  alice.create("/user/alice/n", "all", { s: "private" });
  await alice.syncWith(
    "/user/alice",
    sa.httpTransport("/user/alice"),
    sa.hooks,
  );
  assert.equal(server.db.count("/user/alice"), 1);
  // Bob can neither read nor write it.
  await bob.open("/user/alice");
  await assert.rejects(
    bob.syncWith("/user/alice", sb.httpTransport("/user/alice"), sb.hooks),
    /403|forbidden/,
  );
  assert.equal(bob.count("/user/alice"), 0);
  const inspect = await server.app.request("/v1/repos/user/alice");
  assert.equal(inspect.status, 403);
  // Nobody but root writes /sys.
  await bob.open("/sys/x");
  bob.create("/sys/x/evil", "all", { n: 1 });
  await assert.rejects(
    bob.syncWith("/sys/x", sb.httpTransport("/sys/x"), sb.hooks),
    /forbidden/,
  );
  assert.equal((await server.db.open("/sys/x")).count(), 0);
  // App rule: /ro/* is read-only; the write is refused per commit and not stored.
  await bob.open("/ro/pub");
  bob.create("/ro/pub/w", "all", { n: 1 });
  const stats = await bob.syncWith(
    "/ro/pub",
    sb.httpTransport("/ro/pub"),
    sb.hooks,
  );
  assert.equal(stats.commitsSent, 1);
  assert.equal(server.db.count("/ro/pub"), 0);
  for (const d of [alice, bob, server.db]) await d.close();
});

Deno.test("oversized and malformed bodies get 413/400; /metrics counts", async () => {
  const server = await secureServer();
  const { db, session } = await client(server);
  const big = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers: { "content-length": String(64 * 1024 * 1024) },
    body: new Uint8Array(16) as Uint8Array<ArrayBuffer>,
  });
  assert.equal(big.status, 413);
  const garbage = await signedPost(
    server,
    session,
    REPO,
    new Uint8Array([1, 2, 3]),
  );
  assert.equal(garbage.status, 400);
  const badSession = await server.app.request("/v1/sessions", {
    method: "POST",
    body: "{not json",
  });
  assert.equal(badSession.status, 400);
  const metrics = await (await server.app.request("/metrics")).text();
  assert.match(metrics, /^capra_sessions_issued_total 1$/m);
  assert.match(metrics, /^capra_open_repositories \d+$/m);
  assert.match(metrics, /^capra_connected_clients 0$/m);
  for (const d of [db, server.db]) await d.close();
});
