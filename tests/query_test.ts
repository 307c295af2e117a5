import assert from "node:assert/strict";
import { type Database, openDatabase, type Query, QueryError } from "../mod.ts";
import { TODO } from "./_helpers.ts";

const NOTE = {
  ns: "note",
  version: 1,
  fields: { text: { type: "string" as const }, n: { type: "number" as const } },
};
const REPO = "/todo/q";

async function openDb(): Promise<Database> {
  const db = await openDatabase({ memory: true, schemas: [TODO, NOTE] });
  await db.open(REPO);
  return db;
}

/** Resolves on the query's next results notification. */
function nextChange(q: Query<unknown>): Promise<readonly string[]> {
  return new Promise((resolve) => {
    const off = q.onResultsChanged((c) => {
      off();
      resolve(c.paths);
    });
  });
}

const paths = (q: Query<unknown>) => q.results.map((i) => i.path);
const tick = () => new Promise<void>((r) => queueMicrotask(r));

Deno.test("query: predicate, schema filter, sort by field with ties by path, limit", async () => {
  const db = await openDb();
  db.create(`${REPO}/c`, "todo", { text: "c", n: 2 });
  db.create(`${REPO}/a`, "todo", { text: "a", n: 2 });
  db.create(`${REPO}/b`, "todo", { text: "b", n: 1, done: true });
  db.create(`${REPO}/d`, "todo", { text: "d", n: 3 });
  db.create(`${REPO}/e`, "note", { text: "e", n: 0 });
  db.create(`${REPO}/f`, "todo", { text: "f", n: 0 }).delete();

  const all = db.query({ source: REPO });
  const todos = db.query({ source: REPO, schema: "todo", sortBy: "n" });
  const open = db.query({
    source: REPO,
    schema: "todo",
    predicate: (i) => i.get("done") === false,
    sortBy: "n",
    descending: true,
  });
  const top2 = db.query({
    source: REPO,
    schema: "todo",
    sortBy: "n",
    limit: 2,
  });
  await Promise.all([all.ready, todos.ready, open.ready, top2.ready]);

  assert.deepEqual(
    paths(all),
    ["a", "b", "c", "d", "e"].map((k) => `${REPO}/${k}`),
  );
  assert.deepEqual(
    paths(todos),
    ["b", "a", "c", "d"].map((k) => `${REPO}/${k}`),
  );
  assert.deepEqual(paths(open), ["d", "a", "c"].map((k) => `${REPO}/${k}`));
  assert.deepEqual(paths(top2), [`${REPO}/b`, `${REPO}/a`]);
  assert.equal(top2.count, 2);
  assert.ok(top2.has(`${REPO}/a`));
  assert.ok(!top2.has(`${REPO}/c`), "beyond the limit");
  assert.ok(!all.has(`${REPO}/f`), "deleted items are never results");
  await db.close();
});

Deno.test("query: sortBy key function gets ctx; a missing repository is opened", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  const q = db.query({
    source: "/todo/later",
    sortBy: (i, ctx) => Math.abs((i.get("n") as number) - ctx.target),
    ctx: { target: 10 },
  });
  await q.ready;
  assert.equal(q.count, 0);
  db.create("/todo/later/x", "todo", { text: "x", n: 3 });
  db.create("/todo/later/y", "todo", { text: "y", n: 12 });
  await nextChange(q);
  assert.deepEqual(paths(q), ["/todo/later/y", "/todo/later/x"]);
  await db.close();
});

Deno.test("query: live local writes, one notification per batch", async () => {
  const db = await openDb();
  const q = db.query({
    source: REPO,
    predicate: (i) => i.get("done") === false,
    sortBy: "text",
  });
  await q.ready;
  let notifications = 0;
  q.onResultsChanged(() => notifications++);
  const x = db.create(`${REPO}/x`, "todo", { text: "x" });
  const y = db.create(`${REPO}/y`, "todo", { text: "b" });
  db.create(`${REPO}/z`, "todo", { text: "z", done: true });
  await tick();
  assert.equal(notifications, 1, "three writes, one batch");
  assert.deepEqual(paths(q), [`${REPO}/y`, `${REPO}/x`]);

  y.set("text", "zz");
  assert.deepEqual(
    paths(q),
    [`${REPO}/x`, `${REPO}/y`],
    "reads apply queued changes",
  );
  x.set("done", true);
  await tick();
  assert.deepEqual(paths(q), [`${REPO}/y`]);
  y.delete();
  const changed = await nextChange(q);
  assert.deepEqual(changed, [`${REPO}/y`]);
  assert.equal(q.count, 0);
  assert.equal(notifications, 3);
  await db.close();
});

async function exchange(from: Database, to: Database): Promise<void> {
  const r = from.repository(REPO);
  await r.flush();
  const records = r.commitIds().map((id) => r.commitRecord(id)!);
  const result = await to.repository(REPO).ingest(records);
  assert.deepEqual(result.rejected, []);
}

Deno.test("query: commits from another replica update results; schema filter holds", async () => {
  const a = await openDb();
  const b = await openDb();
  a.trustSession(b.session);
  b.trustSession(a.session);
  const q = a.query({ source: REPO, schema: "todo", sortBy: "n" });
  await q.ready;
  const t1 = b.create(`${REPO}/t1`, "todo", { text: "t1", n: 5 });
  b.create(`${REPO}/t2`, "todo", { text: "t2", n: 1 });
  b.create(`${REPO}/n1`, "note", { text: "note", n: 0 });
  let changed = nextChange(q);
  await exchange(b, a);
  await changed;
  assert.deepEqual(paths(q), [`${REPO}/t2`, `${REPO}/t1`]);

  t1.set("n", 0);
  changed = nextChange(q);
  await exchange(b, a);
  await changed;
  assert.deepEqual(paths(q), [`${REPO}/t1`, `${REPO}/t2`]);

  t1.delete();
  changed = nextChange(q);
  await exchange(b, a);
  await changed;
  assert.deepEqual(paths(q), [`${REPO}/t2`]);
  await a.close();
  await b.close();
});

Deno.test("query: a change re-evaluates only the touched item and moves it in O(log n)", async () => {
  const db = await openDb();
  const N = 4096;
  const items = [];
  for (let i = 0; i < N; i++) {
    items.push(db.create(`${REPO}/k${i}`, "todo", { text: `t${i}`, n: i }));
  }
  let keyCalls = 0;
  const q = db.query({
    source: REPO,
    predicate: (i) => (i.get("n") as number) % 2 === 0,
    sortBy: (i) => {
      keyCalls++;
      return i.get("n") as number;
    },
  });
  await q.ready;
  assert.equal(q.count, N / 2);
  const before = q.stats;
  assert.equal(keyCalls, N / 2);

  items[10].set("n", N * 2); // moves from the front to the end
  await tick();
  assert.equal(q.results[q.count - 1].path, `${REPO}/k10`);
  const after = q.stats;
  assert.equal(after.predicateCalls - before.predicateCalls, 1);
  assert.equal(keyCalls, N / 2 + 1);
  const log2 = Math.ceil(Math.log2(N));
  const comparisons = after.comparisons - before.comparisons;
  assert.ok(
    comparisons <= 3 * (log2 + 1),
    `${comparisons} comparisons for one change (remove + insert + read)`,
  );

  items[11].set("n", -2); // odd → even: enters at the front
  items[12].set("n", 13); // even → odd: leaves
  await tick();
  assert.equal(q.stats.predicateCalls - after.predicateCalls, 2);
  assert.equal(q.results[0].path, `${REPO}/k11`);
  assert.ok(!q.has(`${REPO}/k12`));
  await db.close();
});

Deno.test("query: a chained query follows its base and recomputes only what changed", async () => {
  const db = await openDb();
  const items = [];
  for (let i = 0; i < 1000; i++) {
    items.push(db.create(`${REPO}/k${i}`, "todo", { text: `t${i}`, n: i }));
  }
  const open = db.query({
    source: REPO,
    predicate: (i) => i.get("done") === false,
  });
  let calls = 0;
  const small = db.query({
    source: open,
    predicate: (i) => {
      calls++;
      return (i.get("n") as number) < 100;
    },
    sortBy: "n",
    descending: true,
  });
  await small.ready;
  assert.equal(small.count, 100);
  assert.equal(calls, 1000);
  assert.equal(small.results[0].path, `${REPO}/k99`);

  items[5].set("done", true); // leaves the base, so leaves the chain
  await nextChange(small);
  assert.equal(
    calls,
    1000,
    "an item that left the base is dropped unevaluated",
  );
  assert.ok(!small.has(`${REPO}/k5`));
  assert.equal(small.count, 99);

  items[500].set("n", 50); // stays in the base, enters the chain
  items[7].set("text", "edited"); // stays in both
  await nextChange(small);
  assert.equal(calls, 1002);
  assert.ok(small.has(`${REPO}/k500`));

  items[900].set("text", "x"); // the base changes, the chain does not
  await tick();
  await tick();
  assert.equal(calls, 1003);
  assert.equal(small.count, 100);
  await db.close();
});

Deno.test("query: a chain over a limited query follows the window", async () => {
  const db = await openDb();
  const items = [];
  for (let i = 0; i < 10; i++) {
    items.push(db.create(`${REPO}/k${i}`, "todo", { text: `t${i}`, n: i }));
  }
  const top3 = db.query({ source: REPO, sortBy: "n", limit: 3 });
  const chain = db.query({ source: top3, sortBy: "n" });
  await chain.ready;
  assert.deepEqual(paths(chain), [0, 1, 2].map((i) => `${REPO}/k${i}`));
  items[9].set("n", -1); // enters the window, pushes k2 out
  await nextChange(chain);
  assert.deepEqual(paths(chain), [9, 0, 1].map((i) => `${REPO}/k${i}`));
  items[0].delete(); // leaves, k2 slides back in
  await nextChange(chain);
  assert.deepEqual(paths(chain), [9, 1, 2].map((i) => `${REPO}/k${i}`));
  await db.close();
});

Deno.test("query: close and unsubscribe leave no listener behind", async () => {
  const db = await openDb();
  const repo = db.repository(REPO);
  const listenersBefore = repo.listenerCount;
  const base = db.query({ source: REPO });
  const chain = db.query({ source: base });
  await chain.ready;
  assert.equal(repo.listenerCount, listenersBefore + 1);
  assert.equal(base.listenerCount, 1);

  let calls = 0;
  const off = chain.onResultsChanged(() => calls++);
  assert.equal(chain.listenerCount, 1);
  off();
  assert.equal(chain.listenerCount, 0);
  db.create(`${REPO}/a`, "todo", { text: "a" });
  await tick();
  await tick();
  assert.equal(calls, 0, "an unsubscribed listener is not called");
  assert.equal(chain.count, 1);

  chain.onResultsChanged(() => calls++);
  chain.close();
  assert.equal(base.listenerCount, 0, "the chain let go of its base");
  base.close();
  assert.equal(repo.listenerCount, listenersBefore);
  db.create(`${REPO}/b`, "todo", { text: "b" });
  await tick();
  await tick();
  assert.equal(calls, 0);
  assert.equal(base.count, 1, "a closed query ignores further changes");
  await db.close();
});

Deno.test("query: a throwing predicate or sortBy is reported on the query", async () => {
  const db = await openDb();
  db.create(`${REPO}/ok`, "todo", { text: "ok" });
  const errors: QueryError[] = [];
  const bad = db.query({
    source: REPO,
    name: "bad-query",
    predicate: (i) => {
      if (i.get("text") === "boom") throw new Error("predicate exploded");
      return true;
    },
    onError: (e) => errors.push(e),
  });
  const badSort = db.query({
    source: REPO,
    sortBy: (i) => {
      if (i.get("text") === "boom") throw new TypeError("no key");
      return 1;
    },
  });
  const sortErrors: QueryError[] = [];
  badSort.onError((e) => sortErrors.push(e));
  const good = db.query({ source: REPO });
  await Promise.all([bad.ready, badSort.ready, good.ready]);
  assert.equal(bad.error, undefined);

  db.create(`${REPO}/boom`, "todo", { text: "boom" });
  await tick();
  const error = bad.error as QueryError | undefined;
  assert.ok(error instanceof QueryError);
  assert.match(error.message, /bad-query/);
  assert.match(error.message, /\/todo\/q\/boom/);
  assert.match(error.message, /predicate exploded/);
  assert.equal(error.phase, "predicate");
  assert.deepEqual(errors, [error]);
  assert.equal(sortErrors.length, 1);
  assert.match(
    sortErrors[0].message,
    /sortBy threw on \/todo\/q\/boom: no key/,
  );

  assert.deepEqual(paths(bad), [`${REPO}/ok`], "the failing item is left out");
  assert.deepEqual(paths(good), [`${REPO}/boom`, `${REPO}/ok`]);
  db.create(`${REPO}/later`, "todo", { text: "later" });
  await tick();
  assert.equal(bad.count, 2, "the query keeps working");
  await db.flush();
  await db.close();
});

Deno.test("query: invalid options are refused clearly", async () => {
  const db = await openDb();
  assert.throws(() => db.query({ source: REPO, limit: -1 }), RangeError);
  assert.throws(
    () => db.query({ source: REPO, sortBy: 3 as unknown as string }),
    TypeError,
  );
  assert.throws(() => db.query({ source: 7 as unknown as string }), TypeError);
  await db.close();
});
