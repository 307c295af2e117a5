/**
 * One behaviour suite for every {@link Storage}: memory, file and (bundled into Chromium
 * by the browser test) IndexedDB. Each implementation supplies a harness that can reopen
 * the same data and damage a log's raw bytes. The checks use no Deno or Node API so the
 * same code runs in a browser; {@link storageConformance} registers them with `Deno.test`.
 *
 * @module
 */

import type { RepoPath } from "../lib/path.ts";
import { encodeFrame } from "../lib/storage/frames.ts";
import type { RepoLog, Storage } from "../lib/storage/storage.ts";

/** A storage under test plus the hooks the suite needs. */
export interface StorageHarness {
  /** A fresh, empty storage. */
  readonly storage: Storage;
  /** Closes `storage` (already-closed is fine) and opens the same data again. */
  reopen(): Promise<Storage>;
  /** Appends raw bytes to a repository's log while the storage is closed. */
  appendRaw(repo: RepoPath, bytes: Uint8Array): Promise<void>;
  /** Removes everything the harness created. */
  dispose(): Promise<void>;
}

/** Makes a fresh harness per check. */
export type StorageHarnessFactory = () => Promise<StorageHarness>;

const REPO_A = "/todo/alpha" as RepoPath;
const REPO_B = "/note/beta" as RepoPath;
/** Bytes of garbage used to simulate a torn tail. */
const TORN_TAIL_BYTES = 7;

/** Minimal platform-neutral assertions (the suite also runs in browsers). */
const assert = {
  equal(actual: unknown, expected: unknown, what = "value"): void {
    if (actual !== expected) {
      throw new Error(`${what}: expected ${expected}, got ${actual}`);
    }
  },
  deepEqual(actual: unknown, expected: unknown, what = "value"): void {
    const a = JSON.stringify(
      actual instanceof Uint8Array ? [...actual] : actual,
    );
    const e = JSON.stringify(
      expected instanceof Uint8Array ? [...expected] : expected,
    );
    if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
  },
};

function payload(i: number): Uint8Array {
  return new TextEncoder().encode(`record-${i}-${"x".repeat(i % 50)}`);
}

function payloadsOf(log: RepoLog): string[] {
  const out: string[] = [];
  for (let i = 0; i < log.frames.length; i += 2) {
    out.push(
      new TextDecoder().decode(
        log.data.subarray(log.frames[i], log.frames[i + 1]),
      ),
    );
  }
  return out;
}

async function writeRecords(
  storage: Storage,
  repo: RepoPath,
  from: number,
  to: number,
): Promise<void> {
  const log = await storage.openLog(repo);
  for (let i = from; i < to; i++) log.append(encodeFrame(payload(i)));
  await log.flush();
  await log.close();
}

function expected(from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) {
    out.push(new TextDecoder().decode(payload(i)));
  }
  return out;
}

/** One named behaviour check. */
export interface StorageCheck {
  readonly title: string;
  run(h: StorageHarness): Promise<void>;
}

/** Every check of the suite, in order. */
export const STORAGE_CHECKS: StorageCheck[] = [];
const check = (title: string, run: (h: StorageHarness) => Promise<void>) =>
  void STORAGE_CHECKS.push({ title, run });

/** Runs one check on a fresh harness, disposing it afterwards. */
export async function runStorageCheck(
  c: StorageCheck,
  factory: StorageHarnessFactory,
): Promise<void> {
  const h = await factory();
  try {
    await c.run(h);
  } finally {
    await h.dispose();
  }
}

/** Registers the storage behaviour checks for one implementation with `Deno.test`. */
export function storageConformance(
  name: string,
  factory: StorageHarnessFactory,
): void {
  for (const c of STORAGE_CHECKS) {
    Deno.test(
      `storage conformance (${name}): ${c.title}`,
      () => runStorageCheck(c, factory),
    );
  }
}

check("a new log is empty and leaves no repository", async (h) => {
  const log = await h.storage.openLog(REPO_A);
  assert.equal(log.frames.length, 0);
  assert.equal(log.recovery, undefined);
  await log.close();
  await h.storage.close();
});

check("append, flush, reopen keeps every record in order", async (h) => {
  await writeRecords(h.storage, REPO_A, 0, 20);
  await writeRecords(h.storage, REPO_A, 20, 25);
  const again = await h.reopen();
  const log = await again.openLog(REPO_A);
  assert.deepEqual(payloadsOf(log), expected(0, 25));
  assert.equal(log.recovery, undefined);
  await log.close();
  await again.close();
});

check("flush resolves only after earlier appends are readable", async (h) => {
  const log = await h.storage.openLog(REPO_A);
  log.append(encodeFrame(payload(1)));
  const first = log.flush();
  log.append(encodeFrame(payload(2)));
  await first;
  await log.flush();
  await log.close();
  const again = await h.reopen();
  const reread = await again.openLog(REPO_A);
  assert.deepEqual(payloadsOf(reread), expected(1, 3));
  await reread.close();
  await again.close();
});

check("a torn tail is cut at the end of the last record", async (h) => {
  await writeRecords(h.storage, REPO_A, 0, 5);
  await h.storage.close();
  const torn = encodeFrame(payload(99)).subarray(0, TORN_TAIL_BYTES);
  await h.appendRaw(REPO_A, torn);
  let s = await h.reopen();
  let log = await s.openLog(REPO_A);
  assert.deepEqual(payloadsOf(log), expected(0, 5));
  assert.equal(log.recovery?.cutBytes, TORN_TAIL_BYTES);
  // Appending after the repair yields a clean log.
  log.append(encodeFrame(payload(5)));
  await log.close();
  s = await h.reopen();
  log = await s.openLog(REPO_A);
  assert.deepEqual(payloadsOf(log), expected(0, 6));
  assert.equal(log.recovery, undefined);
  await log.close();
  await s.close();
});

check(
  "metadata is absent, then replaced whole, and survives reopen",
  async (h) => {
    assert.equal(await h.storage.readMeta("settings"), null);
    await h.storage.writeMeta("settings", new Uint8Array([1, 2, 3]));
    await h.storage.writeMeta("settings", new Uint8Array([4, 5]));
    const read = await h.storage.readMeta("settings");
    assert.deepEqual(read, new Uint8Array([4, 5]));
    read![0] = 9; // callers get a copy
    assert.deepEqual(
      await h.storage.readMeta("settings"),
      new Uint8Array([4, 5]),
    );
    const again = await h.reopen();
    assert.deepEqual(
      await again.readMeta("settings"),
      new Uint8Array([4, 5]),
    );
    assert.equal(await again.readMeta("other"), null);
    await again.close();
  },
);

check("listRepos names every written repository, sorted", async (h) => {
  await writeRecords(h.storage, REPO_A, 0, 1);
  await writeRecords(h.storage, REPO_B, 0, 1);
  assert.deepEqual(await h.storage.listRepos(), [REPO_B, REPO_A]);
  const again = await h.reopen();
  assert.deepEqual(await again.listRepos(), [REPO_B, REPO_A]);
  await again.close();
});

check(
  "read() serves open-time records after releaseData(), also while appending",
  async (h) => {
    await writeRecords(h.storage, REPO_A, 0, 40);
    const log = await h.storage.openLog(REPO_A);
    if (!log.read || !log.releaseData) {
      await log.close(); // optional: the storage keeps `data` instead
      return;
    }
    const frames = [...log.frames];
    const want = payloadsOf(log);
    log.releaseData();
    log.append(encodeFrame(payload(40)));
    const got: string[] = [];
    for (let i = 0; i < frames.length; i += 2) {
      got.push(new TextDecoder().decode(log.read(frames[i], frames[i + 1])));
    }
    assert.deepEqual(got, want, "records read back");
    await log.flush();
    assert.deepEqual(
      new TextDecoder().decode(log.read(frames[20], frames[21])),
      want[10],
      "read after an append",
    );
    await log.close();
    const again = await h.storage.openLog(REPO_A);
    assert.deepEqual(payloadsOf(again), expected(0, 41), "reopened");
    await again.close();
    await h.storage.close();
  },
);
