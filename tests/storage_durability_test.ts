/**
 * Durability of the file storage under simulated power cuts (the fault-injecting file
 * system keeps unsynced bytes and directory entries apart and loses them, or tears
 * them, at the cut). These tests fail when the fsync of a batch, the directory fsync
 * after a log file is created or a file is renamed, or the write-temp-then-rename
 * discipline of metadata and compaction is removed.
 */

import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import {
  FaultyFileSystem,
  PowerCutError,
  type PowerCutPolicy,
} from "../lib/storage/faulty_fs.ts";
import { FileStorage } from "../lib/storage/file_storage.ts";
import { encodeFrame } from "../lib/storage/frames.ts";
import type { RepoLog } from "../lib/storage/storage.ts";
import type { RepoPath } from "../lib/path.ts";
import { seedFor } from "./_seed.ts";
import { Rng, TODO } from "./_helpers.ts";

const DIR = "/data";
const A = "/todo/a" as RepoPath;
const B = "/todo/b" as RepoPath;
const enc = new TextEncoder(), dec = new TextDecoder();
/** Every power-cut outcome a check is run against (torn ones with several seeds). */
const OUTCOMES: { policy: PowerCutPolicy; seed: number }[] = [
  { policy: "lose", seed: 0 },
  { policy: "keep", seed: 0 },
  ...[1, 2, 3, 4, 5, 6].map((seed) => ({ policy: "torn" as const, seed })),
];

const frame = (s: string) => encodeFrame(enc.encode(s));
const open = (fs: FaultyFileSystem) => FileStorage.open(DIR, { fs });

function recordsOf(log: RepoLog): string[] {
  const out: string[] = [];
  for (let i = 0; i < log.frames.length; i += 2) {
    out.push(dec.decode(log.data.subarray(log.frames[i], log.frames[i + 1])));
  }
  return out;
}

async function recordsAfterCut(
  fs: FaultyFileSystem,
  repo: RepoPath,
  policy: PowerCutPolicy = "lose",
  seed = 0,
): Promise<string[]> {
  const storage = await open(fs.restart(policy, { seed }));
  const log = await storage.openLog(repo);
  const out = recordsOf(log);
  await log.close();
  await storage.close();
  return out;
}

async function write(
  storage: FileStorage,
  repo: RepoPath,
  records: string[],
): Promise<RepoLog> {
  const log = await storage.openLog(repo);
  for (const r of records) log.append(frame(r));
  await log.flush();
  return log;
}

Deno.test("a flushed batch survives a power cut (the fsync of the log file)", async () => {
  const fs = new FaultyFileSystem();
  const s = await open(fs);
  await (await write(s, A, ["a0", "a1"])).close();
  await s.close();
  const s2 = await open(fs);
  await write(s2, A, ["a2", "a3"]); // flushed, not closed: then the power goes
  assert.deepEqual(await recordsAfterCut(fs, A), ["a0", "a1", "a2", "a3"]);
});

Deno.test("a new repository's file survives a power cut after its first flush (the directory fsync after create)", async () => {
  const fs = new FaultyFileSystem();
  const s = await open(fs);
  await write(s, A, ["a0"]);
  await write(s, B, ["b0", "b1"]);
  const after = await open(fs.restart("lose"));
  assert.deepEqual(await after.listRepos(), [A, B]);
  await after.close();
  assert.deepEqual(await recordsAfterCut(fs, B), ["b0", "b1"]);
});

Deno.test("a replaced log survives a power cut once replaceLog resolves, and so do the records appended after it (the directory fsync after rename)", async () => {
  for (const appendAfter of [false, true]) {
    const fs = new FaultyFileSystem();
    const s = await open(fs);
    await (await write(s, A, ["old0", "old1", "old2"])).close();
    await s.replaceLog(A, [frame("new0")]);
    if (appendAfter) await write(s, A, ["new1"]); // lands in the new file only
    assert.deepEqual(
      await recordsAfterCut(fs, A),
      appendAfter ? ["new0", "new1"] : ["new0"],
    );
  }
});

Deno.test("written metadata survives a power cut (the directory fsync after rename)", async () => {
  const fs = new FaultyFileSystem();
  const s = await open(fs);
  await s.writeMeta("settings", new Uint8Array([1]));
  await s.writeMeta("settings", new Uint8Array([2, 2]));
  const after = await open(fs.restart("lose"));
  assert.deepEqual(await after.readMeta("settings"), new Uint8Array([2, 2]));
  await after.close();
});

/**
 * Runs `change` with the power cut before its k-th operation, for every k, and checks
 * what every outcome of the cut leaves: `check(found, completed)`.
 */
async function atEveryCrashPoint(
  prepare: (s: FileStorage) => Promise<void>,
  change: (s: FileStorage) => Promise<void>,
  read: (s: FileStorage) => Promise<string>,
  check: (found: string, completed: boolean, where: string) => void,
): Promise<number> {
  const base = new FaultyFileSystem();
  const s = await open(base);
  await prepare(s);
  await s.close();
  for (let k = 0;; k++) {
    const fs = base.restart("keep");
    const storage = await open(fs);
    fs.cutPowerAfter(k);
    let completed = false;
    try {
      await change(storage);
      completed = !fs.isPowerCut;
    } catch (e) {
      if (!(e instanceof Error && /Power cut/.test(e.message))) throw e;
    }
    for (const { policy, seed } of OUTCOMES) {
      const after = await open(fs.restart(policy, { seed }));
      const where = `cut before operation ${k} (${
        fs.trace.slice(-1)[0] ?? "none"
      }), ${policy} ${seed}`;
      check(await read(after), completed, where);
      await after.close();
    }
    if (completed) return k;
  }
}

Deno.test("metadata is replaced atomically at every crash point: the old or the new value, never a mix (write temp, fsync, rename)", async () => {
  const OLD = "old value ".repeat(20), NEW = "new value!".repeat(30);
  const points = await atEveryCrashPoint(
    (s) => s.writeMeta("key", enc.encode(OLD)),
    (s) => s.writeMeta("key", enc.encode(NEW)),
    async (s) => dec.decode((await s.readMeta("key"))!),
    (found, completed, where) => {
      if (completed) assert.equal(found, NEW, `${where}: completed`);
      else assert.ok(found === OLD || found === NEW, `${where}: ${found}`);
    },
  );
  assert.ok(points >= 5, `${points} crash points`);
});

Deno.test("a log is replaced atomically at every crash point (compaction: write temp, fsync, rename)", async () => {
  const old = Array.from({ length: 30 }, (_, i) => `old record ${i}`);
  const next = Array.from({ length: 12 }, (_, i) => `compacted ${i}`);
  await atEveryCrashPoint(
    async (s) => await (await write(s, A, old)).close(),
    (s) => s.replaceLog(A, next.map(frame)),
    async (s) => {
      const log = await s.openLog(A);
      const found = JSON.stringify(recordsOf(log));
      assert.equal(log.recovery, undefined, "no repair needed");
      await log.close();
      return found;
    },
    (found, completed, where) => {
      const [o, n] = [JSON.stringify(old), JSON.stringify(next)];
      if (completed) assert.equal(found, n, `${where}: completed`);
      else assert.ok(found === o || found === n, `${where}: ${found}`);
    },
  );
});

const CRASH_TRIALS = Number(Deno.env.get("CAPRA_CRASH_TRIALS") ?? 150);

Deno.test(`crash loop: ${CRASH_TRIALS} seeded workloads cut at random points keep every flushed record, in order, with no damage but a torn tail`, async () => {
  const seed = seedFor("storage crash loop");
  const rng = new Rng(seed);
  const repos = ["/t/a", "/t/b", "/t/c"] as RepoPath[];
  for (let trial = 0; trial < CRASH_TRIALS; trial++) {
    const fs = new FaultyFileSystem({
      seed: rng.int(2 ** 31),
      shortWriteRate: rng.bool() ? 0.3 : 0,
    });
    const acked = new Map<RepoPath, string[]>(repos.map((r) => [r, []]));
    const written = new Map<RepoPath, string[]>(repos.map((r) => [r, []]));
    let replacing: { repo: RepoPath; list: string[] } | null = null;
    let meta = { acked: "", maybe: "" };
    const logs = new Map<RepoPath, RepoLog>();
    let storage: FileStorage | null = null;
    try {
      storage = await open(fs);
      fs.cutPowerAfter(1 + rng.int(120));
      for (let step = 0; step < 60; step++) {
        const repo = rng.pick(repos);
        const op = rng.int(10);
        if (op < 6) {
          const log = logs.get(repo) ?? await storage.openLog(repo);
          logs.set(repo, log);
          for (let i = rng.int(4); i >= 0; i--) {
            const r = `${repo}#${written.get(repo)!.length}`;
            written.get(repo)!.push(r);
            log.append(frame(r));
          }
          if (rng.bool(0.6)) {
            const upTo = written.get(repo)!.length;
            await log.flush();
            acked.set(repo, written.get(repo)!.slice(0, upTo));
          }
        } else if (op < 8) {
          const log = logs.get(repo);
          logs.delete(repo);
          await log?.close();
          acked.set(repo, [...written.get(repo)!]);
          const list = acked.get(repo)!.filter(() => rng.bool(0.7));
          list.push(`${repo}@${step}`);
          replacing = { repo, list };
          await storage.replaceLog(repo, list.map(frame));
          acked.set(repo, [...list]);
          written.set(repo, [...list]);
          replacing = null;
        } else {
          meta.maybe = `meta ${step}`;
          await storage.writeMeta("m", enc.encode(meta.maybe));
          meta = { acked: meta.maybe, maybe: meta.maybe };
        }
      }
    } catch (e) {
      if (!(e instanceof Error && /Power cut/.test(e.message))) {
        throw new Error(`trial ${trial} (seed ${seed}): ${e}`, { cause: e });
      }
    }
    const policy = rng.pick(["lose", "keep", "torn"] as const);
    const what = `trial ${trial} (seed ${seed}, ${policy}, after ${
      fs.trace.slice(-1)[0]
    })`;
    const after = fs.restart(policy, { seed: rng.int(2 ** 31) });
    const s = await open(after);
    for (const repo of repos) {
      const log = await s.openLog(repo);
      const found = recordsOf(log);
      assert.deepEqual(
        log.recovery?.skipped ?? [],
        [],
        `${what}: ${repo} damage`,
      );
      const a = acked.get(repo)!, w = written.get(repo)!;
      const isPrefixOf = (p: string[], of: string[]) =>
        p.length <= of.length && p.every((x, i) => x === of[i]);
      if (replacing?.repo === repo) {
        assert.ok(
          JSON.stringify(found) === JSON.stringify(a) ||
            JSON.stringify(found) === JSON.stringify(replacing.list),
          `${what}: ${repo} is the old or the new log: ${found}`,
        );
      } else {
        assert.ok(
          isPrefixOf(a, found),
          `${what}: ${repo} keeps ${a}: ${found}`,
        );
        assert.ok(
          isPrefixOf(found, w),
          `${what}: ${repo} wrote ${w}: ${found}`,
        );
      }
      // The repaired log takes appends and reopens clean.
      log.append(frame("after"));
      await log.close();
      const again = await s.openLog(repo);
      assert.equal(again.recovery, undefined, `${what}: ${repo} clean`);
      assert.deepEqual(recordsOf(again), [...found, "after"]);
      await again.close();
    }
    const m = await s.readMeta("m");
    const value = m ? dec.decode(m) : "";
    assert.ok(
      value === meta.acked || value === meta.maybe,
      `${what}: metadata ${value}`,
    );
    await s.close();
    await storage?.close().catch(() => {});
  }
});

const DB_TRIALS = Number(Deno.env.get("CAPRA_CRASH_DB_TRIALS") ?? 25);

Deno.test(`crash loop through the database: ${DB_TRIALS} power cuts lose no flushed item`, async () => {
  const seed = seedFor("database crash loop");
  const rng = new Rng(seed);
  for (let trial = 0; trial < DB_TRIALS; trial++) {
    let fs = new FaultyFileSystem({
      seed: rng.int(2 ** 31),
      shortWriteRate: 0.2,
    });
    /** per key: the value at the last resolved flush, and the latest written */
    const acked = new Map<string, number>(), latest = new Map<string, number>();
    for (let life = 0; life < 3; life++) {
      fs.cutPowerAfter(5 + rng.int(150));
      const storage = await open(fs).catch(() => null);
      if (storage) {
        const db = await openDatabase({ storage, schemas: [TODO] }).catch(
          () => null,
        );
        try {
          if (db) {
            await db.open("/todo/c");
            for (let step = 0; step < 40; step++) {
              const key = `k${rng.int(12)}`;
              const n = (latest.get(key) ?? 0) + 1;
              latest.set(key, n);
              const item = db.item(`/todo/c/${key}`);
              if (item) item.set("n", n);
              else db.create(`/todo/c/${key}`, "todo", { text: key, n });
              if (rng.bool(0.3)) {
                const snapshot = new Map(latest);
                await db.flush();
                for (const [k, v] of snapshot) acked.set(k, v);
              }
            }
          }
        } catch (e) {
          if (!(e instanceof PowerCutError || /Power cut/.test(String(e)))) {
            throw e;
          }
        } finally {
          await db?.close().catch(() => {});
          await storage.close().catch(() => {});
        }
      }
      fs = fs.restart(rng.pick(["lose", "keep", "torn"] as const), {
        seed: rng.int(2 ** 31),
        shortWriteRate: 0.2,
      });
      const check = await openDatabase({
        storage: await open(fs),
        schemas: [TODO],
      });
      await check.open("/todo/c");
      for (const [key, n] of acked) {
        const found = check.item(`/todo/c/${key}`)?.get("n") as number;
        assert.ok(
          found >= n && found <= latest.get(key)!,
          `trial ${trial} life ${life} (seed ${seed}): ${key} is ${found}, flushed ${n}`,
        );
      }
      for (const key of check.keys("/todo/c")) {
        latest.set(key, check.item(`/todo/c/${key}`)!.get("n") as number);
      }
      for (const [key] of latest) {
        if (!check.item(`/todo/c/${key}`)) latest.delete(key);
      }
      for (const [key, n] of latest) acked.set(key, n);
      await check.close();
    }
  }
});
