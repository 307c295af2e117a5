import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { scanFrames } from "../lib/storage/frames.ts";
import { Rng, tempDir, testSeed, TODO } from "./_helpers.ts";

const FILE = "todo.r.capra";

/** Writes `n` items (one record each) and returns the log bytes and record ends. */
async function makeLog(dir: string, n: number) {
  const db = await openDatabase({ dir, schemas: [TODO] });
  await db.open("/todo/r");
  for (let i = 0; i < n; i++) {
    db.create(`/todo/r/k${i}`, "todo", { text: `item ${i}`, n: i });
    await db.flush(); // one batch per item so the order on disk is k0, k1, …
  }
  await db.close();
  const bytes = await Deno.readFile(`${dir}/${FILE}`);
  const scan = scanFrames(bytes);
  // frame starts: record i (after the session record) starts where record i-1 ended
  const ends = scan.frames.filter((_, i) => i % 2 === 1);
  return { bytes, ends };
}

async function reopenWith(dir: string, key: Uint8Array, log: Uint8Array) {
  await Deno.writeFile(`${dir}/session-key.meta`, key, { mode: 0o600 });
  await Deno.writeFile(`${dir}/${FILE}`, log);
  const db = await openDatabase({ dir, schemas: [TODO] });
  await db.open("/todo/r");
  return db;
}

Deno.test("a truncated last record is cut at every byte offset; earlier records survive", async () => {
  await using src = await tempDir();
  const { bytes, ends } = await makeLog(src.path, 6);
  const key = await Deno.readFile(`${src.path}/session-key.meta`);
  const lastStart = ends[ends.length - 2];
  await using work = await tempDir();
  for (let cut = lastStart + 1; cut < bytes.length; cut++) {
    await Deno.remove(work.path, { recursive: true }).catch(() => {});
    await Deno.mkdir(work.path);
    const db = await reopenWith(work.path, key, bytes.slice(0, cut));
    assert.equal(db.recoveries.length, 1, `cut at ${cut}`);
    assert.equal(db.recoveries[0].cutBytes, cut - lastStart);
    assert.deepEqual(db.keys("/todo/r").sort(), ["k0", "k1", "k2", "k3", "k4"]);
    for (let i = 0; i < 5; i++) {
      assert.equal(db.item(`/todo/r/k${i}`)!.get("n"), i);
    }
    // Later appends work and leave a clean log.
    db.create("/todo/r/after", "todo", { text: "after" });
    await db.close();
    const db2 = await openDatabase({ dir: work.path, schemas: [TODO] });
    await db2.open("/todo/r");
    assert.deepEqual(db2.recoveries, []);
    assert.equal(db2.count("/todo/r"), 6);
    await db2.close();
    const preserved = [...Deno.readDirSync(work.path)].filter((e) =>
      e.name.includes(".cut-")
    );
    assert.equal(preserved.length, 1, "the cut bytes are kept beside the file");
    assert.equal(
      Deno.statSync(`${work.path}/${preserved[0].name}`).size,
      cut - lastStart,
    );
  }
});

Deno.test("random byte flips in the tail lose only the damaged records", async () => {
  const seed = testSeed("tail flips");
  const rng = new Rng(seed);
  await using src = await tempDir();
  const { bytes, ends } = await makeLog(src.path, 8);
  const key = await Deno.readFile(`${src.path}/session-key.meta`);
  const recordStart = (i: number) => ends[i]; // ends[0] is the session record
  await using work = await tempDir();
  for (let trial = 0; trial < 60; trial++) {
    const damaged = bytes.slice();
    const tailFrom = recordStart(5); // damage only items k5..k7
    const hits = new Set<number>();
    for (let f = 1 + rng.int(3); f > 0; f--) {
      const at = tailFrom + rng.int(bytes.length - tailFrom);
      damaged[at] ^= 1 + rng.int(255);
      for (let i = 5; i < 8; i++) {
        if (at >= recordStart(i) && at < ends[i + 1]) hits.add(i);
      }
    }
    await Deno.remove(work.path, { recursive: true }).catch(() => {});
    await Deno.mkdir(work.path);
    const db = await reopenWith(work.path, key, damaged);
    const keys = db.keys("/todo/r");
    for (let i = 0; i < 8; i++) {
      if (!hits.has(i)) {
        assert.ok(
          keys.includes(`k${i}`),
          `trial ${trial}: intact k${i} kept (seed ${seed})`,
        );
        assert.equal(db.item(`/todo/r/k${i}`)!.get("text"), `item ${i}`);
      } else {assert.ok(
          !keys.includes(`k${i}`),
          `trial ${trial}: damaged k${i} dropped`,
        );}
    }
    assert.equal(db.recoveries.length, 1, "damage is reported");
    db.create("/todo/r/later", "todo", { text: "later" });
    await db.close();
    const db2 = await openDatabase({ dir: work.path, schemas: [TODO] });
    await db2.open("/todo/r");
    assert.equal(
      db2.item("/todo/r/later")!.get("text"),
      "later",
      "appends after repair work",
    );
    await db2.close();
  }
});
