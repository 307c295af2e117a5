/**
 * Attacks on the sync route (issue 11, findings 2 and 4): a read-only session growing a
 * repository with the `pruned` ids of refused commits, sessions sending without limit,
 * and unauthenticated or oversized bodies held in memory.
 */

import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { decodeSyncMessage, encodeSyncMessage } from "../lib/sync/protocol.ts";
import { commitIdBytes } from "../lib/commit/commit.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";
import { craftCommit, randomIds, signedRecord, statusOf } from "./_attack.ts";
import { tempDir } from "./_helpers.ts";
import { openRepositoryOf } from "../testing.ts";

const BASE = "http://capra.test";
const BOARD = "/board/main";
/** Issuance limits out of the way (these tests are about sync). */
const ISSUANCE = {
  sessionsPerAddressPerMinute: 100_000,
  sessionsPerUserPerMinute: 100_000,
};

async function replica(server: TestServer) {
  const db = await clientDb();
  const session = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
  });
  return { db, session };
}

async function signedPost(
  server: TestServer,
  session: ServerSession,
  repo: string,
  body: Uint8Array,
): Promise<Response> {
  const path = `/v1/sync${repo}`;
  return await server.app.request(path, {
    method: "POST",
    headers: await session.sign("POST", path, body),
    body: body as Uint8Array<ArrayBuffer>,
  });
}

/** A key that signs as the replica's session. */
function signerOf(db: Awaited<ReturnType<typeof clientDb>>) {
  return {
    publicKey: db.session.publicKey,
    sessionId: db.sessionId as never,
    sign: (m: Uint8Array) => db.sign(m),
  };
}

Deno.test("finding 2: refused commits cannot make the server store their pruned parents", async () => {
  await using dir = await tempDir();
  const server = await secureServer({
    dir: dir.path,
    // Everyone reads the board; only the root writes it.
    rules: [{ pattern: "/board/*", rule: (r) => r.op === "read" || r.isRoot }],
  });
  const { db, session } = await replica(server);
  const signer = signerOf(db);
  const REQUESTS = 5;
  for (let q = 0; q < REQUESTS; q++) {
    // 128 refused commits naming 64 collected parents each: 8,192 pruned ids.
    const commits = [], pruned = [];
    for (let i = 0; i < 128; i++) {
      const parents = randomIds(64);
      pruned.push(...parents.map(commitIdBytes));
      commits.push(
        await signedRecord(
          signer,
          craftCommit(
            signer,
            `${BOARD}/k${q}_${i}`,
            parents,
            Date.now() * 1024,
          ),
        ),
      );
    }
    const res = await signedPost(
      server,
      session,
      BOARD,
      encodeSyncMessage({
        repo: BOARD as never,
        commits,
        pruned,
        sessions: [session.encoded],
      }),
    );
    assert.equal(res.status, 200);
    const answer = decodeSyncMessage(new Uint8Array(await res.arrayBuffer()));
    assert.equal(answer.error?.code, "rejected_commits");
  }
  const repo = await server.db.open(BOARD);
  assert.equal(
    openRepositoryOf(repo).gc.pruned.size,
    0,
    "no pruned id of a refused commit kept",
  );
  assert.equal(repo.count(), 0);
  await server.db.flush();
  const files = [...Deno.readDirSync(dir.path)].filter((e) =>
    e.name.includes("board")
  );
  for (const f of files) {
    const size = Deno.statSync(`${dir.path}/${f.name}`).size;
    assert.ok(size < 4096, `${f.name} grew to ${size} bytes`);
  }
  for (const d of [db, server.db]) await d.close();
});

Deno.test("finding 2: per-session quotas answer 429 with Retry-After before anything is stored", async () => {
  const server = await secureServer({
    limits: {
      ...ISSUANCE,
      commitsPerSessionPerMinute: 100,
      bytesPerSessionPerMinute: 256 * 1024,
    },
  });
  const { db, session } = await replica(server);
  const REPO = "/all/quota";
  const repo = await db.open(REPO);
  for (let i = 0; i < 150; i++) db.create(`${REPO}/k${i}`, "all", { n: i });
  await db.flush();
  const records = repo.commitIds().map((id) => repo.commitRecord(id)!);
  const post = (from: number, to: number) =>
    signedPost(
      server,
      session,
      REPO,
      encodeSyncMessage({
        repo: REPO as never,
        commits: records.slice(from, to),
        sessions: [session.encoded],
      }),
    );
  // Within the quota: accepted.
  const first = await post(0, 90);
  assert.equal(first.status, 200);
  await first.body?.cancel();
  assert.equal(server.db.count(REPO), 90);
  // Over it: refused whole with Retry-After, nothing of the message stored.
  for (const [from, to] of [[90, 150], [90, 120]]) {
    const over = await post(from, to);
    assert.deepEqual(await statusOf(over), {
      status: 429,
      code: "quota_exceeded",
    });
    assert.ok(Number(over.headers.get("retry-after")) >= 1);
    assert.equal(server.db.count(REPO), 90);
  }
  // Bytes: a body over the byte quota is refused from its declared length.
  const big = new Uint8Array(300 * 1024);
  const bytes = await signedPost(server, session, REPO, big);
  assert.deepEqual(await statusOf(bytes), {
    status: 429,
    code: "quota_exceeded",
  });
  // Another session has its own quota.
  const other = await replica(server);
  const ok = await signedPost(
    server,
    other.session,
    REPO,
    encodeSyncMessage({
      repo: REPO as never,
      commits: records.slice(90, 120),
      sessions: [session.encoded],
    }),
  );
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  assert.equal(server.db.count(REPO), 120);
  for (const d of [db, other.db, server.db]) await d.close();
});

/** A request body that counts how many bytes the server pulled from it. */
function countingBody(total: number, chunk = 64 * 1024) {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= total) return controller.close();
      const n = Math.min(chunk, total - pulled);
      pulled += n;
      controller.enqueue(new Uint8Array(n));
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled };
}

Deno.test("finding 4: an unsigned 8 MB POST is refused from its headers, before its body is read", async () => {
  const server = await secureServer();
  const results = await Promise.all(
    Array.from({ length: 24 }, async () => {
      const body = countingBody(8 * 1024 * 1024);
      const res = await server.app.request("/v1/sync/all/mem", {
        method: "POST",
        body: body.stream,
        headers: { "content-length": String(8 * 1024 * 1024) },
        duplex: "half",
      } as RequestInit);
      return { ...(await statusOf(res)), pulled: body.pulled() };
    }),
  );
  for (const r of results) {
    assert.equal(r.status, 401);
    assert.equal(r.code, "unsigned");
    assert.ok(r.pulled <= 64 * 1024, `server read ${r.pulled} bytes`);
  }
  // A signed request whose body differs from the signed hash: read, then refused.
  const { db, session } = await replica(server);
  const path = "/v1/sync/all/mem";
  const signed = encodeSyncMessage({ repo: "/all/mem" as never });
  const headers = await session.sign("POST", path, signed);
  const swapped = await server.app.request(path, {
    method: "POST",
    headers,
    body: new Uint8Array(signed.length) as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await statusOf(swapped), {
    status: 401,
    code: "bad_signature",
  });
  for (const d of [db, server.db]) await d.close();
});

Deno.test("finding 4: request bodies in flight share one byte budget (503 beyond it)", async () => {
  const server = await secureServer({
    limits: { ...ISSUANCE, inFlightBytes: 1024 * 1024 },
  });
  const { db, session } = await replica(server);
  const path = "/v1/sync/all/mem";
  // A slow 900 KB body holds its share; a second one does not fit beside it.
  const body = new Uint8Array(900 * 1024);
  const release = Promise.withResolvers<void>();
  let sent = 0;
  const slow = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 0) {
        sent = 1;
        controller.enqueue(body.subarray(0, 1024));
        return;
      }
      await release.promise;
      controller.enqueue(body.subarray(1024));
      controller.close();
    },
  }, { highWaterMark: 0 });
  const first = server.app.request(path, {
    method: "POST",
    headers: {
      ...await session.sign("POST", path, body),
      "content-length": String(body.length),
    },
    body: slow,
    duplex: "half",
  } as RequestInit);
  await new Promise((r) => setTimeout(r, 50));
  const second = await server.app.request(path, {
    method: "POST",
    headers: await session.sign("POST", path, body),
    body: body as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await statusOf(second), {
    status: 503,
    code: "server_busy",
  });
  release.resolve();
  assert.equal((await statusOf(await first)).status, 400); // zeros: not a message
  // The budget was given back: the same body now passes the budget.
  const third = await server.app.request(path, {
    method: "POST",
    headers: await session.sign("POST", path, body),
    body: body as Uint8Array<ArrayBuffer>,
  });
  assert.equal((await statusOf(third)).status, 400);
  for (const d of [db, server.db]) await d.close();
});
