import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import {
  commitIdBytes,
  decodeCommit,
  encodeCommitContent,
} from "../lib/commit/commit.ts";
import { scanFrames } from "../lib/storage/frames.ts";
import { verifySignature } from "../lib/crypto/keys.ts";
import { sha256 } from "../lib/crypto/sha256.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import { decodeSessionRecord } from "../testing.ts";
import { MAX_DELTAS_PER_BASE } from "../lib/commit/delta.ts";
import { tempDir, TODO } from "./_helpers.ts";

const NOTE = {
  ns: "note",
  version: 1,
  fields: { body: { type: "text" as const }, n: { type: "number" as const } },
};

/** Reads every record of a repository file straight from disk. */
async function readLog(path: string) {
  const bytes = await Deno.readFile(path);
  const scan = scanFrames(bytes);
  assert.equal(scan.validEnd, bytes.length);
  const commits = [], sessions = [];
  for (let i = 0; i < scan.frames.length; i += 2) {
    const p = bytes.subarray(scan.frames[i], scan.frames[i + 1]);
    if (p[0] === 1) {
      commits.push({ sig: p.slice(1, 65), commit: decodeCommit(p.slice(65)) });
    } else sessions.push(decodeSessionRecord(p.subarray(1)));
  }
  return { commits, sessions, size: bytes.length };
}

Deno.test("stored commits: canonical, content-addressed, signed, HLC-ordered", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  await db.open("/todo/g");
  const a = db.create("/todo/g/a", "todo", { text: "a" });
  await db.flush();
  a.set("done", true);
  await db.flush();
  a.set("n", 7);
  await db.close();
  const { commits, sessions } = await readLog(`${dir.path}/todo.g.capra`);
  assert.equal(commits.length, 3);
  assert.equal(sessions.length, 1);
  const pk = sessions[0].publicKey;
  for (const { sig, commit } of commits) {
    assert.equal(
      commit.id,
      encodeBase64Url(sha256(commit.bytes)),
      "id = SHA-256 of the bytes",
    );
    assert.deepEqual(
      encodeCommitContent(commit),
      commit.bytes,
      "canonical re-encoding",
    );
    assert.ok(
      await verifySignature(pk, sig, commitIdBytes(commit.id)),
      "Ed25519 over the id",
    );
    assert.equal(commit.session, sessions[0].id);
    assert.equal(commit.schema, "todo/1");
  }
  assert.deepEqual(commits[0].commit.parents, []);
  assert.deepEqual(commits[1].commit.parents, [commits[0].commit.id]);
  assert.deepEqual(commits[2].commit.parents, [commits[1].commit.id]);
  assert.ok(
    commits[0].commit.ts < commits[1].commit.ts &&
      commits[1].commit.ts < commits[2].commit.ts,
  );
  // A tampered byte changes the id, so the signature no longer matches it.
  const tampered = commits[1].commit.bytes.slice();
  tampered[tampered.length - 2] ^= 1;
  const forged = decodeCommit(tampered);
  assert.notEqual(forged.id, commits[1].commit.id);
  assert.equal(
    await verifySignature(pk, commits[1].sig, commitIdBytes(forged.id)),
    false,
  );
});

Deno.test("deltas are taken against the last full snapshot; a full one is forced after 20", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path, schemas: [NOTE] });
  await db.open("/note/d");
  const big = "x".repeat(2000);
  const item = db.create("/note/d/a", "note", { body: big, n: 0 });
  await db.flush();
  const updates = MAX_DELTAS_PER_BASE + 5;
  for (let i = 1; i <= updates; i++) {
    item.set("n", i);
    await db.flush();
  }
  await db.close();
  const { commits } = await readLog(`${dir.path}/note.d.capra`);
  assert.equal(commits.length, updates + 1);
  const kinds = commits.map((c) => c.commit.body.kind);
  assert.equal(kinds[0], "full");
  for (let i = 1; i <= MAX_DELTAS_PER_BASE; i++) {
    const body = commits[i].commit.body;
    assert.equal(body.kind, "delta", `commit ${i} is a delta`);
    if (body.kind === "delta") {
      assert.equal(
        body.base,
        commits[0].commit.id,
        "base is the last full snapshot, not the parent",
      );
      assert.deepEqual(Object.keys(body.changed), ["n"]);
    }
  }
  assert.equal(
    kinds[MAX_DELTAS_PER_BASE + 1],
    "full",
    "forced after 20 deltas on one base",
  );
  const after = commits[MAX_DELTAS_PER_BASE + 2].commit.body;
  assert.equal(after.kind, "delta");
  if (after.kind === "delta") {
    assert.equal(after.base, commits[MAX_DELTAS_PER_BASE + 1].commit.id);
  }
  // Deltas are small: the whole history is far smaller than 26 full snapshots.
  const full = commits[0].commit.bytes.length;
  assert.ok(commits[1].commit.bytes.length < full / 4);
  // And the values read back exactly.
  const db2 = await openDatabase({ dir: dir.path, schemas: [NOTE] });
  const again = (await db2.load("/note/d/a"))!;
  assert.equal(again.get("n"), updates);
  assert.equal(again.get("body"), big);
  await db2.close();
});

Deno.test("a delta no smaller than half the snapshot is written as a full snapshot", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path, schemas: [NOTE] });
  await db.open("/note/t");
  const item = db.create("/note/t/a", "note", { body: "short", n: 1 });
  await db.flush();
  item.update({ body: "completely different", n: 2 });
  await db.flush();
  const long = db.create("/note/t/b", "note", { body: "y".repeat(500), n: 1 });
  await db.flush();
  long.set("body", "y".repeat(250) + "Z" + "y".repeat(250));
  await db.close();
  const { commits } = await readLog(`${dir.path}/note.t.capra`);
  const byKey = (k: string) =>
    commits.filter((c) => c.commit.key === `/note/t/${k}`);
  assert.deepEqual(byKey("a").map((c) => c.commit.body.kind), ["full", "full"]);
  const b = byKey("b");
  assert.deepEqual(b.map((c) => c.commit.body.kind), ["full", "delta"]);
  const body = b[1].commit.body;
  if (body.kind === "delta") {
    assert.deepEqual(
      body.changed.body,
      [250, 0, "Z"],
      "text changes travel as a splice",
    );
  }
});

async function exchange(
  from: Database,
  to: Database,
  repo: string,
): Promise<void> {
  const r = from.repository(repo);
  await r.flush();
  const records = r.commitIds().map((id) => r.commitRecord(id)!);
  const result = await to.repository(repo).ingest(records);
  assert.deepEqual(result.rejected, []);
}

Deno.test("a write on several heads is the merge commit naming all of them", async () => {
  const a = await openDatabase({ memory: true, schemas: [TODO] });
  const b = await openDatabase({ memory: true, schemas: [TODO] });
  a.trustSession(b.session);
  b.trustSession(a.session);
  await a.open("/todo/m");
  await b.open("/todo/m");
  a.create("/todo/m/x", "todo", { text: "base" });
  await exchange(a, b, "/todo/m");
  a.item("/todo/m/x")!.set("done", true);
  b.item("/todo/m/x")!.set("n", 5);
  await exchange(a, b, "/todo/m");
  await exchange(b, a, "/todo/m");
  const xa = a.item("/todo/m/x")!;
  assert.equal(xa.heads.length, 2);
  assert.deepEqual(xa.toObject(), { text: "base", done: true, n: 5 });
  const heads = [...xa.heads].sort();
  xa.set("text", "merged");
  await a.flush();
  const h = xa.history();
  const last = h[h.length - 1];
  assert.deepEqual([...last.parents].sort(), heads);
  assert.deepEqual(xa.heads, [last.id]);
  await exchange(a, b, "/todo/m");
  assert.deepEqual(b.item("/todo/m/x")!.toObject(), {
    text: "merged",
    done: true,
    n: 5,
  });
  assert.deepEqual(b.item("/todo/m/x")!.heads, [last.id]);
  await a.close();
  await b.close();
});

Deno.test("a replica whose clock went backwards still orders its writes after its history", async () => {
  await using dir = await tempDir();
  {
    const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
    await db.open("/todo/back");
    db.create("/todo/back/a", "todo", { text: "now", n: 1 });
    await db.close();
  }
  const db = await openDatabase({
    dir: dir.path,
    schemas: [TODO],
    clock: () => Date.now() - 86_400_000, // a day behind the stored commit
  });
  const a = (await db.load("/todo/back/a"))!;
  a.set("n", 2);
  await db.close();
  const again = await openDatabase({ dir: dir.path, schemas: [TODO] });
  const h = (await again.load("/todo/back/a"))!;
  assert.equal(h.get("n"), 2, "the write is not lost");
  const [first, second] = h.history();
  assert.ok(second.ts > first.ts);
  await again.close();
});
