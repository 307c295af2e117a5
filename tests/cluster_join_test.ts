/**
 * Joining and sessions across a cluster (3 nats-server nodes, `capra serve --nats`
 * processes on 127.0.0.1):
 * - a fresh fourth member is not ready until it holds everything, then holds it all;
 * - a member away for longer than the stream keeps messages (max_age) reconciles with
 *   another member on its return;
 * - a session issued on one member works on the others, and once revoked there it is
 *   refused by the others too.
 */
import assert from "node:assert/strict";
import { decodeSyncMessage, encodeSyncMessage } from "../lib/sync/protocol.ts";
import { encodeMessage, initiate } from "../lib/sync/reconcile.ts";
import { IdSet } from "../lib/idset/id_set.ts";
import { type CommitId, commitIdBytes } from "../lib/commit/commit.ts";
import type { RepoPath } from "../lib/path.ts";
import { connect } from "@nats-io/transport-node";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { encodeSessionRecord } from "../testing.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";
import { signedHeaders } from "../server/cluster/peer_protocol.ts";
import { openDatabase, ServerSession, type SyncClient } from "../mod.ts";
import { Rng } from "./_helpers.ts";
import { seedFor } from "./_seed.ts";
import { natsServerBinary, NO_NATS_SERVER } from "./_nats_cluster.ts";
import {
  type CapraMember,
  eventually,
  startCluster,
} from "./_capra_cluster.ts";
import {
  ClusterClient,
  idsOf,
  pull,
  waitConverged,
  WriteLoad,
} from "./_cluster_clients.ts";

const HAS_NATS = natsServerBinary() !== null;
if (!HAS_NATS) console.warn(NO_NATS_SERVER);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Commits of the bulk repository a new member must take over. */
const BULK = 3000;
const options = {
  ignore: !HAS_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
};

/**
 * One signed reconciliation round against `member`: true when its commits of `repo` are
 * exactly `ids` at that moment (equal fingerprints: nothing to ask, nothing to send).
 */
async function sameSet(
  session: ServerSession,
  member: CapraMember,
  repo: string,
  ids: ReadonlySet<string>,
): Promise<boolean> {
  const set = new IdSet();
  for (const id of ids) set.add(commitIdBytes(id as CommitId));
  const body = encodeSyncMessage({
    repo: repo as RepoPath,
    rc: encodeMessage(initiate(set)),
  });
  const path = `/v1/sync${repo}`;
  // The probe's session was issued by `fresh`; every member trusts it (one root key).
  const r = await fetch(`${member.url}${path}`, {
    method: "POST",
    headers: await session.sign("POST", path, body),
    body: body as Uint8Array<ArrayBuffer>,
  });
  assert.equal(r.status, 200);
  const answer = decodeSyncMessage(new Uint8Array(await r.arrayBuffer()));
  return !answer.rc && !answer.commits?.length;
}

/** Writes on one client per member for `ms`, then syncs; returns what they created. */
async function writeFor(
  clients: ClusterClient[],
  repo: string,
  ms: number,
  rng: Rng,
): Promise<Set<string>> {
  const load = new WriteLoad(repo, rng);
  clients.forEach((c, i) => load.start(c, `w${i}`));
  await sleep(ms);
  await load.stop();
  for (const c of clients) await c.client!.sync();
  const out = new Set<string>();
  for (const c of clients) {
    for (const id of c.db.repository(repo).commitIds()) {
      if (c.created.has(id)) out.add(id);
    }
  }
  return out;
}

Deno.test({
  ...options,
  name:
    "cluster: a fresh fourth member is not ready until it holds everything, then holds it",
}, async () => {
  const rng = new Rng(seedFor("cluster join"));
  const cluster = await startCluster();
  const repos = ["/all/join1", "/all/join2", "/all/bulk"];
  const clients: ClusterClient[] = [];
  try {
    for (const m of cluster.members) {
      clients.push(await ClusterClient.open(m.url, repos));
    }
    // Enough history that catching up takes a while (ready too early would show).
    const bulk = clients[0];
    for (let i = 0; i < BULK; i++) {
      bulk.db.create(`${repos[2]}/b${i}`, "all", { n: i, s: `bulk ${i}` });
    }
    await bulk.client!.sync();
    const written = [
      await writeFor(clients, repos[0], 800, rng),
      await writeFor(clients, repos[1], 800, rng),
      new Set(bulk.db.repository(repos[2]).commitIds()),
    ];
    for (let i = 0; i < repos.length; i++) {
      await waitConverged(
        cluster.members.map((m) => m.url),
        repos[i],
        written[i],
        30_000,
      );
    }
    const fresh = cluster.addMember("d");
    await fresh.start();
    const probe = await ServerSession.create(
      await openDatabase({ memory: true }),
      fresh.url,
    );
    // The probe itself is sound: a member holding everything is in sync with it...
    assert.ok(await sameSet(probe, cluster.members[0], repos[2], written[2]));
    // ...and one missing commit is noticed.
    assert.ok(
      !await sameSet(
        probe,
        cluster.members[0],
        repos[2],
        new Set([...written[2]].slice(1)),
      ),
    );
    const notReady: number[] = [];
    await eventually(
      async () => {
        const h = await fresh.health();
        if (h.status !== 200) notReady.push(h.status);
        return h.status === 200;
      },
      60_000,
      () => `member d never became ready:\n${fresh.lines.join("\n")}`,
      5,
    );
    // Ready means caught up: one reconciliation round right then finds the same set...
    assert.ok(
      await sameSet(probe, fresh, repos[2], written[2]),
      "the new member holds every bulk commit the moment it is ready",
    );
    // ...and a full pull finds every commit.
    const db = await pull(fresh.url, repos);
    try {
      for (let i = 0; i < repos.length; i++) {
        const have = new Set(idsOf(db, repos[i]));
        const missing = [...written[i]].filter((id) => !have.has(id));
        assert.equal(
          missing.length,
          0,
          `the new member holds ${repos[i]} when ready`,
        );
      }
    } finally {
      await db.close();
    }
    assert.ok(
      notReady.every((s) => s === 503),
      "not ready is 503 for load balancers",
    );
    assert.ok(
      fresh.lines.some((l) => l.includes("reconciled")),
      "the new member reconciled with another member",
    );
    console.log(
      `join: ${
        written.reduce((n, w) => n + w.size, 0)
      } commits; /healthz answered 503 ${notReady.length} times before ready`,
    );
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  }
});

Deno.test({
  ...options,
  name:
    "cluster: a member away for longer than the stream's max_age reconciles with another member on return",
}, async () => {
  const rng = new Rng(seedFor("cluster gap"));
  const cluster = await startCluster({
    extraArgs: ["--session-ttl", "2", "--retain", "3s"],
  });
  const repo = "/all/gap";
  const clients: ClusterClient[] = [];
  try {
    const [a, b, c] = cluster.members;
    for (const m of [a, b]) {
      clients.push(await ClusterClient.open(m.url, [repo]));
    }
    await c.kill("SIGTERM");
    const written = await writeFor(clients, repo, 600, rng);
    // The stream drops messages older than its 3 s max_age meanwhile.
    await sleep(5000);
    await c.start();
    await c.waitReady();
    assert.ok(
      c.lines.some((l) => l.includes("no longer holds")),
      `c saw the gap:\n${c.lines.join("\n")}`,
    );
    await waitConverged([a.url, b.url, c.url], repo, written, 30_000);
  } finally {
    for (const cl of clients) await cl.close().catch(() => {});
    await cluster.stop();
  }
});

/**
 * Member-to-member requests over NATS answer only the cluster root: unsigned, signed by
 * another key, or replayed requests get an error, a root-signed one an answer.
 */
async function memberRequestsNeedTheRoot(
  urls: string,
  rootKeyPath: string,
): Promise<void> {
  const nc = await connect({ servers: urls.split(",") });
  try {
    const subject = "capra.CAPRA.peer.a.list";
    const body = new TextEncoder().encode("{}");
    const errorOf = (m: { headers?: { get(k: string): string } }) =>
      m.headers?.get("capra-error") ?? "";
    const unsigned = await nc.request(subject, body, { timeout: 5000 });
    assert.match(errorOf(unsigned), /unsigned/);
    const { key: stranger } = await generateSigningKey();
    const strangerRecord = encodeSessionRecord({
      id: stranger.sessionId,
      publicKey: stranger.publicKey,
    });
    const forged = await nc.request(subject, body, {
      timeout: 5000,
      headers: await signedHeaders(stranger, strangerRecord, subject, body),
    });
    assert.match(errorOf(forged), /bad_session|Session refused/);
    const { key: root } = await loadOrCreateRootKey(rootKeyPath);
    const rootRecord = encodeSessionRecord({
      id: root.sessionId,
      publicKey: root.publicKey,
    });
    const headers = await signedHeaders(root, rootRecord, subject, body);
    const ok = await nc.request(subject, body, { timeout: 5000, headers });
    assert.equal(errorOf(ok), "");
    assert.ok(
      Array.isArray(JSON.parse(new TextDecoder().decode(ok.data)).repos),
    );
    const replayed = await nc.request(subject, body, {
      timeout: 5000,
      headers,
    });
    assert.match(errorOf(replayed), /replayed_request/);
  } finally {
    await nc.close();
  }
}

/** A signed sync request to `member` by the session of `client`; returns the status. */
async function signedRequest(
  client: SyncClient,
  member: CapraMember,
): Promise<{ status: number; code?: string }> {
  const path = "/v1/sync/all/rev";
  const body = encodeSyncMessage({ repo: "/all/rev" as never });
  const headers = await client.session.sign("POST", path, body);
  const r = await fetch(`${member.url}${path}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/octet-stream" },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const text = await r.text();
  let code: string | undefined;
  try {
    code = JSON.parse(text).code;
  } catch { /* binary answer */ }
  return { status: r.status, ...(code ? { code } : {}) };
}

Deno.test({
  ...options,
  name:
    "cluster: a session issued on one member works on the others; revoked there, it is refused by the others",
}, async () => {
  const cluster = await startCluster();
  const [a, b, c] = cluster.members;
  const user = await ClusterClient.open(a.url, ["/all/rev"]);
  try {
    const session = user.client!.session;
    for (const m of [b, c]) {
      assert.equal(
        (await signedRequest(user.client!, m)).status,
        200,
        `the session from a works on ${m.id}`,
      );
    }
    const path = `/v1/sessions/${session.record.id}`;
    const headers = await session.sign("DELETE", path, new Uint8Array(0));
    const revoked = await fetch(`${a.url}${path}`, {
      method: "DELETE",
      headers,
    });
    assert.equal(revoked.status, 200, await revoked.text());
    const t0 = Date.now();
    for (const m of [b, c]) {
      const ms = await eventually(
        async () => (await signedRequest(user.client!, m)).status === 401,
        10_000,
        () => `${m.id} still accepts the revoked session`,
        10,
      );
      const answer = await signedRequest(user.client!, m);
      assert.equal(answer.code, "session_revoked");
      console.log(
        `revocation on a refused on ${m.id} after ${ms} ms (${
          Date.now() - t0
        } ms since the revocation)`,
      );
    }
    // Re-issuing the revoked key's session elsewhere is refused too.
    await assert.rejects(
      ServerSession.create(user.db, b.url),
      (e: Error & { code?: string }) => e.code === "session_revoked",
    );
    await memberRequestsNeedTheRoot(cluster.nats.urls, cluster.rootKey);
  } finally {
    await user.close().catch(() => {});
    await cluster.stop();
  }
});
