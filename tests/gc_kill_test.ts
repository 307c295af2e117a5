import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { EVERYTHING, Rng, tempDir, testSeed } from "./_helpers.ts";

const ROUNDS = Number(Deno.env.get("CAPRA_GC_KILL_ROUNDS") ?? 8);

Deno.test(`SIGKILL during compaction leaves the old or the new log, never a mix (${ROUNDS} kills)`, async () => {
  const seed = testSeed("gc kill");
  const rng = new Rng(seed);
  await using dir = await tempDir();
  const child = new URL("./fixtures/compactor.ts", import.meta.url).pathname;
  for (let round = 0; round < ROUNDS; round++) {
    const p = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, dir.path],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let flushed = 0, buf = "";
    const stopAt = Date.now() + 200 + rng.int(800);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) flushed = Number(l.split(" ")[1]);
      if (flushed > 0 && Date.now() >= stopAt) break;
    }
    p.kill("SIGKILL");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) flushed = Number(l.split(" ")[1]);
    }
    await p.status;
    assert.ok(flushed > 0, `round ${round}: the child made progress`);
    const db = await openDatabase({ dir: dir.path, schemas: [EVERYTHING] });
    await db.open("/all/gc");
    assert.deepEqual(
      db.recoveries.filter((r) => r.skipped.length),
      [],
      "no damage inside the log",
    );
    const n = db.item("/all/gc/a")!.get("n") as number;
    assert.ok(
      n >= flushed,
      `round ${round}: flushed value ${flushed} kept, found ${n} (seed ${seed})`,
    );
    for (let k = 0; k < 20; k++) {
      assert.equal(db.item(`/all/gc/k${k}`)!.get("body"), "y".repeat(200));
    }
    await db.close();
  }
});
