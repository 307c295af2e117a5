/**
 * THE invariant: replicas holding the same commits compute the same value, whatever the
 * order the commits arrived in, and that value is the one the merge rules give. Seeded
 * random concurrent edits of every field type on several replicas, exchanged partially,
 * out of order, duplicated, delayed and landing while the receiver writes; every write
 * and every final value is checked against the reference model (tests/_model.ts), and
 * at the end every replica must have identical heads and identical values.
 *
 * Everything comes from the seed (key pairs, one virtual clock with a skew per replica,
 * when each delayed delivery lands), so a printed seed replays a failure exactly.
 */
import assert from "node:assert/strict";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";
import {
  observe,
  randomChange,
  REPEATED_CHARACTERS,
  type TextSource,
  uniqueCharacters,
} from "./_edits.ts";
import { OracleNet, type Replica, VirtualClock } from "./_replicas.ts";

const REPO = "/all/r";
const KEYS = ["i1", "i2"];
const CASES = Number(Deno.env.get("CAPRA_CONVERGENCE_CASES") ?? 1000);

/** A delivery chosen now that lands at a later step. */
interface Delayed {
  readonly to: Replica;
  readonly ids: string[];
  readonly records: Uint8Array[];
}

/** A random part of `from`'s commits, shuffled, with duplicates on purpose. */
async function parcel(
  net: OracleNet,
  from: Replica,
  to: Replica,
  rng: Rng,
  fraction: number,
): Promise<Delayed> {
  const repo = from.db.repository(REPO);
  await repo.flush(); // commitIds() lists signed commits only
  const all = repo.commitIds().sort();
  const chosen = rng.shuffle(all.filter(() => rng.bool(fraction)));
  for (let i = 0; i < chosen.length / 4; i++) chosen.push(rng.pick(all));
  const ids = rng.shuffle(chosen);
  return { to, ids, records: await net.records(from, ids) };
}

function randomWrite(net: OracleNet, rng: Rng, text: TextSource): void {
  const r = rng.pick(net.replicas);
  const key = rng.pick(KEYS);
  const current = observe(r.db.item(`${REPO}/${key}`));
  net.write(r, key, randomChange(rng, current, text));
}

/** What the model checked over all cases so far. */
const totals = { merges: 0, unclean: 0, strictText: 0, weakText: 0 };

/** One seeded case; returns the digest of every replica's commits, heads and values. */
async function runCase(seed: number): Promise<string> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const n = 3 + rng.int(2);
  // Half the cases insert few, repeated characters (hard for the text diff), half
  // never the same twice (so the model checks text merges strictly).
  const uniqueText = rng.bool();
  const text = uniqueText ? uniqueCharacters() : REPEATED_CHARACTERS;
  const net = await OracleNet.open({
    seed,
    repo: REPO,
    schemas: [EVERYTHING],
    schemaOf: () => EVERYTHING,
    uniqueText,
    clock,
    skewsMs: Array.from({ length: n }, () => rng.int(2000) - 1000),
  });
  try {
    const [first, second] = net.replicas;
    net.write(first, "i1", {
      kind: "create",
      schema: "all",
      data: {
        s: "start",
        body: uniqueText
          ? Array.from({ length: 5 }, () => text.char(rng)).join("")
          : "hello",
      },
    });
    const p = await parcel(net, first, second, rng, 1);
    await net.ingest(p.to, p.ids, p.records);
    const delayed: Delayed[] = [];
    const steps = 10 + rng.int(20);
    for (let s = 0; s < steps; s++) {
      clock.advance(rng.int(4)); // ties and HLC counters happen
      const r = rng.pick(net.replicas);
      const roll = rng.next();
      if (roll < 0.5) randomWrite(net, rng, text);
      else if (roll < 0.8) {
        const to = rng.pick(net.replicas.filter((x) => x !== r));
        const p = await parcel(net, r, to, rng, rng.next());
        const when = rng.int(3);
        if (when === 0) await net.ingest(to, p.ids, p.records);
        else if (when === 1) delayed.push(p); // lands at a later step
        else {
          // Lands while the receiver (and others) write.
          const landing = net.ingest(to, p.ids, p.records);
          for (let w = rng.int(3); w >= 0; w--) randomWrite(net, rng, text);
          await landing;
        }
      } else {
        for (const d of delayed.splice(0)) {
          await net.ingest(d.to, d.ids, d.records);
        }
      }
    }
    for (const d of delayed) await net.ingest(d.to, d.ids, d.records);
    await net.check("before the full exchange");
    // Full exchange, in random order, until everyone has everything.
    for (let round = 0; round < 2; round++) {
      for (const a of rng.shuffle([...net.replicas])) {
        for (const b of rng.shuffle([...net.replicas])) {
          if (a === b) continue;
          const p = await parcel(net, a, b, rng, 1);
          await net.ingest(b, p.ids, p.records);
        }
      }
    }
    await net.check("after the full exchange");
    const ref = net.replicas[0].db;
    const refIds = ref.repository(REPO).commitIds().sort();
    for (const key of net.keys) {
      const a = ref.item(`${REPO}/${key}`);
      for (const other of net.replicas.slice(1)) {
        assert.deepEqual(
          other.db.repository(REPO).commitIds().sort(),
          refIds,
          "same commits",
        );
        const b = other.db.item(`${REPO}/${key}`);
        assert.equal(!b, !a, `${key} exists on all or none`);
        if (!a || !b) continue;
        assert.deepEqual([...b.heads].sort(), [...a.heads].sort(), key);
        assert.equal(snapshot(b), snapshot(a), `${key}: identical values`);
      }
    }
    const stats = net.model.stats;
    totals.merges += stats.merges;
    totals.unclean += stats.unclean;
    totals.strictText += stats.strictText;
    totals.weakText += stats.weakText;
    return await net.digest();
  } finally {
    await net.close();
  }
}

Deno.test(`randomized convergence against the model: ${CASES} cases, 3-4 replicas, every field type`, async () => {
  const seed = testSeed("convergence");
  const rng = new Rng(seed);
  for (let c = 0; c < CASES; c++) {
    const caseSeed = rng.int(2 ** 31);
    try {
      await runCase(caseSeed);
    } catch (e) {
      console.error(
        `convergence case ${c} failed: case seed ${caseSeed} (run seed ${seed}; CAPRA_SEED=${seed} replays the run)`,
      );
      throw e;
    }
  }
  console.log("model checks:", totals);
  if (CASES >= 100) {
    assert.ok(totals.merges > CASES, `merges checked: ${totals.merges}`);
    assert.ok(totals.strictText > 0, "text merges checked strictly");
  }
});

Deno.test("a convergence seed replays exactly: same seed, same commits, heads and values on every replica", async () => {
  const rng = new Rng(testSeed("convergence replay"));
  for (let c = 0; c < 5; c++) {
    const seed = rng.int(2 ** 31);
    const first = await runCase(seed);
    assert.equal(await runCase(seed), first, `case seed ${seed}`);
    assert.notEqual(await runCase(seed + 1), first, "the digest sees the case");
  }
});
