/** Sessions, signed requests and authorization rules over the HTTP routes (in-process). */
import assert from "node:assert/strict";
import { openDatabase, ServerSession, SyncClient } from "../mod.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { SIGNED_HEADERS, signRequest } from "../lib/sync/request_signing.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { encodeSessionRecord, sessionSignedBytes } from "../testing.ts";
import { sessionIdOf } from "../lib/crypto/keys.ts";
import {
  clientDb,
  listen,
  secureServer,
  type TestServer,
} from "./_sync_server.ts";
import { EVERYTHING } from "./_helpers.ts";

const REPO = "/all/auth";
const METRICS_TOKEN = "metrics-token-for-tests";
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

  // Expired: requests fail with session_expired (the transport would renew and retry).
  const { db: a, session: sa } = await client(server, undefined, () => now);
  await a.open(REPO);
  a.create(`${REPO}/x`, "all", { n: 1 });
  now += 61_000;
  const expired = await signedPost(server, sa, REPO, msg);
  assert.deepEqual(await errorOf(expired), {
    status: 401,
    code: "session_expired",
  });
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
  assert.equal(inspect.status, 401, "unsigned reads of /user are refused");
  const bobInspects = await server.app.request("/v1/repos/user/alice", {
    headers: await sb.sign("GET", "/v1/repos/user/alice", new Uint8Array(0)),
  });
  assert.equal(bobInspects.status, 403);
  const aliceInspects = await server.app.request("/v1/repos/user/alice", {
    headers: await sa.sign("GET", "/v1/repos/user/alice", new Uint8Array(0)),
  });
  assert.deepEqual((await aliceInspects.json()).keys, ["n"]);
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
  const server = await secureServer({ metricsToken: METRICS_TOKEN });
  const { db, session } = await client(server);
  const unsignedBig = await server.app.request(`/v1/sync${REPO}`, {
    method: "POST",
    headers: { "content-length": String(64 * 1024 * 1024) },
    body: new Uint8Array(16) as Uint8Array<ArrayBuffer>,
  });
  assert.equal(unsignedBig.status, 401, "authenticated before the body");
  const big = await signedPost(
    server,
    session,
    REPO,
    new Uint8Array(16),
    (h) => h["content-length"] = String(64 * 1024 * 1024),
  );
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
  assert.equal((await server.app.request("/metrics")).status, 401);
  const metrics = await (await server.app.request("/metrics", {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  })).text();
  assert.match(metrics, /^capra_sessions_issued_total 1$/m);
  assert.match(metrics, /^capra_open_repositories \d+$/m);
  assert.match(metrics, /^capra_connected_clients 0$/m);
  for (const d of [db, server.db]) await d.close();
});

Deno.test("session validity is judged at the commit's time: relayed after expiry accepted, stamped after expiry refused, revoked refused", async () => {
  let now = Date.now();
  const clock = () => now;
  const server = await secureServer({ now: clock, sessionTtlMs: 60_000 });
  const replica = async () => {
    const db = await openDatabase({
      memory: true,
      schemas: [EVERYTHING],
      clock,
    });
    const session = await ServerSession.create(db, BASE, {
      fetch: server.fetch,
      now: clock,
    });
    await db.open(REPO);
    return { db, session };
  };
  const a = await replica();
  a.db.create(`${REPO}/early`, "all", { n: 1 }); // while a's session is valid
  await a.db.syncWith(REPO, a.session.httpTransport(REPO), a.session.hooks);
  assert.equal(server.db.count(REPO), 1);
  const aRecord = a.session.encoded;
  // a also edits offline, still before its expiry, and stays offline past it.
  now += 30_000;
  a.db.create(`${REPO}/offline`, "all", { n: 2 });
  await a.db.flush();
  now += 31_000; // a's session has expired

  // A replica joining now still accepts a's commits: they were made in time.
  const c = await replica();
  const pulled = await c.db.syncWith(
    REPO,
    c.session.httpTransport(REPO),
    c.session.hooks,
  );
  assert.deepEqual(pulled.rejected, []);
  assert.deepEqual(c.db.keys(REPO), ["early"]);

  // A request signed by a's expired session is refused with a clear code...
  const expired = await signedPost(
    server,
    a.session,
    REPO,
    encodeSyncMessage({ repo: REPO as never }),
  );
  assert.deepEqual(await errorOf(expired), {
    status: 401,
    code: "session_expired",
  });
  // ...and its transport renews the session, then delivers the offline edit.
  const renewedFrom = a.session.record.expiresAt!;
  await a.db.syncWith(REPO, a.session.httpTransport(REPO), a.session.hooks);
  assert.ok(a.session.record.expiresAt! > renewedFrom);
  assert.deepEqual(server.db.keys(REPO).sort(), ["early", "offline"]);

  // A commit stamped after its session's expiry is refused (relayed by c, whose session
  // is valid): d's session expires, d writes anyway, c relays the commit with d's record.
  const d = await replica();
  now += 61_000;
  d.db.create(`${REPO}/late`, "all", { n: 3 });
  await d.db.flush();
  const cLive = await replica(); // c's session expired too: a fresh relay
  const dRepo = d.db.repository(REPO);
  const late = dRepo.commitRecord(dRepo.commitIds()[0])!;
  const relayLate = await signedPost(
    server,
    cLive.session,
    REPO,
    encodeSyncMessage({
      repo: REPO as never,
      commits: [late],
      sessions: [d.session.encoded],
    }),
  );
  assert.equal(relayLate.status, 200);
  const { decodeSyncMessage } = await import("../lib/sync/protocol.ts");
  const lateAnswer = decodeSyncMessage(
    new Uint8Array(await relayLate.arrayBuffer()),
  );
  assert.equal(lateAnswer.error?.code, "rejected_commits");
  assert.match(lateAnswer.error!.message, /expired/);
  assert.equal(server.db.item(`${REPO}/late`), undefined);
  // Relaying a's old commit record (made in time, session expired since) is accepted
  // by a replica that never saw it: here a fresh server-side repository.
  const other = await secureServer({ now: clock, root: server.root });
  const relayer = await ServerSession.create(cLive.db, BASE, {
    fetch: other.fetch,
    now: clock,
  });
  const aRepo = a.db.repository(REPO);
  const early = aRepo.commitRecord(a.db.history(`${REPO}/early`)[0].id)!;
  const relayEarly = await signedPost(
    other,
    relayer,
    REPO,
    encodeSyncMessage({
      repo: REPO as never,
      commits: [early],
      sessions: [aRecord],
    }),
  );
  assert.equal(relayEarly.status, 200);
  assert.equal(
    decodeSyncMessage(new Uint8Array(await relayEarly.arrayBuffer())).error,
    undefined,
  );
  assert.deepEqual(other.db.keys(REPO), ["early"]);

  // A revoked session's commits are refused, even those made while it was valid.
  const e = await replica();
  e.db.create(`${REPO}/revoked`, "all", { n: 4 });
  await e.db.flush();
  const eRepo = e.db.repository(REPO);
  const eCommit = eRepo.commitRecord(eRepo.commitIds()[0])!;
  const path = `/v1/sessions/${e.session.record.id}`;
  const del = await server.app.request(path, {
    method: "DELETE",
    headers: await e.session.sign("DELETE", path, new Uint8Array(0)),
  });
  assert.equal(del.status, 200);
  const relayRevoked = await signedPost(
    server,
    cLive.session,
    REPO,
    encodeSyncMessage({
      repo: REPO as never,
      commits: [eCommit],
      sessions: [e.session.encoded],
    }),
  );
  const revokedAnswer = decodeSyncMessage(
    new Uint8Array(await relayRevoked.arrayBuffer()),
  );
  assert.equal(revokedAnswer.error?.code, "rejected_commits");
  assert.equal(server.db.item(`${REPO}/revoked`), undefined);
  // The revoked key cannot get a new session either.
  await assert.rejects(e.session.renew(), /revoked/);
  assert.equal(
    server.db.item(`/sys/sessions/${sessionKey(e.session.record.id)}`)?.get(
      "revoked",
    ),
    true,
    "a refused renewal does not undo the revocation",
  );
  for (const x of [a, c, d, cLive, e]) await x.db.close();
  for (const x of [server.db, other.db]) await x.close();
});

Deno.test("item-level read rules: a client pulls and is pushed only the items it may read", async () => {
  // Anyone writes; only items whose key starts with "pub" are readable (except by root).
  const server = await secureServer({
    rules: [{
      pattern: "/board/*",
      rule: (r) =>
        r.op === "write" || r.itemKey === undefined ||
        r.itemKey.startsWith("pub"),
    }],
  });
  const board = "/board/main";
  const writer = await client(server);
  await writer.db.open(board);
  writer.db.create(`${board}/pub1`, "all", { n: 1 });
  writer.db.create(`${board}/pub2`, "all", { n: 2 });
  writer.db.create(`${board}/secret1`, "all", { s: "hidden" });
  writer.db.item(`${board}/secret1`)!.set("n", 9);
  await writer.db.syncWith(
    board,
    writer.session.httpTransport(board),
    writer.session.hooks,
  );
  assert.equal(server.db.count(board), 3);
  // The writer sees its own commits even where it may not read: nothing to resend.
  const again = await writer.db.syncWith(
    board,
    writer.session.httpTransport(board),
    writer.session.hooks,
  );
  assert.equal(again.commitsSent, 0);
  const secretIds = server.db.history(`${board}/secret1`).map((h) => h.id);
  assert.ok(secretIds.length >= 1);

  // A reader pulls exactly the readable items, and no answer carries a secret id.
  const reader = await client(server);
  await reader.db.open(board);
  const http = reader.session.httpTransport(board);
  const answers: Uint8Array[] = [];
  const stats = await reader.db.syncWith(board, {
    request: async (bytes) => {
      const answer = await http.request(bytes);
      answers.push(answer);
      return answer;
    },
  }, reader.session.hooks);
  assert.deepEqual(stats.rejected, []);
  assert.deepEqual(reader.db.keys(board).sort(), ["pub1", "pub2"]);
  const { commitIdBytes } = await import("../lib/commit/commit.ts");
  for (const id of secretIds) {
    const raw = commitIdBytes(id);
    for (const a of answers) assert.ok(!contains(a, raw.subarray(0, 12)));
  }
  // Inspection routes filter per item too.
  const signedGet = async (path: string) =>
    await server.app.request(path, {
      headers: await reader.session.sign("GET", path, new Uint8Array(0)),
    });
  const listing = await signedGet(`/v1/repos${board}`);
  assert.deepEqual((await listing.json()).keys, ["pub1", "pub2"]);
  assert.equal((await signedGet(`/v1/items${board}/secret1`)).status, 403);

  // Pushes over WebSocket are filtered the same way.
  const net = await listen(server);
  const live = await clientDb();
  const sc = await SyncClient.connect(live, net.url, { repos: [board] });
  const wc = await SyncClient.connect(writer.db, net.url, { repos: [board] });
  try {
    await sc.sync();
    await wc.sync();
    assert.deepEqual(live.keys(board).sort(), ["pub1", "pub2"]);
    const pushes: number[] = [];
    const off = live.repository(board).onChange(() => pushes.push(1));
    writer.db.create(`${board}/secret2`, "all", { n: 5 });
    writer.db.create(`${board}/pub3`, "all", { n: 3 });
    await wc.sync();
    const deadline = Date.now() + 5000;
    while (!live.item(`${board}/pub3`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    off();
    assert.ok(live.item(`${board}/pub3`), "pub3 pushed");
    await sc.sync();
    assert.deepEqual(live.keys(board).sort(), ["pub1", "pub2", "pub3"]);
    assert.equal(server.db.count(board), 5);
    assert.ok(pushes.length >= 1);
  } finally {
    sc.close();
    wc.close();
    await net.close();
  }
  for (const d of [writer.db, reader.db, live, server.db]) await d.close();
});

/** True when `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}
