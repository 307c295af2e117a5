/**
 * The parts of the cluster bridge that need no NATS server: flags, subjects, the
 * checkpoint and dirty-set files, the publisher's retries and bounds (against a fake
 * stream), the catch-up plan, message fitting, the stream applier's verification (against
 * real server databases), the revocation watcher, `/healthz` and `/metrics` of a member,
 * and `capra serve --nats` while NATS is unreachable.
 */
import assert from "node:assert/strict";
import type { StreamInfo } from "@nats-io/jetstream";
import { openDatabase, ServerSession } from "../mod.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import type { RepoPath } from "../lib/path.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { decodeSyncMessage, encodeSyncMessage } from "../lib/sync/protocol.ts";
import { AccessRules } from "../lib/sync/rules.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { answerSync } from "../lib/sync/sync_round.ts";
import { createServer } from "../server/app.ts";
import { ServerMetrics } from "../server/metrics.ts";
import { SESSIONS_REPO, SessionService } from "../server/sessions.ts";
import { SyncService } from "../server/sync_service.ts";
import {
  checkServerId,
  checkStreamName,
  parseNatsUrls,
  parseReplicas,
} from "../server/cluster/options.ts";
import { ClusterSubjects } from "../server/cluster/subjects.ts";
import {
  CHECKPOINT_FILE,
  parseCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from "../server/cluster/checkpoint.ts";
import {
  DIRTY_FILE,
  DIRTY_SETTLE_MS,
  DirtySet,
} from "../server/cluster/dirty_set.ts";
import { ClusterMetrics } from "../server/cluster/cluster_metrics.ts";
import {
  MAX_PUBLISH_QUEUE,
  PUBLISH_RETRY_WINDOW_MS,
  Publisher,
  type PublishTarget,
  SUSPECT_WINDOW_MS,
} from "../server/cluster/publisher.ts";
import { reconcilePlan, replayPlan } from "../server/cluster/catch_up.ts";
import { fitAnswer, splitRequest } from "../server/cluster/peer_protocol.ts";
import {
  FROM_STREAM,
  StreamApplier,
} from "../server/cluster/stream_applier.ts";
import { outboundMessage } from "../server/cluster/outbound.ts";
import { streamMismatch } from "../server/cluster/stream.ts";
import {
  StreamFollower,
  WATCHDOG_SILENCE_MS,
} from "../server/cluster/stream_follower.ts";
import { EVERYTHING, tempDir } from "./_helpers.ts";
import { freePort } from "./_nats_cluster.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("cluster flags: bad URLs, stream names, replica counts and ids are refused by name", () => {
  assert.deepEqual(parseNatsUrls("nats://a:4222, nats://b:4222"), [
    "nats://a:4222",
    "nats://b:4222",
  ]);
  assert.throws(() => parseNatsUrls(""), /Invalid --nats ""/);
  assert.throws(() => parseNatsUrls("http://a:80"), /Invalid --nats URL "http/);
  assert.throws(() => checkStreamName("A.B"), /Invalid --nats-stream "A.B"/);
  assert.equal(checkStreamName("CAPRA_2"), "CAPRA_2");
  assert.throws(() => parseReplicas("0"), RangeError);
  assert.throws(() => parseReplicas("6"), /expected 1-5/);
  assert.equal(parseReplicas("3"), 3);
  assert.throws(() => checkServerId("a b"), /Invalid --server-id "a b"/);
});

Deno.test("cluster subjects: one per repository, parsed back; others refused", () => {
  const s = new ClusterSubjects("CAPRA");
  assert.equal(s.commits("/todo/home" as RepoPath), "capra.CAPRA.c.todo.home");
  assert.equal(s.repoOf("capra.CAPRA.c.todo.home"), "/todo/home");
  assert.equal(s.allCommits, "capra.CAPRA.c.>");
  assert.throws(() => s.repoOf("capra.OTHER.c.todo.home"), SyntaxError);
  assert.throws(() => s.repoOf("capra.CAPRA.c.todo"), SyntaxError);
  assert.throws(() => s.repoOf("capra.CAPRA.c.Todo.home"), TypeError);
});

Deno.test("checkpoint file: written atomically, read back; damage is reported, never trusted", async () => {
  await using dir = await tempDir();
  assert.deepEqual(await readCheckpoint(dir.path), { state: null });
  const state = {
    serverId: "a",
    stream: "CAPRA",
    streamCreated: "2026-01-01T00:00:00Z",
    applied: 42,
  };
  await writeCheckpoint(dir.path, state);
  assert.deepEqual((await readCheckpoint(dir.path)).state, state);
  await Deno.writeTextFile(`${dir.path}/${CHECKPOINT_FILE}`, '{"format":1,');
  const damaged = await readCheckpoint(dir.path);
  assert.equal(damaged.state, null);
  assert.match(damaged.problem!, /not JSON/);
  assert.throws(
    () => parseCheckpoint('{"format":1,"serverId":"a","applied":-1}'),
    /invalid applied -1/,
  );
  assert.throws(
    () => parseCheckpoint('{"format":2,"serverId":"a","applied":1}'),
    /format 2/,
  );
});

Deno.test("dirty set: a queued repository is on disk before queued() returns; acknowledged ones leave, failed ones stay", async () => {
  await using dir = await tempDir();
  const { set } = await DirtySet.load(dir.path);
  const a = "/all/a" as RepoPath, b = "/all/b" as RepoPath;
  set.queued(a);
  set.queued(b);
  const onDisk = () =>
    JSON.parse(Deno.readTextFileSync(`${dir.path}/${DIRTY_FILE}`)).repos;
  assert.deepEqual(onDisk().sort(), [a, b]);
  set.published(a);
  set.giveUp(b);
  await sleep(DIRTY_SETTLE_MS + 200);
  assert.deepEqual(onDisk(), [b], "a left once acknowledged, b stays");
  assert.deepEqual(set.failed(), [b]);
  await set.close();
  // After a restart whatever the file names needs reconciliation.
  const reloaded = (await DirtySet.load(dir.path)).set;
  assert.deepEqual(reloaded.failed(), [b]);
  reloaded.resolved(b);
  reloaded.settle();
  assert.deepEqual(onDisk(), []);
  await reloaded.close();
  await Deno.writeTextFile(`${dir.path}/${DIRTY_FILE}`, "garbage");
  const damaged = await DirtySet.load(dir.path);
  assert.match(damaged.problem!, /dirty/);
  assert.equal(damaged.set.all, true, "a damaged file means: reconcile all");
  await damaged.set.close();
});

/** A fake stream: fails while `down`, records what it acknowledged. */
class FakeStream implements PublishTarget {
  down = false;
  connected = true;
  inFlight = 0;
  maxInFlight = 0;
  readonly acked: string[] = [];
  attempts = 0;
  isConnected(): boolean {
    return this.connected;
  }
  async publish(_s: string, _p: Uint8Array, msgId: string): Promise<void> {
    this.attempts++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await sleep(1);
    this.inFlight--;
    if (this.down) throw new Error("no responders");
    this.acked.push(msgId);
  }
}

Deno.test("publisher: retries a failing commit with its id until the stream is back; bounded in flight", async () => {
  await using dir = await tempDir();
  const { set } = await DirtySet.load(dir.path);
  const stream = new FakeStream();
  const metrics = new ClusterMetrics();
  const lines: string[] = [];
  const p = new Publisher(stream, set, metrics, (l) => lines.push(l));
  stream.down = true;
  const repo = "/all/p" as RepoPath;
  for (let i = 0; i < 200; i++) {
    p.enqueue(repo, `c${i}` as CommitId, "s", new Uint8Array(10));
  }
  await sleep(300);
  assert.ok(stream.attempts > 200, "failed publishes are retried");
  assert.equal(stream.acked.length, 0);
  stream.down = false;
  await p.drain(10_000);
  assert.equal(
    new Set(stream.acked).size,
    200,
    "every commit, once acknowledged",
  );
  assert.ok(stream.maxInFlight <= 64, `in flight ${stream.maxInFlight}`);
  assert.equal(metrics.published, 200);
  assert.ok(lines.some((l) => l.includes("fails")));
  assert.ok(lines.some((l) => l.includes("works again")));
  p.close();
  await set.close();
});

Deno.test("publisher: past the retry window or a full queue, commits are given up and their repository marked failed", async () => {
  await using dir = await tempDir();
  const { set } = await DirtySet.load(dir.path);
  const stream = new FakeStream();
  stream.connected = false; // NATS unreachable: nothing is attempted
  const metrics = new ClusterMetrics();
  let now = 0;
  const p = new Publisher(stream, set, metrics, () => {}, () => now);
  const a = "/all/a" as RepoPath, b = "/all/b" as RepoPath;
  for (let i = 0; i < MAX_PUBLISH_QUEUE; i++) {
    p.enqueue(a, `a${i}` as CommitId, "s", new Uint8Array(1));
  }
  p.enqueue(b, "b0" as CommitId, "s", new Uint8Array(1));
  assert.equal(p.size, MAX_PUBLISH_QUEUE, "the queue is bounded");
  assert.deepEqual(set.failed(), [b], "the overflowing commit's repository");
  assert.equal(stream.attempts, 0);
  now = PUBLISH_RETRY_WINDOW_MS + 1;
  await sleep(1200); // the sweep runs every second
  assert.equal(p.size, 0);
  assert.deepEqual(set.failed().sort(), [a, b]);
  assert.equal(metrics.publishGivenUp, MAX_PUBLISH_QUEUE + 1);
  p.close();
  await set.close();
});

function streamInfo(
  first: number,
  last: number,
  created = "2026-01-01T00:00:00Z",
): StreamInfo {
  return {
    created,
    config: { name: "CAPRA" },
    state: { first_seq: first, last_seq: last },
  } as unknown as StreamInfo;
}

Deno.test("catch-up plan: replay from the checkpoint when the stream covers it, else reconcile", () => {
  const cp = {
    serverId: "a",
    stream: "CAPRA",
    streamCreated: "2026-01-01T00:00:00Z",
    applied: 10,
  };
  const replay = replayPlan(cp, streamInfo(1, 50));
  assert.ok(!("gap" in replay));
  assert.equal(replay.startSeq, 11);
  assert.equal(replay.target, 50);
  assert.match(
    (replayPlan(cp, streamInfo(20, 50)) as { gap: string }).gap,
    /no longer holds seq 11-19/,
  );
  assert.match(
    (replayPlan(cp, streamInfo(1, 50, "2027-01-01T00:00:00Z")) as {
      gap: string;
    }).gap,
    /created/,
  );
  assert.ok("gap" in replayPlan(null, streamInfo(1, 50)));
  // Everything trimmed: first_seq is past the last sequence.
  assert.ok("gap" in replayPlan(cp, streamInfo(51, 50)));
  const peer = { id: "b", instance: "x", ready: true, applied: 45 };
  const p = reconcilePlan(streamInfo(20, 50), peer, "gap");
  assert.equal(p.startSeq, 46, "after what the peer applied");
  assert.equal(p.reconcile, true);
  const alone = reconcilePlan(streamInfo(20, 50), undefined, "gap");
  assert.equal(alone.startSeq, 20, "no peer: the whole stream");
  assert.equal(alone.reconcile, false);
});

Deno.test("stream settings: a member with another retention or replica count is told which differs", () => {
  const spec = {
    name: "CAPRA",
    subject: "capra.CAPRA.c.>",
    replicas: 3,
    maxAgeMs: 1000,
  };
  const same = {
    name: "CAPRA",
    subjects: ["capra.CAPRA.c.>"],
    num_replicas: 3,
    max_age: 1e9,
  };
  assert.equal(streamMismatch(same as never, spec), null);
  const msg = streamMismatch(
    { ...same, num_replicas: 1, max_age: 0 } as never,
    spec,
  )!;
  assert.match(msg, /1 replicas, this member asks for 3/);
  assert.match(msg, /max_age is no limit, this member's --retain is 1 s/);
});

Deno.test("member messages fit max_payload: answers are cut with more, requests split", () => {
  const repo = "/all/x" as RepoPath;
  const commits = Array.from(
    { length: 50 },
    (_, i) => new Uint8Array(1000).fill(i),
  );
  const big = encodeSyncMessage({ repo, commits, rc: new Uint8Array(10) });
  const cut = decodeSyncMessage(fitAnswer(big, 20_000));
  assert.ok(cut.more);
  assert.ok(cut.commits!.length > 10 && cut.commits!.length < 20);
  assert.deepEqual(cut.rc, new Uint8Array(10));
  assert.throws(
    () =>
      fitAnswer(
        encodeSyncMessage({ repo, commits: [new Uint8Array(5000)] }),
        2000,
      ),
    /larger than the NATS max_payload/,
  );
  const parts = splitRequest(big, 12_000).map(decodeSyncMessage);
  assert.ok(parts.length >= 5);
  assert.equal(parts.flatMap((p) => p.commits ?? []).length, 50);
  assert.ok(parts.slice(0, -1).every((p) => !p.rc), "only the last reconciles");
  assert.deepEqual(parts.at(-1)!.rc, new Uint8Array(10));
  for (const p of parts) assert.ok(encodeSyncMessage(p).length <= 12_000);
});

/** A server database with its sync service, signing with `root`. */
async function member(
  root: Awaited<ReturnType<typeof generateSigningKey>>["key"],
) {
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    memory: true,
    signer: root,
    trust,
    schemas: [EVERYTHING],
  });
  const sync = new SyncService(
    db,
    trust,
    new AccessRules(trust.root.id),
    new ServerMetrics(),
  );
  return { db, trust, sync };
}

Deno.test("stream applier: verifies like any peer (forged and unknown-session commits refused), announces, skips malformed", async () => {
  const { key: root } = await generateSigningKey();
  const a = await member(root), b = await member(root);
  const subjects = new ClusterSubjects("CAPRA");
  const repo = "/all/s" as RepoPath;
  const ra = await a.db.open(repo);
  a.db.create(`${repo}/k1`, "all", { s: "one" });
  a.db.create(`${repo}/k2`, "all", { s: "two" });
  await a.db.flush();
  const [id1, id2] = ra.commitIds();
  const good = outboundMessage(a.sync, ra, id1)!;
  // A forged copy of the second commit: one byte of its signature flipped.
  const forgedRecord = ra.commitRecord(id2)!.slice();
  forgedRecord[5] ^= 1;
  const forged = encodeSyncMessage({ repo, commits: [forgedRecord] });
  // A commit by a client session b was never told about (no record attached).
  const client = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  await client.open(repo);
  client.create(`${repo}/k3`, "all", { s: "client" });
  await client.flush();
  const cr = client.repository(repo);
  const unknown = encodeSyncMessage({
    repo,
    commits: [cr.commitRecord(cr.commitIds()[0])!],
  });
  const metrics = new ClusterMetrics();
  const announced: unknown[] = [];
  b.sync.onAccepted((_r, ids, origin) => announced.push([ids, origin]));
  const gaps: [number, number][] = [];
  const applier = new StreamApplier({
    db: b.db,
    sync: b.sync,
    subjects,
    metrics,
    log: () => {},
    onGap: (from, to) => gaps.push([from, to]),
  });
  const subject = subjects.commits(repo);
  const msg = (seq: number, data: Uint8Array, s = subject) => ({
    seq,
    subject: s,
    data,
    pending: 0,
  });
  await applier.apply([
    msg(1, good),
    msg(2, forged),
    msg(3, unknown),
    msg(4, new Uint8Array([1, 2, 3])),
    msg(5, good, subjects.commits("/all/other" as RepoPath)),
    msg(6, good), // a duplicate: stored once
  ]);
  const rb = b.db.repository(repo);
  assert.deepEqual(rb.commitIds(), [id1]);
  assert.equal(metrics.ingested, 1);
  assert.equal(metrics.refused, 2);
  assert.equal(metrics.malformed, 2);
  assert.deepEqual(announced, [[[id1], FROM_STREAM]]);
  assert.equal(applier.applied, 6);
  await applier.apply([msg(9, outboundMessage(a.sync, ra, id2)!)]);
  assert.deepEqual(gaps, [[7, 8]], "skipped sequences are reported");
  assert.equal(rb.commitIds().length, 2);
  for (const d of [a.db, b.db, client]) await d.close();
});

Deno.test("sessions: a revocation that arrives by ingest reaches the trust at once", async () => {
  const { key: root } = await generateSigningKey();
  const a = await member(root), b = await member(root);
  const sa = new SessionService(a.db, root, a.trust);
  const sb = new SessionService(b.db, root, b.trust);
  await sb.ready();
  const { key } = await generateSigningKey();
  const { record } = await sa.issue(key.publicKey);
  await sa.revoke(record.id);
  assert.equal(b.trust.isRevoked(record.id), false);
  // What the bridge does with a's /sys/sessions commits: ingest them on b.
  const ra = a.db.repository(SESSIONS_REPO);
  const rb = b.db.repository(SESSIONS_REPO);
  const { accepted } = await answerSync(rb, {
    repo: SESSIONS_REPO as RepoPath,
    commits: ra.commitIds().map((id) => ra.commitRecord(id)!),
  }, b.sync.hooks);
  assert.equal(accepted.length, ra.commitIds().length);
  assert.equal(b.trust.isRevoked(record.id), true, "revoked on b");
  for (const d of [a.db, b.db]) await d.close();
});

Deno.test("/healthz answers 503 until the cluster member is ready; /metrics carries its series", async () => {
  const { key: root } = await generateSigningKey();
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({ memory: true, signer: root, trust });
  let ready = false;
  let attached = 0;
  const { app, metricsApp } = createServer({
    db,
    metricsToken: "t",
    security: { root, trust },
    cluster: {
      attach: () => void attached++,
      health: () => ({ ready, phase: ready ? "ready" : "catching_up" }),
      metricsText: () => "capra_cluster_ready 0\n",
    },
  });
  assert.equal(attached, 1);
  let r = await app.request("/healthz");
  assert.equal(r.status, 503);
  const body = await r.json();
  assert.equal(body.status, "catching_up");
  assert.equal(body.cluster.phase, "catching_up");
  ready = true;
  r = await app.request("/healthz");
  assert.equal(r.status, 200);
  assert.equal((await r.json()).status, "ok");
  const metrics = await app.request("/metrics", {
    headers: { authorization: "Bearer t" },
  });
  assert.match(
    metrics.headers.get("content-type") ?? "",
    /^text\/plain/,
  );
  const text = await metrics.text();
  assert.match(text, /capra_commits_accepted_total/, "the server's series");
  assert.match(text, /capra_cluster_ready 0/, "then the cluster's");
  // The separate metrics address carries the cluster series too.
  assert.match(
    await (await metricsApp.request("/metrics")).text(),
    /capra_cluster_ready 0/,
  );
  await db.close();
});

Deno.test("capra serve --nats with NATS unreachable: serves, /healthz 503 with the NATS state; bad cluster flags exit 2", async () => {
  await using dir = await tempDir();
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  for (
    const [args, message] of [
      [["--nats-replicas", "2"], /--nats-replicas needs --nats/],
      [
        ["--nats", "nats://127.0.0.1:1", "--nats-replicas", "9"],
        /expected 1-5/,
      ],
      [["--nats", "ftp://x"], /Invalid --nats URL/],
      [["--nats", "nats://127.0.0.1:1", "--server-id", "a.b"], /--server-id/],
      [
        ["--nats", "nats://127.0.0.1:1", "--nats-creds", `${dir.path}/none`],
        /cannot read --nats-creds/,
      ],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        main,
        "serve",
        "--dir",
        `${dir.path}/d`,
        "--port",
        "0",
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), message);
  }
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "serve",
      "--dir",
      `${dir.path}/data`,
      "--root-key",
      `${dir.path}/root.key`,
      "--port",
      String(port),
      "--nats",
      `nats://127.0.0.1:${freePort()}`,
      "--server-id",
      "lonely",
      "--metrics-token",
      "t0ken",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    let health: Response | undefined;
    for (let i = 0; i < 300 && !health; i++) {
      health = await fetch(`${url}/healthz`).catch(() => undefined);
      if (!health) await sleep(50);
    }
    assert.equal(health!.status, 503);
    const body = await health!.json();
    assert.equal(body.cluster.serverId, "lonely");
    assert.equal(body.cluster.nats, "connecting");
    // Requests are served all the same: a session, a signed sync round.
    const client = await openDatabase({ memory: true, schemas: [EVERYTHING] });
    const session = await ServerSession.create(client, url);
    await client.open("/all/alone");
    client.create("/all/alone/k", "all", { s: "served" });
    const stats = await client.syncWith(
      "/all/alone",
      session.httpTransport("/all/alone"),
      session.hooks,
    );
    assert.equal(stats.commitsSent, 1);
    await client.close();
    const metrics = await (await fetch(`${url}/metrics`, {
      headers: { authorization: "Bearer t0ken" },
    })).text();
    assert.match(metrics, /capra_cluster_nats_connected 0/);
    assert.match(metrics, /capra_cluster_ready 0/);
    const cp = JSON.parse(
      await Deno.readTextFile(`${dir.path}/data/${CHECKPOINT_FILE}`),
    );
    assert.equal(cp.serverId, "lonely");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
  }
});

/** A fake JetStream consumer API: each consume() delivers `batches[i]`, then stays silent. */
function fakeJetStream(batches: number[][], status: unknown[][] = []) {
  const starts: number[] = [];
  const js = {
    consumers: {
      get(_stream: string, opts: { opt_start_seq: number }) {
        const index = starts.length;
        starts.push(opts.opt_start_seq);
        return Promise.resolve({
          consume() {
            let closed = false;
            let wake = () => {};
            const seqs = (batches[index] ?? []).filter((s) =>
              s >= opts.opt_start_seq
            );
            return Promise.resolve({
              async *[Symbol.asyncIterator]() {
                for (const seq of seqs) {
                  yield {
                    seq,
                    subject: "capra.CAPRA.c.all.x",
                    data: new Uint8Array(0),
                    headers: undefined,
                    info: { pending: 0 },
                  };
                }
                while (!closed) await new Promise<void>((r) => wake = r);
              },
              async *status() {
                for (const s of status[index] ?? []) {
                  await sleep(50);
                  yield s;
                }
              },
              close() {
                closed = true;
                wake();
                return Promise.resolve();
              },
            });
          },
        });
      },
    },
  };
  return { js, starts };
}

Deno.test("stream follower: a silent consumer is recreated from the next sequence; so is one missing heartbeats", async () => {
  const applied: number[] = [];
  const { js, starts } = fakeJetStream([[1, 2, 3], [4, 5]]);
  const lines: string[] = [];
  const follower = new StreamFollower({
    js: js as never,
    stream: "CAPRA",
    filter: "capra.CAPRA.c.>",
    apply: (batch) => {
      applied.push(...batch.map((m) => m.seq));
      return Promise.resolve();
    },
    log: (l) => lines.push(l),
  });
  follower.start(1);
  const t = Date.now();
  while (applied.length < 5 && Date.now() - t < WATCHDOG_SILENCE_MS + 5000) {
    await sleep(100);
  }
  await follower.stop();
  assert.deepEqual(applied, [1, 2, 3, 4, 5]);
  assert.deepEqual(
    starts.slice(0, 2),
    [1, 4],
    "recreated at the next sequence",
  );
  assert.ok(lines.some((l) => l.includes("no message or heartbeat")));

  const missed = fakeJetStream([[7], [8]], [[{
    type: "heartbeats_missed",
    count: 2,
  }]]);
  const seen: number[] = [];
  const lines2: string[] = [];
  const f2 = new StreamFollower({
    js: missed.js as never,
    stream: "CAPRA",
    filter: "capra.CAPRA.c.>",
    apply: (batch) => {
      seen.push(...batch.map((m) => m.seq));
      return Promise.resolve();
    },
    log: (l) => lines2.push(l),
  });
  f2.start(7);
  const t2 = Date.now();
  while (seen.length < 2 && Date.now() - t2 < 3000) await sleep(20);
  await f2.stop();
  assert.deepEqual(seen, [7, 8]);
  assert.ok(
    lines2.some((l) => l.includes("2 heartbeats missed")),
    "recreated on missed heartbeats, before the silence watchdog",
  );
});

Deno.test("publisher: after a disconnection, what the stream acknowledged just before is published again", async () => {
  await using dir = await tempDir();
  const { set } = await DirtySet.load(dir.path);
  const stream = new FakeStream();
  let now = 0;
  const p = new Publisher(
    stream,
    set,
    new ClusterMetrics(),
    () => {},
    () => now,
  );
  const repo = "/all/s" as RepoPath;
  p.enqueue(repo, "old" as CommitId, "s", new Uint8Array(1));
  await p.drain(1000);
  now = SUSPECT_WINDOW_MS + 1;
  p.enqueue(repo, "fresh" as CommitId, "s", new Uint8Array(1));
  await p.drain(1000);
  p.suspectRecent(); // the connection dropped
  const rebuilt: string[] = [];
  const n = await p.republishSuspects((_r, id) => {
    rebuilt.push(id);
    return Promise.resolve(new Uint8Array(1));
  });
  await p.drain(1000);
  assert.equal(n, 1);
  assert.deepEqual(rebuilt, ["fresh"], "only the last moments are suspect");
  assert.deepEqual(stream.acked, ["old", "fresh", "fresh"]);
  assert.equal(await p.republishSuspects(() => Promise.resolve(undefined)), 0);
  p.close();
  await set.close();
});

Deno.test("stream applier: a rewind applies again (the stream may have renumbered lost messages), reporting no gap below where it was", async () => {
  const { key: root } = await generateSigningKey();
  const a = await member(root), b = await member(root);
  const subjects = new ClusterSubjects("CAPRA");
  const repo = "/all/r" as RepoPath;
  const ra = await a.db.open(repo);
  for (let i = 0; i < 3; i++) a.db.create(`${repo}/k${i}`, "all", { n: i });
  await a.db.flush();
  const ids = ra.commitIds();
  const gaps: unknown[] = [];
  const applier = new StreamApplier({
    db: b.db,
    sync: b.sync,
    subjects,
    metrics: new ClusterMetrics(),
    log: () => {},
    onGap: (from, to) => gaps.push([from, to]),
  });
  const msg = (seq: number, i: number) => ({
    seq,
    subject: subjects.commits(repo),
    data: outboundMessage(a.sync, ra, ids[i])!,
    pending: 0,
  });
  await applier.apply([msg(1, 0), msg(2, 1)]);
  applier.rewind(1);
  assert.equal(applier.applied, 0);
  // After a total NATS restart seq 2 may hold another commit than before.
  await applier.apply([msg(2, 2)]);
  assert.equal(b.db.repository(repo).commitIds().length, 3);
  assert.deepEqual(gaps, [], "a rewind is no gap");
  await applier.apply([msg(9, 0)]);
  assert.deepEqual(gaps, [[3, 8]]);
  for (const d of [a.db, b.db]) await d.close();
});
