/** The operator commands (`verify`, `stats`, `export`, `import`, `backup`) as subprocesses. */

import assert from "node:assert/strict";
import {
  openDatabase,
  SCHEMA_FINGERPRINT_FIELD,
  schemaFingerprint,
} from "../mod.ts";
import { decodeCommit } from "../lib/commit/commit.ts";
import { encodeFrame, scanFrames } from "../lib/storage/frames.ts";
import { EVERYTHING, tempDir, TODO } from "./_helpers.ts";
import { capra } from "./_cli.ts";

const writer = new URL("./fixtures/writer.ts", import.meta.url).pathname;

const LONG_TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(20);

/** Writes two repositories: /todo/a (5 items, one deleted) and /all/b (text deltas). */
async function fillDirectory(dir: string): Promise<void> {
  const db = await openDatabase({ dir, schemas: [TODO, EVERYTHING] });
  await db.open("/todo/a");
  await db.open("/all/b");
  for (let i = 0; i < 5; i++) {
    db.create(`/todo/a/k${i}`, "todo", { text: `t${i}`, n: i });
  }
  const x = db.create("/all/b/x", "all", {
    body: LONG_TEXT,
    tags: new Set(["a", 2]),
    attrs: new Map<string, string | number>([["k", "v"], ["n", 1]]),
    d: new Date(1_700_000_000_000),
  });
  await db.flush();
  x.set("body", LONG_TEXT.replace("lazy", "sleepy"));
  db.item("/todo/a/k1")!.delete();
  await db.flush();
  x.set("s", "second");
  await db.flush();
  await db.close();
}

function repoFile(dir: string, name: string): string {
  return `${dir}/${name}`;
}

/** Values of every item of the given repositories, read through the public API. */
async function values(dir: string, repos: string[]): Promise<unknown[]> {
  const db = await openDatabase({ dir, schemas: [TODO, EVERYTHING] });
  const out: unknown[] = [];
  for (const r of repos) {
    await db.open(r);
    for (const key of db.keys(r).sort()) {
      const item = db.item(`${r}/${key}`)!;
      out.push([item.path, item.schema.ns, item.toObject()]);
    }
  }
  await db.close();
  return out;
}

Deno.test("verify passes on a clean directory while a database holds its lock", async () => {
  await using dir = await tempDir();
  await fillDirectory(dir.path);
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  try {
    await db.open("/todo/a");
    db.create("/todo/a/live", "todo", { text: "while open" });
    await db.flush();
    await Deno.stat(`${dir.path}/LOCK`); // held
    const all = await capra("verify", dir.path);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.match(
      all.stdout,
      /\/todo\/a: records 8, commits 7, sessions 1, bad 0/,
    );
    assert.match(all.stdout, /\/all\/b: .*bad 0, ok/);
    const one = await capra("verify", dir.path, "/all/b");
    assert.equal(one.code, 0);
    assert.doesNotMatch(one.stdout, /todo/);
  } finally {
    await db.close();
  }
});

Deno.test("verify names a commit whose signature was altered (checksum intact)", async () => {
  await using dir = await tempDir();
  await fillDirectory(dir.path);
  const path = repoFile(dir.path, "todo.a.capra");
  const bytes = await Deno.readFile(path);
  const { frames } = scanFrames(bytes);
  let i = 0;
  while (bytes[frames[i]] !== 1) i += 2;
  const [start, end] = [frames[i], frames[i + 1]];
  const payload = bytes.slice(start, end);
  const id = decodeCommit(payload.subarray(65)).id;
  payload[10] ^= 0x40; // inside the signature
  const frame = encodeFrame(payload); // recompute the checksum: only the signature is bad
  bytes.set(frame, end - frame.length);
  await Deno.writeFile(path, bytes);
  const r = await capra("verify", dir.path);
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stdout,
    new RegExp(`commit ${id} .*signature does not verify`),
  );
  assert.match(r.stdout, /\/todo\/a: .*bad 1/);
  assert.match(r.stdout, /\/all\/b: .*bad 0/);

  // A flipped byte without a matching checksum is a damaged range.
  bytes[start + 20] ^= 0x01;
  await Deno.writeFile(path, bytes);
  const damaged = await capra("verify", dir.path, "/todo/a");
  assert.equal(damaged.code, 1);
  assert.match(damaged.stdout, /damaged bytes \d+-\d+/);
});

Deno.test("verify reports a torn tail and leaves the file unchanged", async () => {
  await using dir = await tempDir();
  await fillDirectory(dir.path);
  const path = repoFile(dir.path, "todo.a.capra");
  const size = (await Deno.stat(path)).size;
  await Deno.truncate(path, size - 5);
  const before = await Deno.readFile(path);
  const listing = async () =>
    (await Array.fromAsync(Deno.readDir(dir.path))).map((e) => e.name).sort();
  const namesBefore = await listing();
  const r = await capra("verify", dir.path);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /torn tail: \d+ bytes after offset \d+/);
  assert.match(r.stdout, /verify: FAILED/);
  assert.deepEqual(await Deno.readFile(path), before);
  assert.deepEqual(await listing(), namesBefore, "no .cut file, no LOCK");
});

Deno.test("stats reports what was written", async () => {
  await using dir = await tempDir();
  const t0 = Date.now();
  await fillDirectory(dir.path);
  const t1 = Date.now();
  const r = await capra("stats", dir.path, "--json");
  assert.equal(r.code, 0, r.stderr);
  const { repos, total } = JSON.parse(r.stdout);
  const [b, a] = repos;
  assert.equal(a.repo, "/todo/a");
  assert.equal(a.items, 4);
  assert.equal(a.itemsWithDeleted, 5);
  assert.equal(a.commits, 6);
  assert.equal(a.bytes, (await Deno.stat(`${dir.path}/todo.a.capra`)).size);
  assert.equal(b.repo, "/all/b");
  assert.equal(b.items, 1);
  assert.equal(b.commits, 3);
  assert.equal(total.items, 5);
  assert.equal(total.commits, 9);
  assert.equal(total.bytes, a.bytes + b.bytes);
  for (const t of [total.oldest, total.newest]) {
    const ms = Date.parse(t);
    assert.ok(ms >= t0 && ms <= t1, `${t} within the test`);
  }
  assert.ok(total.oldest <= total.newest);
  const table = await capra("stats", dir.path);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^total\s+5\s+6\s+9\s/m);
});

Deno.test("export values, export --commits, import into an empty directory, verify", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await fillDirectory(src.path);

  const vals = await capra("export", src.path, "/all/b");
  assert.equal(vals.code, 0, vals.stderr);
  const lines = vals.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines, [{
    path: "/all/b/x",
    schema: "all/1",
    data: {
      body: LONG_TEXT.replace("lazy", "sleepy"),
      tags: [2, "a"],
      attrs: { k: "v", n: 1 },
      d: 1_700_000_000_000,
      s: "second",
      // The stored data records its writer's schema fingerprint.
      [SCHEMA_FINGERPRINT_FIELD]: schemaFingerprint(EVERYTHING),
    },
  }]);
  const todos = await capra("export", src.path, "/todo/a");
  assert.deepEqual(
    todos.stdout.trim().split("\n").map((l) => JSON.parse(l).path),
    ["/todo/a/k0", "/todo/a/k2", "/todo/a/k3", "/todo/a/k4"],
  );

  for (const repo of ["/todo/a", "/all/b"]) {
    const exp = await capra("export", src.path, repo, "--commits");
    assert.equal(exp.code, 0, exp.stderr);
    const parsed = exp.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(parsed[0].session && parsed[0].publicKey);
    if (repo === "/all/b") {
      assert.ok(parsed.some((l) => l.kind === "delta"), "a text delta");
    }
    const file = `${dst.path}.${repo.replaceAll("/", "_")}.jsonl`;
    await Deno.writeTextFile(file, exp.stdout);
    try {
      const imp = await capra("import", `${dst.path}/db`, repo, file);
      assert.equal(imp.code, 0, imp.stdout + imp.stderr);
      assert.match(imp.stdout, /0 refused/);
      const again = await capra("import", `${dst.path}/db`, repo, file);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /0 commits stored, \d+ already present/);
    } finally {
      await Deno.remove(file);
    }
  }
  const check = await capra("verify", `${dst.path}/db`);
  assert.equal(check.code, 0, check.stdout);
  const repos = ["/all/b", "/todo/a"];
  assert.deepEqual(
    await values(`${dst.path}/db`, repos),
    await values(src.path, repos),
  );
  const srcCommits = await capra("export", src.path, "/all/b", "--commits");
  const dstCommits = await capra(
    "export",
    `${dst.path}/db`,
    "/all/b",
    "--commits",
  );
  assert.equal(
    dstCommits.stdout,
    srcCommits.stdout,
    "records re-encoded exactly",
  );
});

Deno.test("import refuses a value export and tampered commits", async () => {
  await using src = await tempDir();
  await fillDirectory(src.path);
  const file = `${src.path}/export.jsonl`;
  await Deno.writeTextFile(
    file,
    (await capra("export", src.path, "/todo/a")).stdout,
  );
  const r = await capra("import", `${src.path}/copy`, "/todo/a", file);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /value export/);
  // A commit whose session is not in the file is refused.
  const exp = (await capra("export", src.path, "/todo/a", "--commits")).stdout;
  await Deno.writeTextFile(file, exp.split("\n").slice(1).join("\n"));
  const refused = await capra("import", `${src.path}/copy`, "/todo/a", file);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refused .*session .* unknown/);
});

Deno.test("backup while another process appends, then verify the copy", async () => {
  await using dir = await tempDir();
  await using out = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", writer, dir.path, "0"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let flushed = 0;
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (flushed < 200) {
      const { value, done } = await reader.read();
      if (done) throw new Error("writer exited early");
      text += value;
      const all = [...text.matchAll(/flushed (\d+)/g)];
      if (all.length) flushed = Number(all[all.length - 1][1]);
    }
    reader.releaseLock();
    const dest = `${out.path}/backup`;
    const b = await capra("backup", dir.path, dest);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /backup: 1 repositories/);
    const names = (await Array.fromAsync(Deno.readDir(dest))).map((e) => e.name)
      .sort();
    assert.deepEqual(names, ["session-key.meta", "todo.kill.capra"]);
    const v = await capra("verify", dest);
    assert.equal(v.code, 0, v.stdout);
    const s = JSON.parse((await capra("stats", dest, "--json")).stdout);
    assert.ok(s.total.items >= flushed, `${s.total.items} >= ${flushed}`);
    const again = await capra("backup", dir.path, dest);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /not empty/);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});

Deno.test("operator commands: --help, and bad arguments exit 2 with a message", async () => {
  for (const cmd of ["verify", "stats", "export", "import", "backup"]) {
    const h = await capra(cmd, "--help");
    assert.equal(h.code, 0, cmd);
    assert.match(h.stdout, new RegExp(`Usage: capra ${cmd}`));
  }
  await using dir = await tempDir();
  const bad: string[][] = [
    ["verify"],
    ["verify", `${dir.path}/missing`],
    ["verify", dir.path, "/todo/none"],
    ["verify", dir.path, "not a repo"],
    ["stats", dir.path, "--bogus"],
    ["stats", dir.path, "extra"],
    ["export", dir.path],
    ["import", dir.path, "/todo/a"],
    ["import", dir.path, "/todo/a", `${dir.path}/no-such-file`],
    ["backup", dir.path],
  ];
  for (const args of bad) {
    const r = await capra(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /^capra \w+: .+/, args.join(" "));
    assert.equal(r.stdout, "", args.join(" "));
  }
  const top = await capra("--help");
  assert.match(top.stdout, /capra backup DIR DEST/);
});

Deno.test("export marks an item with concurrent heads as a conflict", async () => {
  await using dir = await tempDir();
  const a = await openDatabase({ dir: dir.path, schemas: [TODO] });
  const b = await openDatabase({ memory: true, schemas: [TODO] });
  try {
    const ra = await a.open("/todo/c");
    const rb = await b.open("/todo/c");
    a.trustSession(b.session);
    b.trustSession(a.session);
    a.create("/todo/c/x", "todo", { text: "base" });
    await a.flush();
    const records = (r: typeof ra) =>
      r.commitIds().map((id) => r.commitRecord(id)!);
    await rb.ingest(records(ra));
    a.item("/todo/c/x")!.set("text", "from a");
    b.item("/todo/c/x")!.set("text", "from b");
    await Promise.all([a.flush(), b.flush()]);
    const result = await ra.ingest(records(rb));
    assert.equal(result.accepted.length, 1);
    await a.flush();
  } finally {
    await a.close();
    await b.close();
  }
  const r = await capra("export", dir.path, "/todo/c");
  assert.equal(r.code, 0, r.stderr);
  const line = JSON.parse(r.stdout);
  assert.equal(line.path, "/todo/c/x");
  assert.equal(line.conflict, true);
  assert.deepEqual(
    line.heads.map((h: { data: { text: string } }) => h.data.text).sort(),
    ["from a", "from b"],
  );
});
