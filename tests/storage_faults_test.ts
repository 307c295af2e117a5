/**
 * Write faults through the file-system seam (always runs: no mount needed): a full disk,
 * failing fsyncs, short and failing writes, a read-only directory, a repository file
 * that is a directory. Each time the file stays clean (cut back to its last durable
 * batch), the records stay queued and a later flush writes them, close() releases every
 * handle, and errors name the repository and the file.
 */

import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { FaultyFileSystem } from "../lib/storage/faulty_fs.ts";
import { FileStorage } from "../lib/storage/file_storage.ts";
import { encodeFrame, scanFrames } from "../lib/storage/frames.ts";
import { StorageError } from "../lib/storage/storage.ts";
import type { RepoPath } from "../lib/path.ts";
import { seedFor } from "./_seed.ts";
import { TODO } from "./_helpers.ts";

const DIR = "/data";
const FILE = `${DIR}/todo.a.capra`;

async function openOn(fs: FaultyFileSystem): Promise<Database> {
  const db = await openDatabase({
    storage: await FileStorage.open(DIR, { fs, pid: 4242 }),
    schemas: [TODO],
  });
  await db.open("/todo/a");
  return db;
}

/** The file is exactly a sequence of intact records (no damage, no torn tail). */
function assertClean(bytes: Uint8Array | null, what: string): number {
  assert.ok(bytes, `${what}: the file exists`);
  const scan = scanFrames(bytes);
  assert.equal(scan.validEnd, bytes.length, `${what}: no torn tail`);
  assert.deepEqual(scan.skipped, [], `${what}: no damaged range`);
  return scan.frames.length / 2;
}

function create(db: Database, from: number, to: number, pad = 0): void {
  for (let i = from; i < to; i++) {
    db.create(`/todo/a/k${i}`, "todo", {
      text: `item ${i}${"x".repeat(pad)}`,
      n: i,
    });
  }
}

function assertItems(db: Database, n: number, what: string): void {
  assert.equal(db.count("/todo/a"), n, `${what}: item count`);
  for (let i = 0; i < n; i++) {
    assert.equal(db.item(`/todo/a/k${i}`)?.get("n"), i, `${what}: k${i}`);
  }
}

function isStorageError(code: string, ...mentions: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof StorageError, `a StorageError: ${e}`);
    assert.equal(e.code, code);
    assert.ok(e.cause, "the cause is kept");
    for (const m of mentions) {
      assert.ok(e.message.includes(m), `"${e.message}" names ${m}`);
    }
    return true;
  };
}

Deno.test("a full disk fails the flush clearly, leaves the file clean, keeps the commits queued; writes go on when space returns", async () => {
  const seed = seedFor("full disk");
  const fs = new FaultyFileSystem({ seed, shortWriteRate: 0.3 });
  const db = await openOn(fs);
  create(db, 0, 20);
  await db.flush();
  const good = fs.peek(FILE)!.length;
  const records = assertClean(fs.peek(FILE), "before");
  // Room for part of the next batch only: the write stops midway.
  fs.capacity = fs.usedBytes + 300;
  create(db, 20, 50, 40);
  for (let attempt = 0; attempt < 3; attempt++) {
    await assert.rejects(
      db.flush(),
      isStorageError("ENOSPC", "/todo/a", FILE, "No space left on device"),
    );
    assert.equal(fs.peek(FILE)!.length, good, `cut back (attempt ${attempt})`);
    assert.equal(fs.peekDurable(FILE)!.length, good, "durably cut back");
    assertClean(fs.peek(FILE), `after failure ${attempt}`);
  }
  assertItems(db, 50, "in memory while the disk is full");
  fs.capacity = Infinity; // space returns
  await db.flush();
  assert.equal(assertClean(fs.peek(FILE), "after"), records + 30);
  create(db, 50, 55);
  await db.close();
  assert.equal(fs.openHandles, 0, "every handle released");
  const again = await openOn(fs.restart("lose"));
  assert.deepEqual(again.recoveries, [], "nothing to repair");
  assertItems(again, 55, "after a power cut");
  await again.close();
});

Deno.test("a failed fsync is rolled back and retried: nothing lost, nothing written twice", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  create(db, 0, 5);
  await db.flush();
  const good = fs.peek(FILE)!.length;
  const records = assertClean(fs.peek(FILE), "before");
  fs.failNext("fsync", { path: FILE, code: "EIO" });
  create(db, 5, 10);
  await assert.rejects(db.flush(), isStorageError("EIO", "/todo/a", FILE));
  assert.equal(fs.peek(FILE)!.length, good, "the unsynced batch was cut");
  await db.flush(); // the retry writes it once
  assert.equal(assertClean(fs.peek(FILE), "after"), records + 5);
  await db.close();
  const again = await openOn(fs.restart("lose"));
  assertItems(again, 10, "after a power cut");
  await again.close();
});

Deno.test("a short write followed by an error is cut back to the last good offset", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  create(db, 0, 3);
  await db.flush();
  const good = fs.peek(FILE)!.length;
  fs.failNext("write", { path: FILE, afterBytes: 17, code: "EIO" });
  create(db, 3, 8);
  await assert.rejects(db.flush(), isStorageError("EIO", FILE));
  assert.equal(fs.peek(FILE)!.length, good);
  await db.flush();
  assertClean(fs.peek(FILE), "after the retry");
  await db.close();
  const again = await openOn(fs);
  assert.deepEqual(again.recoveries, []);
  assertItems(again, 8, "reopened");
  await again.close();
});

Deno.test("when the cut-back fails too, the file is cut before the next write", async () => {
  const fs = new FaultyFileSystem();
  const storage = await FileStorage.open(DIR, { fs });
  const log = await storage.openLog("/todo/a" as RepoPath);
  log.append(encodeFrame(new Uint8Array([1, 2, 3])));
  await log.flush();
  const good = fs.peek(FILE)!.length;
  fs.failNext("write", { path: FILE, afterBytes: 5 });
  fs.failNext("truncate", { path: FILE }); // the rollback fails
  log.append(encodeFrame(new Uint8Array(40).fill(7)));
  await assert.rejects(log.flush(), StorageError);
  assert.ok(fs.peek(FILE)!.length > good, "half a record is still there");
  await log.flush();
  assert.equal(assertClean(fs.peek(FILE), "after the retry"), 2);
  await log.close();
  await storage.close();
});

Deno.test("close() releases every handle and the lock even when its flush throws", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  await db.open("/todo/b");
  create(db, 0, 4);
  db.create("/todo/b/x", "todo", { text: "b" });
  await db.flush();
  fs.capacity = fs.usedBytes; // full
  create(db, 4, 9);
  await assert.rejects(db.close(), isStorageError("ENOSPC", "/todo/a"));
  assert.equal(fs.openHandles, 0, "no handle left open (lock included)");
  fs.capacity = Infinity;
  const again = await openOn(fs); // the lock was released
  assertItems(again, 4, "the flushed items");
  await again.open("/todo/b");
  assert.equal(again.item("/todo/b/x")?.get("text"), "b");
  assert.deepEqual(again.recoveries, []);
  await again.close();
  assert.equal(fs.openHandles, 0);
});

Deno.test("commits of a repository whose close() failed are written when the database closes, once space returned", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  create(db, 0, 2);
  await db.flush();
  fs.capacity = fs.usedBytes;
  create(db, 2, 4);
  await assert.rejects(db.close("/todo/a"), isStorageError("ENOSPC", FILE));
  fs.capacity = Infinity;
  await db.close();
  assert.equal(fs.openHandles, 0);
  const again = await openOn(fs.restart("lose"));
  assertItems(again, 4, "after the database closed");
  await again.close();
});

Deno.test("a log whose close() throws holds no handle and stays usable until space returns", async () => {
  const fs = new FaultyFileSystem();
  const storage = await FileStorage.open(DIR, { fs });
  const log = await storage.openLog("/todo/a" as RepoPath);
  log.append(encodeFrame(new Uint8Array([1])));
  await log.flush();
  fs.capacity = fs.usedBytes;
  log.append(encodeFrame(new Uint8Array([2])));
  await assert.rejects(log.close(), isStorageError("ENOSPC", FILE));
  assert.equal(storage.openHandles, 0, "the pooled handles are closed");
  fs.capacity = Infinity;
  await log.close(); // retries the queued record
  await storage.close();
  const reopened = await FileStorage.open(DIR, { fs });
  const again = await reopened.openLog("/todo/a" as RepoPath);
  assert.equal(again.frames.length, 4, "both records");
  await again.close();
  await reopened.close();
});

Deno.test("a read-only data directory gets one clear error at open", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  create(db, 0, 2);
  await db.close();
  fs.readOnly = true;
  await assert.rejects(
    FileStorage.open(DIR, { fs }),
    (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.match(
        e.message,
        /^Cannot open database "\/data": the directory is not writable \(Read-only file system/,
      );
      assert.doesNotMatch(e.message, /\n/, "one line");
      return true;
    },
  );
  await assert.rejects(
    FileStorage.open("/fresh", { fs }),
    /Cannot open database "\/fresh": cannot create the directory \(its parent is not writable\)/,
  );
  assert.equal(fs.openHandles, 0);
});

Deno.test("a directory that takes no new files is refused at open, also when a crashed holder left its lock file", async () => {
  const fs = new FaultyFileSystem();
  const crashed = await openOn(fs);
  const after = fs.restart("keep"); // a crash: the lock file stays
  await crashed.close().catch(() => {}); // (its file system is gone)
  // The directory refuses new entries (as a 0555 directory does to its owner).
  after.failNext("open", { path: /write-probe/, code: "EACCES", times: 9 });
  await assert.rejects(
    FileStorage.open(DIR, { fs: after }),
    /^StorageError: Cannot open database "\/data": the directory is not writable \(Permission denied/,
  );
  assert.equal(after.openHandles, 0, "the lock is released");
  after.clearFaults();
  const db = await openOn(after);
  await db.close();
});

Deno.test("a repository file that is a directory is refused with an error naming the repository and the file", async () => {
  const fs = new FaultyFileSystem();
  await fs.mkdirAll(`${DIR}/todo.x.capra`);
  const db = await openOn(fs);
  await assert.rejects(
    db.open("/todo/x"),
    isStorageError(
      "EISDIR",
      "Cannot open repository /todo/x",
      `(file ${DIR}/todo.x.capra)`,
      "Is a directory",
    ),
  );
  create(db, 0, 2); // the other repositories are unaffected
  await db.flush();
  await db.close();
});

Deno.test("repository logs share a bounded pool of handles: 60 logs, 4 handles", async () => {
  const fs = new FaultyFileSystem();
  const storage = await FileStorage.open(DIR, { fs, maxOpenFiles: 4 });
  const repos = Array.from({ length: 60 }, (_, i) => `/p/r${i}` as RepoPath);
  const logs = await Promise.all(repos.map((r) => storage.openLog(r)));
  for (let round = 0; round < 3; round++) {
    logs.forEach((log, i) =>
      log.append(encodeFrame(new TextEncoder().encode(`${i}:${round}`)))
    );
    await Promise.all(logs.map((l) => l.flush()));
  }
  // one handle for the lock, four in the pool
  assert.ok(fs.peakOpenHandles <= 5, `peak ${fs.peakOpenHandles} handles`);
  assert.ok(storage.openHandles <= 4);
  await Promise.all(logs.map((l) => l.close()));
  // Old history is read back through the pool after releaseData().
  const reopened = await Promise.all(repos.map((r) => storage.openLog(r)));
  for (const [i, log] of reopened.entries()) {
    const frames = [...log.frames];
    log.releaseData!();
    const last = log.read!(frames[4], frames[5]);
    assert.equal(new TextDecoder().decode(last), `${i}:2`);
  }
  assert.ok(fs.peakOpenHandles <= 6, `peak ${fs.peakOpenHandles} handles`);
  await Promise.all(reopened.map((l) => l.close()));
  await storage.close();
  assert.equal(fs.openHandles, 0);
});

Deno.test("a repository whose close() failed stays open: db.flush() writes its commits once space returns, and it closes then", async () => {
  const fs = new FaultyFileSystem();
  const db = await openOn(fs);
  create(db, 0, 2);
  await db.flush();
  fs.capacity = fs.usedBytes;
  create(db, 2, 4);
  await assert.rejects(db.close("/todo/a"), isStorageError("ENOSPC", FILE));
  assertItems(db, 4, "after the failed close");
  fs.capacity = Infinity;
  await db.flush();
  const durable = await openOn(fs.restart("lose"));
  assertItems(durable, 4, "after db.flush(), before any close");
  await durable.close();
  await db.close().catch(() => {}); // its storage was restarted under it
});
