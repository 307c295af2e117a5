/**
 * Garbage collection changes nothing a user can see: seeded random histories over days
 * of virtual time on three replicas, one of which compacts (once or twice, at random
 * cut-offs) while an uncompacted twin receives exactly what it receives. After every
 * step, the compacted replica's heads and values equal the twin's, through later
 * edits, deliveries and merges; at the end everyone exchanges everything and agrees.
 *
 * The histories stay within the documented guarantee, that peers which synced within
 * the window still merge: every commit newer than the cut-off descends from all of its
 * item's commits older than the cut-off (its writer had synced since; a peer that had
 * not holds an expired session, the retention being at least the session lifetime),
 * and before a compaction every replica gets everything older than the cut-off, so
 * nothing it sends later is older than the horizon. The collector may compact while some
 * of its commits wait for a parent that has not arrived: they keep waiting, and join when
 * it comes. Everything comes from the seed (key pairs, one virtual clock), so CAPRA_SEED
 * replays a failure exactly.
 */
import assert from "node:assert/strict";
import { EVERYTHING, Rng, snapshot, testSeed } from "./_helpers.ts";
import { observe, randomChange } from "./_edits.ts";
import { OracleNet, type Replica, VirtualClock } from "./_replicas.ts";

const REPO = "/all/gcr";
const KEYS = ["g1", "g2", "g3", "g4"];
const HOUR = 3_600_000;
const CASES = Number(Deno.env.get("CAPRA_GC_CASES") ?? 150);

/** Delivers `ids` from `from` to `to`, and to the twin whenever `to` is the collector. */
async function send(
  net: OracleNet,
  from: Replica,
  to: Replica,
  ids: readonly string[],
): Promise<void> {
  const [collector, , , twin] = net.replicas;
  const records = await net.records(from, ids);
  await net.ingest(to, ids, records);
  if (to === collector) await net.ingest(twin, ids, records);
}

/**
 * True when every commit at or after `cutoffTs` descends from all commits of its item
 * older than `cutoffTs` (see the module doc).
 */
function withinWindow(net: OracleNet, cutoffTs: number): boolean {
  const commits = [...net.model.commits.values()];
  return commits.every((c) =>
    c.ts < cutoffTs ||
    commits.every((o) =>
      o.key !== c.key || o.ts >= cutoffTs ||
      net.model.ancestry(c.id).has(o.id)
    )
  );
}

/** The latest cut-off at or before `wantedTs` that keeps the history within the window. */
function cutoffAtOrBefore(net: OracleNet, wantedTs: number): number {
  const candidates = [...net.model.commits.values()].map((c) => c.ts)
    .filter((ts) => ts < wantedTs).sort((a, b) => b - a);
  for (const ts of [wantedTs, ...candidates]) {
    if (withinWindow(net, ts)) return ts;
  }
  return 0;
}

/** Everyone gets everything. */
async function exchangeAll(net: OracleNet, writers: readonly Replica[]) {
  for (let round = 0; round < 2; round++) {
    for (const from of writers) {
      for (const to of writers) {
        if (to !== from) await send(net, from, to, await idsOf(from));
      }
    }
  }
}

async function idsOf(r: Replica): Promise<string[]> {
  const repo = r.db.repository(REPO);
  await repo.flush();
  return repo.commitIds();
}

/** The collector's heads and values equal the twin's, for every key. */
function assertSameAsTwin(net: OracleNet, context: string): void {
  const [collector, , , twin] = net.replicas;
  for (const key of net.keys) {
    const a = collector.db.item(`${REPO}/${key}`);
    const b = twin.db.item(`${REPO}/${key}`);
    const where = `${context}, item ${key}`;
    assert.equal(!a, !b, `${where}: exists on both or neither`);
    if (!a || !b) continue;
    assert.deepEqual(
      [...a.heads].sort(),
      [...b.heads].sort(),
      `${where}: heads`,
    );
    assert.equal(snapshot(a), snapshot(b), `${where}: value`);
  }
}

async function runCase(seed: number): Promise<{ dropped: number }> {
  const rng = new Rng(seed);
  const clock = new VirtualClock();
  const start = clock.now;
  const net = await OracleNet.open({
    seed,
    repo: REPO,
    schemas: [EVERYTHING],
    schemaOf: () => EVERYTHING,
    clock,
    // The collector's clock is the cut-off's reference; the twin shares it.
    skewsMs: [0, rng.int(2000) - 1000, rng.int(2000) - 1000, 0],
    minRetentionMs: HOUR,
  });
  const [collector, p1, p2, twin] = net.replicas;
  const writers = [collector, p1, p2];
  let dropped = 0;
  let compactions = 1 + rng.int(2);
  try {
    const steps = 40 + rng.int(60);
    for (let s = 0; s < steps; s++) {
      const roll = rng.next();
      if (roll < 0.5) {
        const r = rng.pick(writers);
        const key = rng.pick(KEYS);
        const id = net.write(
          r,
          key,
          randomChange(rng, observe(r.db.item(`${REPO}/${key}`))),
        );
        if (id && r === collector) await send(net, collector, twin, [id]);
      } else if (roll < 0.65) {
        const [from, to] = rng.shuffle([...writers]);
        const all = await idsOf(from);
        await send(net, from, to, rng.shuffle(all.filter(() => rng.bool())));
      } else if (roll < 0.75) {
        // A full sync of one replica: it gets what everyone has.
        const to = rng.pick(writers);
        for (const from of writers) {
          if (from !== to) await send(net, from, to, await idsOf(from));
        }
      } else if (roll < 0.82) {
        await exchangeAll(net, writers); // everyone online for a moment
      } else if (roll < 0.95 || compactions === 0) {
        clock.advance(rng.int(8 * HOUR));
      } else if (clock.now - start > 2 * HOUR && net.model.commits.size > 15) {
        compactions--;
        const wanted = (clock.now - HOUR - rng.int(clock.now - start - HOUR)) *
          1024;
        const cutoffTs = cutoffAtOrBefore(net, wanted);
        if (cutoffTs === 0) continue;
        // compact() takes a retention: the cut-off, rounded down to a millisecond.
        const retainMs = clock.now - Math.floor(cutoffTs / 1024);
        // Everyone synced within the window: holds everything older than the cut-off.
        for (const from of writers) {
          const old = (await idsOf(from)).filter((id) =>
            net.model.commits.get(id)!.ts < cutoffTs
          );
          for (const to of writers) {
            if (to !== from) await send(net, from, to, old);
          }
        }
        assertSameAsTwin(net, `seed ${seed}, before compaction ${s}`);
        const result = await collector.db.compact(REPO, { retainMs });
        dropped += result.droppedCommits;
      }
      assertSameAsTwin(net, `seed ${seed}, step ${s}`);
    }
    await exchangeAll(net, writers);
    assertSameAsTwin(net, `seed ${seed}, after the full exchange`);
    for (const key of net.keys) {
      const want = snapshot(twin.db.item(`${REPO}/${key}`)!);
      for (const r of writers) {
        assert.equal(snapshot(r.db.item(`${REPO}/${key}`)!), want, key);
      }
    }
    return { dropped };
  } finally {
    await net.close();
  }
}

Deno.test(`compaction at random cut-offs: values, heads and later merges equal an uncompacted twin's (${CASES} seeded histories)`, async () => {
  const seed = testSeed("gc random");
  const rng = new Rng(seed);
  let dropped = 0;
  for (let c = 0; c < CASES; c++) {
    const caseSeed = rng.int(2 ** 31);
    try {
      dropped += (await runCase(caseSeed)).dropped;
    } catch (e) {
      console.error(
        `gc case ${c} failed: case seed ${caseSeed} (run seed ${seed}; CAPRA_SEED=${seed} replays the run)`,
      );
      throw e;
    }
  }
  console.log(`gc random: ${dropped} commits collected in ${CASES} histories`);
  if (CASES >= 50) assert.ok(dropped > CASES, "compactions collected history");
});
