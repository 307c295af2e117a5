/**
 * THE invariant: replicas holding the same commits compute the same value, whatever the
 * order the commits arrived in. Seeded random concurrent edits of every field type on
 * several replicas, exchanged partially, out of order, duplicated and delayed; at the
 * end every replica must have identical heads and identical values.
 */
import assert from "node:assert/strict";
import { type Database, openDatabase } from "../mod.ts";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";
import { randomEdit } from "./_edits.ts";

const REPO = "/all/r";
const CASES = Number(Deno.env.get("CAPRA_CONVERGENCE_CASES") ?? 1000);

async function deliver(
  from: Database,
  to: Database,
  rng: Rng,
  fraction: number,
) {
  const repo = from.repository(REPO);
  await repo.flush();
  const ids = repo.commitIds();
  const chosen = rng.shuffle(ids.filter(() => rng.bool(fraction)));
  // Duplicates on purpose.
  for (let i = 0; i < chosen.length / 4; i++) chosen.push(rng.pick(ids));
  const records = rng.shuffle(chosen.map((id) => repo.commitRecord(id)!));
  if (!records.length) return;
  const result = await to.repository(REPO).ingest(records);
  assert.deepEqual(result.rejected, [], "honest commits are never rejected");
}

async function runCase(rng: Rng): Promise<void> {
  const n = 3 + rng.int(2);
  const skew = () => rng.int(2000) - 1000;
  const replicas: Database[] = [];
  for (let i = 0; i < n; i++) {
    const offset = skew();
    replicas.push(
      await openDatabase({
        memory: true,
        schemas: [EVERYTHING],
        clock: () => Date.now() + offset,
        random: (b) => {
          for (let j = 0; j < b.length; j++) b[j] = rng.int(256);
        },
      }),
    );
  }
  for (const a of replicas) {
    for (const b of replicas) if (a !== b) a.trustSession(b.session);
    await a.open(REPO);
  }
  const keys = ["i1", "i2"];
  replicas[0].create(`${REPO}/i1`, "all", { s: "start", body: "hello" });
  await deliver(replicas[0], replicas[1], rng, 1);
  const pending: Promise<void>[] = [];
  const steps = 10 + rng.int(20);
  for (let s = 0; s < steps; s++) {
    const r = rng.pick(replicas);
    const roll = rng.next();
    if (roll < 0.55) {
      const key = rng.pick(keys);
      const item = r.item(`${REPO}/${key}`);
      if (item) randomEdit(rng, item);
      else r.create(`${REPO}/${key}`, "all", { s: "new", n: rng.int(3) });
    } else if (roll < 0.85) {
      const to = rng.pick(replicas.filter((x) => x !== r));
      const p = deliver(r, to, rng, rng.next());
      if (rng.bool(0.5)) await p;
      else pending.push(p); // delayed: lands later, interleaved with other work
    } else {
      await Promise.all(pending.splice(0));
    }
  }
  await Promise.all(pending);
  // Full exchange, in random order, until everyone has everything.
  for (let round = 0; round < 2; round++) {
    for (const a of rng.shuffle([...replicas])) {
      for (const b of rng.shuffle([...replicas])) {
        if (a !== b) await deliver(a, b, rng, 1);
      }
    }
  }
  const reference = replicas[0];
  const refIds = reference.repository(REPO).commitIds().sort();
  for (const key of keys) {
    const ref = reference.item(`${REPO}/${key}`);
    for (const other of replicas.slice(1)) {
      assert.deepEqual(
        other.repository(REPO).commitIds().sort(),
        refIds,
        "same commits",
      );
      const it = other.item(`${REPO}/${key}`);
      assert.equal(
        it === undefined,
        ref === undefined,
        `${key} exists on all or none`,
      );
      if (!ref || !it) continue;
      assert.deepEqual(
        [...it.heads].sort(),
        [...ref.heads].sort(),
        `${key}: identical heads`,
      );
      assert.equal(snapshot(it), snapshot(ref), `${key}: identical values`);
    }
  }
  for (const r of replicas) await r.close();
}

Deno.test(`randomized convergence: ${CASES} cases, 3-4 replicas, every field type`, async () => {
  const seed = testSeed("convergence");
  const rng = new Rng(seed);
  for (let c = 0; c < CASES; c++) {
    const caseSeed = rng.int(2 ** 31);
    try {
      await runCase(new Rng(caseSeed));
    } catch (e) {
      console.error(
        `convergence case ${c} failed: case seed ${caseSeed} (run seed ${seed})`,
      );
      throw e;
    }
  }
});
