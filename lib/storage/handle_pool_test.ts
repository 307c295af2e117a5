import assert from "node:assert/strict";
import type { FileHandle } from "./fs.ts";
import {
  DEFAULT_MAX_OPEN_FILES,
  defaultMaxOpenFiles,
  HandlePool,
  MAX_DEFAULT_OPEN_FILES,
} from "./handle_pool.ts";

/** A handle that only records whether it was closed. */
function fakeHandle(name: string, log: string[]): FileHandle {
  const no = () => {
    throw new Error("not used");
  };
  return {
    write: no,
    writeSync: no,
    read: no,
    readAtSync: no,
    truncate: no,
    truncateSync: no,
    sync: no,
    syncSync: no,
    syncData: no,
    stat: no,
    tryLock: no,
    close: () => void log.push(`close ${name}`),
  };
}

Deno.test("the pool closes the least recently used idle handle first", async () => {
  const log: string[] = [];
  const pool = new HandlePool(2);
  const use = (k: string) =>
    pool.use(
      k,
      () => Promise.resolve(fakeHandle(k, log)),
      () => Promise.resolve(),
    );
  await use("a");
  await use("b");
  await use("a"); // a is now the most recent
  await use("c"); // evicts b
  assert.deepEqual(log, ["close b"]);
  assert.equal(pool.size, 2);
  assert.equal(pool.opened, 3);
  pool.closeAll();
  assert.deepEqual(log.sort(), ["close a", "close b", "close c"]);
  await assert.rejects(use("d"), /closed/);
});

Deno.test("a pinned handle is never closed; users wait for a free slot", async () => {
  const log: string[] = [];
  const pool = new HandlePool(2);
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const opened: string[] = [];
  const open = (k: string) => () => {
    opened.push(k);
    return Promise.resolve(fakeHandle(k, log));
  };
  const a = pool.use("a", open("a"), () => held);
  const b = pool.use("b", open("b"), () => held);
  const c = pool.use("c", open("c"), () => Promise.resolve("c done"));
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(opened, ["a", "b"], "c waits: both handles are in use");
  assert.deepEqual(log, []);
  release();
  assert.equal(await c, "c done");
  await Promise.all([a, b]);
  assert.equal(log.length, 1, "one idle handle made room for c");
  assert.ok(pool.size <= 2);
  // A synchronous user never waits: it may pass the capacity for a moment.
  pool.useSync(
    "d",
    () => fakeHandle("d", log),
    () => assert.ok(pool.size <= 3),
  );
  assert.ok(pool.size <= 2);
  pool.closeAll();
});

Deno.test("the capacity is checked", () => {
  assert.throws(() => new HandlePool(1), RangeError);
  assert.throws(() => new HandlePool(2.5), /Invalid maxOpenFiles 2.5/);
});

Deno.test("the default pool is a quarter of the descriptor limit, within bounds", () => {
  assert.equal(defaultMaxOpenFiles(1024), 256);
  assert.equal(defaultMaxOpenFiles(20_000), MAX_DEFAULT_OPEN_FILES);
  assert.equal(defaultMaxOpenFiles(4), 2);
  assert.equal(defaultMaxOpenFiles(null), DEFAULT_MAX_OPEN_FILES);
});
