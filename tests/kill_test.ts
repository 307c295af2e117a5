import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { Rng, tempDir, testSeed, TODO } from "./_helpers.ts";

const ROUNDS = Number(Deno.env.get("CAPRA_KILL_ROUNDS") ?? 15);

Deno.test(`SIGKILL at random moments loses no flushed commit (${ROUNDS} kills)`, async () => {
  const seed = testSeed("kill");
  const rng = new Rng(seed);
  await using dir = await tempDir();
  const writer = new URL("./fixtures/writer.ts", import.meta.url).pathname;
  let next = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", writer, dir.path, String(next)],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let flushed = -1, buffer = "";
    const reader = child.stdout.getReader();
    const dec = new TextDecoder();
    const waitMs = 300 + rng.int(700);
    const deadline = Date.now() + waitMs + 10_000;
    let killAt = Infinity;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += dec.decode(value);
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const l of lines) flushed = Number(l.split(" ")[1]);
      if (flushed >= 0 && killAt === Infinity) {
        killAt = Date.now() + rng.int(waitMs);
      }
      if (Date.now() >= killAt) break;
    }
    child.kill("SIGKILL");
    // Drain whatever the child printed before it died: those flushes resolved too.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += dec.decode(value);
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const l of lines) flushed = Number(l.split(" ")[1]);
    }
    await child.status;
    assert.ok(flushed > next, `round ${round}: the writer made progress`);
    const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
    await db.open("/todo/kill");
    for (let i = 0; i < flushed; i++) {
      const item = db.item(`/todo/kill/k${i}`);
      assert.ok(item, `round ${round}: flushed k${i} survives (seed ${seed})`);
      assert.equal(item.get("n"), i);
    }
    next = db.keys("/todo/kill").length;
    await db.close();
  }
});
