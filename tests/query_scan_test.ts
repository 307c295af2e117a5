import assert from "node:assert/strict";
import { openDatabase, SCAN_SLICE_MS } from "../mod.ts";
import { TODO } from "./_helpers.ts";

const REPO = "/todo/big";
const N = 100_000;

async function bigDb() {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  await db.open(REPO);
  for (let i = 0; i < N; i++) {
    db.create(`${REPO}/k${i}`, "todo", { text: `t${i}`, n: i });
  }
  return db;
}

Deno.test("query scan: yields to the event loop, loses no change made meanwhile, stops on close", async () => {
  const db = await bigDb();
  let timerFired = false;
  let timerDuringScan = false;
  let scanDone = false;
  setTimeout(() => {
    timerFired = true;
    timerDuringScan = !scanDone;
  }, 0);

  let inspected = 0;
  const q = db.query({
    source: REPO,
    predicate: (i) => {
      inspected++;
      // Slow enough that the scan surely spans several slices on any machine.
      const end = performance.now() + 0.0005;
      while (performance.now() < end) { /* busy */ }
      return (i.get("n") as number) % 2 === 0;
    },
    sortBy: "n",
  });
  const ready = q.ready.then(() => scanDone = true);

  // Writes made while the scan runs, on items before and after the scan position.
  let written = false;
  const writer = (async () => {
    while (inspected < N / 2) {
      await new Promise((r) => setTimeout(r, SCAN_SLICE_MS));
    }
    assert.ok(!scanDone);
    db.item(`${REPO}/k0`)!.delete();
    db.item(`${REPO}/k1`)!.set("n", -4); // odd → even, already scanned
    db.item(`${REPO}/k${N - 2}`)!.set("n", 1); // not scanned yet, leaves
    db.create(`${REPO}/new`, "todo", { text: "new", n: -2 });
    written = true;
  })();
  await ready;
  await writer;
  assert.ok(timerFired && timerDuringScan, "a timer fired during the scan");
  assert.ok(written);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(q.results[0].path, `${REPO}/k1`);
  assert.equal(q.results[1].path, `${REPO}/new`);
  assert.ok(!q.has(`${REPO}/k0`));
  assert.ok(!q.has(`${REPO}/k${N - 2}`));
  assert.equal(q.count, N / 2); // -k0 +k1 -k99998 +new
  q.close();

  // Closing mid-scan stops the scan, resolves ready and leaves no listener.
  const q2 = db.query({
    source: REPO,
    predicate: (i) => (i.get("n") as number) % 3 === 0,
  });
  await new Promise((r) => setTimeout(r, 0));
  q2.close();
  await q2.ready;
  assert.equal(q2.count, 0);
  assert.equal(db.repository(REPO).listenerCount, 0);
  await db.close();
});
