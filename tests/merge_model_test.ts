/**
 * Model-based test of the merge rules (fast-check): random histories of writes,
 * partial deliveries and clock ticks on 2-3 replicas, every value checked against the
 * reference model of tests/_model.ts. Covers every field type, text with strict checks
 * (the generator never inserts a character twice), custom field merges (a counter and
 * an order-sensitive fold) and a schema-level merge. fast-check shrinks a failure to a
 * minimal history; CAPRA_SEED replays the run.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Schema } from "../mod.ts";
import { EVERYTHING, Rng } from "./_helpers.ts";
import { seedFor } from "./_seed.ts";
import {
  type Change,
  observe,
  randomChange,
  type TextSource,
  uniqueCharacters,
} from "./_edits.ts";
import type { ModelState } from "./_model.ts";
import { OracleNet, VirtualClock } from "./_replicas.ts";

const REPO = "/doc/m";
const RUNS = Number(Deno.env.get("CAPRA_MODEL_RUNS") ?? 400);

/** A deterministic, order-sensitive fold: both changed → "ours+theirs". */
function joinChanged(b: unknown, o: unknown, t: unknown): unknown {
  if (o === t || t === b) return o;
  if (o === b) return t;
  return `${o ?? ""}+${t ?? ""}`.slice(-40);
}

/** EVERYTHING's fields, a counter and an order-sensitive custom merge. */
const DOC: Schema = {
  ns: "doc",
  version: 1,
  fields: {
    ...EVERYTHING.fields,
    count: {
      type: "number",
      merge:
        ((b: number | undefined, o: number | undefined, t?: number) =>
          (o ?? 0) + (t ?? 0) - (b ?? 0)) as never,
    },
    trail: { type: "string", merge: joinChanged as never },
  },
};

/** A schema merged as a whole: the larger `a`, and both `b`s when both changed. */
const WHOLE: Schema = {
  ns: "whole",
  version: 1,
  fields: { a: { type: "number" }, b: { type: "string" } },
  merge: (base, ours, theirs) => ({
    a: Math.max(Number(ours?.a ?? 0), Number(theirs?.a ?? 0)),
    b: joinChanged(base?.b, ours?.b, theirs?.b) as string,
  }),
};

const KEYS = ["k1", "k2", "w"] as const;
const schemaOf = (key: string) => key === "w" ? WHOLE : DOC;

/** One history under test: the replicas, the model, and the text source. */
interface Real {
  readonly net: OracleNet;
  readonly clock: VirtualClock;
  readonly text: TextSource;
  /** Counter for unique string values. */
  tokens: number;
}

function change(
  real: Real,
  rng: Rng,
  key: string,
  current: ModelState | undefined,
): Change {
  const token = () => `t${real.tokens++}`;
  if (key === "w") {
    if (!current) {
      return { kind: "create", schema: "whole", data: { a: 0, b: token() } };
    }
    const roll = rng.next();
    if (roll < 0.1) return { kind: "delete" };
    if (roll < 0.2 && current.deleted) {
      return { kind: "create", schema: "whole", data: { a: 1, b: token() } };
    }
    return {
      kind: "update",
      changes: rng.bool() ? { a: rng.int(10) } : { b: token() },
    };
  }
  if (current && rng.bool(0.25)) {
    const count = Number(current.data.count ?? 0) + 1 + rng.int(3);
    return {
      kind: "update",
      changes: rng.bool() ? { count } : { trail: token() },
    };
  }
  const c = randomChange(rng, current, real.text);
  return c.kind === "create" ? { ...c, schema: "doc" } : c;
}

type Cmd = fc.AsyncCommand<object, Real>;

const write = (replica: number, key: string, seed: number): Cmd => ({
  check: () => true,
  async run(_, real) {
    const r = real.net.replicas[replica % real.net.replicas.length];
    const current = observe(r.db.item(`${REPO}/${key}`));
    real.net.write(r, key, change(real, new Rng(seed), key, current));
    await real.net.check(`after ${this}`);
  },
  toString: () => `write(r${replica}, ${key}, ${seed})`,
});

const deliver = (from: number, to: number, seed: number): Cmd => ({
  check: () => true,
  async run(_, real) {
    const { net } = real;
    const a = net.replicas[from % net.replicas.length];
    const b = net.replicas[to % net.replicas.length];
    if (a === b) return;
    const repo = a.db.repository(REPO);
    await repo.flush();
    const rng = new Rng(seed);
    const share = rng.pick([1, 1, 0.5, 0.25]);
    const ids = rng.shuffle(repo.commitIds().filter(() => rng.bool(share)));
    await net.ingest(b, ids, await net.records(a, ids));
    await net.check(`after ${this}`);
  },
  toString: () => `deliver(r${from} → r${to}, ${seed})`,
});

const tick = (ms: number): Cmd => ({
  check: () => true,
  run(_, real) {
    real.clock.advance(ms);
    return Promise.resolve();
  },
  toString: () => `tick(${ms} ms)`,
});

const totals = {
  runs: 0,
  merges: 0,
  unclean: 0,
  virtualBases: 0,
  deleteAgainstLive: 0,
  strictText: 0,
};

Deno.test(`merge rules against the model (fast-check, ${RUNS} histories, shrinking)`, async () => {
  const seed = seedFor("merge model");
  // Unbiased: fast-check favours small numbers, which would repeat the same edits.
  const seeds = fc.noBias(fc.nat());
  const writes = fc.tuple(fc.nat(2), fc.constantFrom(...KEYS), seeds)
    .map(([r, k, s]) => write(r, k, s));
  const commands = fc.commands([
    writes,
    writes, // twice as likely as a delivery or a tick
    fc.tuple(fc.nat(2), fc.nat(2), seeds).map(([a, b, s]) => deliver(a, b, s)),
    fc.nat(3).map(tick),
  ], { maxCommands: 40, size: "max" });
  const skews = fc.array(fc.integer({ min: -1000, max: 1000 }), {
    minLength: 2,
    maxLength: 3,
  });
  await fc.assert(
    fc.asyncProperty(skews, commands, async (skewsMs, cmds) => {
      const clock = new VirtualClock();
      const net = await OracleNet.open({
        seed,
        repo: REPO,
        schemas: [DOC, WHOLE],
        schemaOf,
        uniqueText: true,
        clock,
        skewsMs,
      });
      const real: Real = {
        net,
        clock,
        text: uniqueCharacters(),
        tokens: 0,
      };
      try {
        await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
        // Everyone gets everything: the merged values, too, follow the rules.
        for (const a of net.replicas) {
          for (const b of net.replicas) {
            if (a === b) continue;
            const repo = a.db.repository(REPO);
            await repo.flush();
            const ids = repo.commitIds();
            await net.ingest(b, ids, await net.records(a, ids));
          }
        }
        await net.check("after the full exchange");
        totals.runs++;
        totals.merges += net.model.stats.merges;
        totals.unclean += net.model.stats.unclean;
        totals.virtualBases += net.model.stats.virtualBases;
        totals.deleteAgainstLive += net.model.stats.deleteAgainstLive;
        totals.strictText += net.model.stats.strictText;
      } finally {
        await net.close();
      }
    }),
    { seed, numRuns: RUNS },
  );
  console.log("model checks:", totals);
  // The histories exercised what the test claims to check.
  assert.ok(totals.merges > RUNS, `merges checked: ${totals.merges}`);
  assert.ok(totals.deleteAgainstLive > 0, "delete against live edits");
  assert.ok(totals.strictText > 0, "text merges checked strictly");
  // Criss-cross merges and heads sharing newer history, checked exactly (not loosely).
  assert.ok(totals.unclean > 0, "merges whose heads share newer history");
  assert.ok(totals.virtualBases > 0, "merges over a virtual base");
});
