/**
 * A full disk and a read-only directory on a real file system: a 2 MiB tmpfs (mounting
 * needs root; without it these tests say so and skip: the same behaviour is tested
 * through the fault-injecting file system in storage_faults_test.ts).
 */

import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { scanFrames } from "../lib/storage/frames.ts";
import { StorageError } from "../lib/storage/storage.ts";
import { tempDir, TODO } from "./_helpers.ts";

const main = new URL("../server/main.ts", import.meta.url).pathname;
const TMPFS_SIZE = "2m";
const ITEM_TEXT = "x".repeat(1000);
const BATCH = 50;

async function run(cmd: string, ...args: string[]) {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => ({
    code: 127,
    stdout: new Uint8Array(),
    stderr: new TextEncoder().encode(String(e)),
  }));
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

const capra = (...args: string[]) =>
  run(Deno.execPath(), "run", "-A", main, ...args);

/** Mounts a tmpfs of `size` on `dir`; false (with the reason printed) when not permitted. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const r = await run(
    "mount",
    "-t",
    "tmpfs",
    "-o",
    `size=${size}`,
    "tmpfs",
    dir,
  );
  if (r.code !== 0) {
    console.log(
      `skipped: cannot mount a tmpfs (${
        r.stderr.trim() || r.code
      }); needs root`,
    );
    return false;
  }
  return true;
}

async function unmount(dir: string): Promise<void> {
  if ((await run("umount", dir)).code !== 0) await run("umount", "-l", dir);
}

/** Descriptors of this process that point into `dir`. */
function descriptorsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${fd.name}`);
      if (target.startsWith(dir)) out.push(target);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

function assertClean(path: string, what: string): void {
  const bytes = Deno.readFileSync(path);
  const scan = scanFrames(bytes);
  assert.equal(scan.validEnd, bytes.length, `${what}: no torn tail`);
  assert.deepEqual(scan.skipped, [], `${what}: no damaged range`);
}

/** Creates items in batches until a flush fails; returns how many were flushed. */
async function fillUntilFull(
  db: Database,
  from: number,
): Promise<{ flushed: number; created: number; error: unknown }> {
  let i = from;
  for (let batch = 0; batch < 10_000; batch++) {
    const start = i;
    for (; i < start + BATCH; i++) {
      db.create(`/todo/a/k${i}`, "todo", { text: ITEM_TEXT, n: i });
    }
    try {
      await db.flush();
    } catch (error) {
      return { flushed: start, created: i, error };
    }
  }
  throw new Error("the disk never filled up");
}

function assertDiskFull(e: unknown, file: string): void {
  assert.ok(e instanceof StorageError, String(e));
  assert.equal(e.code, "ENOSPC");
  assert.match(e.message, /No space left on device/);
  assert.ok(e.message.includes("/todo/a"), e.message);
  assert.ok(e.message.includes(file), e.message);
}

Deno.test("a full disk (2 MiB tmpfs): clear error, clean file, verify passes; writes go on when space returns; close() releases every descriptor", async () => {
  await using root = await tempDir();
  const mnt = `${root.path}/mnt`;
  if (!await mountTmpfs(mnt, TMPFS_SIZE)) return;
  try {
    const dir = `${mnt}/data`;
    const file = `${dir}/todo.a.capra`;
    let db = await openDatabase({ dir, schemas: [TODO] });
    await db.open("/todo/a");
    const first = await fillUntilFull(db, 0);
    assertDiskFull(first.error, file);
    assertClean(file, "after the failed flush");
    await assert.rejects(db.flush(), (e) => (assertDiskFull(e, file), true));
    assertClean(file, "after the retry");
    assert.equal(
      db.count("/todo/a"),
      first.created,
      "the commits stay in memory",
    );
    const verify = await capra("verify", dir);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);

    // Space returns: the queued commits are written.
    assert.equal((await run("mount", "-o", "remount,size=4m", mnt)).code, 0);
    await db.flush();
    assertClean(file, "after space returned");
    assert.equal((await capra("verify", dir)).code, 0);

    // Full again, and close() throws: every descriptor is released anyway.
    const second = await fillUntilFull(db, first.created);
    assertDiskFull(second.error, file);
    await assert.rejects(db.close(), (e) => (assertDiskFull(e, file), true));
    assert.deepEqual(descriptorsUnder(mnt), [], "no descriptor left open");

    assert.equal((await run("mount", "-o", "remount,size=8m", mnt)).code, 0);
    db = await openDatabase({ dir, schemas: [TODO] });
    await db.open("/todo/a");
    assert.deepEqual(db.recoveries, [], "nothing to repair");
    assert.equal(db.count("/todo/a"), second.flushed, "every flushed item");
    for (let i = 0; i < second.flushed; i += 97) {
      assert.equal(db.item(`/todo/a/k${i}`)?.get("n"), i);
    }
    await db.close();
    assert.equal((await capra("verify", dir)).code, 0, "verify after reopen");
    const compact = await capra("compact", dir, "--retain", "1d");
    assert.equal(compact.code, 0, compact.stderr);
    assert.equal((await capra("verify", dir)).code, 0, "verify after compact");
  } finally {
    await unmount(mnt);
  }
});

/** The one line `capra serve` and the API give for a read-only `dir`. */
async function assertReadOnlyRefused(dir: string, rootKey: string) {
  const message =
    /^Cannot open database "[^"]+": the directory is not writable \((Read-only file system|Permission denied)[^\n]*\)$/;
  await assert.rejects(openDatabase({ dir, schemas: [TODO] }), (e) => {
    assert.ok(e instanceof StorageError, String(e));
    assert.match(e.message, message);
    return true;
  });
  const serve = await capra(
    "serve",
    "--dir",
    dir,
    "--port",
    "0",
    "--root-key",
    rootKey,
  );
  assert.equal(serve.code, 1, serve.stderr);
  // (Deno's own "Download …" lines appear on a cold module cache only.)
  const lines = serve.stderr.split("\n").filter((l) =>
    l !== "" && !l.startsWith("Download ")
  );
  assert.equal(lines.length, 1, `one line: ${serve.stderr}`);
  assert.match(lines[0].replace(/^capra serve: /, ""), message);
  assert.match(lines[0], /^capra serve: /);
}

async function writeOneItem(dir: string): Promise<void> {
  const db = await openDatabase({ dir, schemas: [TODO] });
  await db.open("/todo/a");
  db.create("/todo/a/k", "todo", { text: "kept" });
  await db.close();
}

Deno.test("a read-only data directory (tmpfs mounted read-only): one clear error at open and at serve", async () => {
  await using root = await tempDir();
  const mnt = `${root.path}/mnt`;
  if (!await mountTmpfs(mnt, TMPFS_SIZE)) return;
  try {
    const dir = `${mnt}/data`, rootKey = `${root.path}/root.key`;
    await writeOneItem(dir);
    assert.equal((await run("mount", "-o", "remount,ro", mnt)).code, 0);
    await assertReadOnlyRefused(dir, rootKey);
    assert.equal((await capra("verify", dir)).code, 0, "still readable");
  } finally {
    await unmount(mnt);
  }
});

Deno.test("a data directory without write permission: one clear error at open and at serve", async () => {
  if (Deno.uid() === 0) {
    console.log(
      "skipped: root writes through permission bits (see the tmpfs test)",
    );
    return;
  }
  await using root = await tempDir();
  const dir = `${root.path}/data`, rootKey = `${root.path}/root.key`;
  await writeOneItem(dir);
  await Deno.chmod(dir, 0o555);
  try {
    await assertReadOnlyRefused(dir, rootKey);
  } finally {
    await Deno.chmod(dir, 0o755);
  }
});
