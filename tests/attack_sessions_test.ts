/**
 * Attacks on session issuance and revocation (issue 11, findings 1, 3 and 6): taking over
 * another replica's key by re-issuing it, racing a re-issue against a revocation, and
 * issuing sessions without limit. Each test performs the attack against the server.
 */

import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { decodeSessionRecord } from "../testing.ts";
import { decodeBase64Url } from "../lib/encoding/base64url.ts";
import { decodeSyncMessage, encodeSyncMessage } from "../lib/sync/protocol.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";
import { freshKey, issueRaw, sessionRequest, statusOf } from "./_attack.ts";
import { tempDir } from "./_helpers.ts";
import { IdSet } from "../lib/idset/id_set.ts";

const BASE = "http://capra.test";
const SHARED = "/all/shared";

/** Bearer tokens of the test users are their names. */
const byName = (req: Request) =>
  req.headers.get("authorization")?.replace(/^Bearer /, "") ?? null;

async function replica(server: TestServer, token?: string) {
  const db = await clientDb();
  const requests: { url: string; init: RequestInit }[] = [];
  const session = await ServerSession.create(db, BASE, {
    fetch: (url, init) => {
      requests.push({ url, init });
      return server.fetch(url, init);
    },
    ...(token ? { token } : {}),
  });
  return { db, session, requests };
}

Deno.test("finding 1: a key's session cannot be taken over by someone without its private key", async () => {
  const server = await secureServer({ authenticate: byName });
  const a = await replica(server, "a");
  // A writes its own repository and a shared one.
  await a.db.open("/user/a");
  await a.db.open(SHARED);
  a.db.create("/user/a/note", "all", { n: 1 });
  a.db.create(`${SHARED}/x`, "all", { n: 1 });
  for (const r of ["/user/a", SHARED]) {
    await a.db.syncWith(r, a.session.httpTransport(r), a.session.hooks);
  }
  // The attacker pulls the shared repository and reads A's public key from `sessions`.
  const m = await replica(server, "mallory");
  await m.db.open(SHARED);
  const pull = await m.session.httpTransport(SHARED).request(
    encodeSyncMessage({
      repo: SHARED as never,
      rc: (await import("../lib/sync/reconcile.ts")).encodeMessage(
        (await import("../lib/sync/reconcile.ts")).initiate(
          new IdSet(),
        ),
      ),
    }),
  );
  const sessions = decodeSyncMessage(pull).sessions ?? [];
  const aKey =
    sessions.map(decodeSessionRecord).find((s) => s.id === a.db.sessionId)!
      .publicKey;
  assert.ok(aKey, "A's record travels with its commits");
  const attacker = await freshKey();

  // Anonymous issuance for A's key without a proof: refused, and nothing replaced.
  const anon = await issueRaw(
    server,
    await sessionRequest(attacker, { publicKey: aKey, unsigned: true }),
  );
  assert.deepEqual(await statusOf(anon), { status: 401, code: "unsigned" });
  // Signed by the attacker's key, naming A's: refused.
  const forged = await issueRaw(
    server,
    await sessionRequest(attacker, {
      publicKey: aKey,
      authorization: "Bearer mallory",
    }),
  );
  assert.deepEqual(await statusOf(forged), {
    status: 401,
    code: "bad_signature",
  });
  // A's own signed request, replayed with the attacker's credentials: refused.
  const captured = a.requests.find((r) => r.url.endsWith("/v1/sessions"))!;
  const replayed = await issueRaw(server, {
    ...captured.init,
    headers: {
      ...captured.init.headers as Record<string, string>,
      authorization: "Bearer mallory",
    },
  });
  assert.equal((await statusOf(replayed)).status, 401);
  // ...and replayed as it was: the nonce was used.
  const again = await issueRaw(server, captured.init);
  assert.equal((await statusOf(again)).status, 401);

  // A's record is untouched: A still writes /user/a, bound to user a.
  assert.equal(server.trust.known(a.db.sessionId as never)?.userId, "a");
  a.db.item("/user/a/note")!.set("n", 2);
  const stats = await a.db.syncWith(
    "/user/a",
    a.session.httpTransport("/user/a"),
    a.session.hooks,
  );
  assert.deepEqual(stats.rejected, []);
  assert.deepEqual(stats.errors, []);
  assert.equal(server.db.item("/user/a/note")?.get("n"), 2);

  // The attacker's user may not revoke A's session.
  const path = `/v1/sessions/${a.db.sessionId}`;
  const del = await server.app.request(path, {
    method: "DELETE",
    headers: await m.session.sign("DELETE", path, new Uint8Array(0)),
  });
  assert.equal(del.status, 403);
  const bearerDel = await server.app.request(path, {
    method: "DELETE",
    headers: { authorization: "Bearer mallory" },
  });
  assert.equal(bearerDel.status, 403);
  await a.session.renew();
  assert.equal(a.session.record.userId, "a");
  for (const d of [a.db, m.db, server.db]) await d.close();
});

Deno.test("finding 1: a key's user never changes; records are never weakened; its user or an admin may revoke", async () => {
  const server = await secureServer({ authenticate: byName, admins: ["root"] });
  const key = await freshKey();
  const first = await issueRaw(
    server,
    await sessionRequest(key, { authorization: "Bearer a" }),
  );
  assert.equal(first.status, 201);
  const record = (await first.json()).record as string;
  // The holder itself cannot move its key to another user, nor drop the user.
  const other = await issueRaw(
    server,
    await sessionRequest(key, { authorization: "Bearer b" }),
  );
  assert.deepEqual(await statusOf(other), {
    status: 409,
    code: "key_bound_to_other_user",
  });
  const dropped = await issueRaw(server, await sessionRequest(key));
  assert.deepEqual(await statusOf(dropped), {
    status: 401,
    code: "credentials_required",
  });
  const stored = decodeSessionRecord(decodeBase64Url(record));
  assert.equal(server.trust.known(stored.id)?.userId, "a");
  // An anonymous key may be bound to a user once (sign-in), then it stays.
  const anonKey = await freshKey();
  assert.equal(
    (await issueRaw(server, await sessionRequest(anonKey))).status,
    201,
  );
  const bound = await issueRaw(
    server,
    await sessionRequest(anonKey, { authorization: "Bearer c" }),
  );
  assert.equal((await bound.json()).userId, "c");
  // User a revokes its own key's session with its bearer token; an admin too.
  const del = await server.app.request(`/v1/sessions/${stored.id}`, {
    method: "DELETE",
    headers: { authorization: "Bearer a" },
  });
  assert.equal(del.status, 200);
  const adminDel = await server.app.request(
    `/v1/sessions/${
      decodeSessionRecord(decodeBase64Url(
        (await (await issueRaw(
          server,
          await sessionRequest(await freshKey()),
        )).json()).record,
      )).id
    }`,
    { method: "DELETE", headers: { authorization: "Bearer root" } },
  );
  assert.equal(adminDel.status, 200);
  await server.db.close();
});

Deno.test("finding 3: a re-issue racing a revocation never undoes it, never answers 500, and stays revoked after a restart", async () => {
  await using dir = await tempDir();
  const TRIALS = 50;
  let server = await secureServer({ dir: dir.path });
  const root = server.root;
  const revokedIds: string[] = [];
  const statuses = new Map<number, number>();
  for (let t = 0; t < TRIALS; t++) {
    const { db, session } = await replica(server);
    const path = `/v1/sessions/${session.record.id}`;
    const results = await Promise.all([
      issueRaw(server, await sessionRequest(keyOf(db))),
      server.app.request(path, {
        method: "DELETE",
        headers: await session.sign("DELETE", path, new Uint8Array(0)),
      }),
      issueRaw(server, await sessionRequest(keyOf(db))),
      issueRaw(server, await sessionRequest(keyOf(db))),
    ]);
    for (const r of results) {
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const text = await r.text();
      assert.ok(
        [200, 201, 401, 403].includes(r.status),
        `trial ${t}: ${r.status} ${text}`,
      );
    }
    // After the race the key is revoked: no sync, no new session.
    await assert.rejects(session.renew(), /revoked/);
    const sync = await server.app.request(`/v1/sync${SHARED}`, {
      method: "POST",
      headers: await session.sign(
        "POST",
        `/v1/sync${SHARED}`,
        encodeSyncMessage({ repo: SHARED as never }),
      ),
      body: encodeSyncMessage({ repo: SHARED as never }) as Uint8Array<
        ArrayBuffer
      >,
    });
    assert.deepEqual(await statusOf(sync), {
      status: 401,
      code: "session_revoked",
    });
    revokedIds.push(session.record.id);
    await db.close();
  }
  console.log("race statuses", Object.fromEntries(statuses));
  await server.db.close();
  // Restart on the same directory: every revocation holds.
  server = await secureServer({ dir: dir.path, root });
  await server.sessions!.ready();
  for (const id of revokedIds) {
    assert.ok(
      server.trust.isRevoked(id as never),
      `${id} revoked after restart`,
    );
  }
  await server.db.close();
});

/** The signing key of a client database (its session key). */
function keyOf(db: Awaited<ReturnType<typeof clientDb>>) {
  return {
    publicKey: db.session.publicKey,
    sessionId: db.sessionId as never,
    sign: (m: Uint8Array) => db.sign(m),
  };
}

Deno.test("finding 6: session issuance is rate limited per address and per user", async () => {
  const server = await secureServer({ authenticate: byName, limits: {} });
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 80; i++) {
    const res = await issueRaw(
      server,
      await sessionRequest(await freshKey()),
      "203.0.113.7",
    );
    statuses.push(res.status);
    if (res.status === 429) retryAfter ??= res.headers.get("retry-after");
    await res.body?.cancel();
  }
  assert.equal(statuses.filter((s) => s === 201).length, 60);
  assert.equal(statuses.filter((s) => s === 429).length, 20);
  assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
  // Another address is not affected.
  const other = await issueRaw(
    server,
    await sessionRequest(await freshKey()),
    "198.51.100.1",
  );
  assert.equal(other.status, 201);
  // Per user: 30 per minute, whatever the addresses.
  const perUser: number[] = [];
  for (let i = 0; i < 35; i++) {
    const res = await issueRaw(
      server,
      await sessionRequest(await freshKey(), { authorization: "Bearer u" }),
      `192.0.2.${i}`,
    );
    perUser.push(res.status);
    await res.body?.cancel();
  }
  assert.equal(perUser.filter((s) => s === 201).length, 30);
  assert.equal(perUser.filter((s) => s === 429).length, 5);
  await server.db.close();
});

Deno.test("finding 6: anonymous sessions can be switched off", async () => {
  const server = await secureServer({
    authenticate: byName,
    anonymousSessions: false,
  });
  const anon = await issueRaw(server, await sessionRequest(await freshKey()));
  assert.deepEqual(await statusOf(anon), {
    status: 401,
    code: "credentials_required",
  });
  const user = await issueRaw(
    server,
    await sessionRequest(await freshKey(), { authorization: "Bearer a" }),
  );
  assert.equal(user.status, 201);
  await user.body?.cancel();
  await server.db.close();
});

Deno.test("finding 6: expired session records are collected; revoked ones are kept", async () => {
  let now = Date.now();
  const server = await secureServer({
    authenticate: byName,
    now: () => now,
    sessionTtlMs: 60_000,
    limits: {
      sessionsPerAddressPerMinute: 10_000,
      sessionCollectAfterMs: 60_000,
      sessionSweepIntervalMs: 1,
    },
  });
  const keys = [];
  for (let i = 0; i < 20; i++) {
    const key = await freshKey();
    keys.push(key);
    const res = await issueRaw(server, await sessionRequest(key, { now }));
    assert.equal(res.status, 201);
    await res.body?.cancel();
  }
  const userKey = await freshKey();
  const bound = await issueRaw(
    server,
    await sessionRequest(userKey, { now, authorization: "Bearer a" }),
  );
  assert.equal(bound.status, 201);
  await bound.body?.cancel();
  // Revoke one with its own key.
  const db = await clientDb();
  const s = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
    now: () => now,
  });
  const path = `/v1/sessions/${s.record.id}`;
  const del = await server.app.request(path, {
    method: "DELETE",
    headers: await s.sign("DELETE", path, new Uint8Array(0)),
  });
  assert.equal(del.status, 200);
  assert.equal(server.db.count("/sys/sessions"), 22);
  now += 60_000 + 60_000 + 1; // past expiry and the collection delay
  // The next issuance collects (the sweep interval has passed).
  const next = await issueRaw(
    server,
    await sessionRequest(await freshKey(), { now }),
  );
  assert.equal(next.status, 201);
  await next.body?.cancel();
  assert.equal(
    server.db.count("/sys/sessions"),
    2,
    "the new session and the revoked one remain",
  );
  assert.ok(server.trust.isRevoked(s.record.id));
  // A collected key may come back (it holds its private key): a fresh record.
  const back = await issueRaw(server, await sessionRequest(keys[0], { now }));
  assert.equal(back.status, 201);
  await back.body?.cancel();
  // A collected key's user still never changes.
  const moved = await issueRaw(
    server,
    await sessionRequest(userKey, { now, authorization: "Bearer b" }),
  );
  assert.deepEqual(await statusOf(moved), {
    status: 409,
    code: "key_bound_to_other_user",
  });
  const renewed = await issueRaw(
    server,
    await sessionRequest(userKey, { now, authorization: "Bearer a" }),
  );
  assert.equal((await renewed.json()).userId, "a");
  for (const d of [db, server.db]) await d.close();
});
