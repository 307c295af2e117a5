import assert from "node:assert/strict";
import { IdSet } from "../idset/id_set.ts";
import {
  decodeMessage,
  encodeMessage,
  initiate,
  MAX_MESSAGE_BYTES,
  MAX_RANGES_PER_MESSAGE,
  MAX_REPLY_BYTES,
  MIN_REPLY_BYTES,
  PROTOCOL_VERSION,
  type ReconcileMessage,
  type ReconcileOptions,
  type ReconcileRange,
  respond,
} from "./reconcile.ts";
import { toHex } from "../idset/id_bytes.ts";
import { hexDifference, pickSeed, SeededRandom } from "../idset/_test_utils.ts";

const SEED = pickSeed(Deno.env.get("CAPRA_SEED"));
console.log(`reconcile_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`);

/** Most messages an exchange may take before the test calls it a hang. */
const MAX_TEST_MESSAGES = 10_000;

interface Side {
  readonly set: IdSet;
  readonly have: Uint8Array[];
  readonly need: Uint8Array[];
}

interface Exchange {
  readonly a: Side;
  readonly b: Side;
  /** Messages sent (the first is the initiator's). */
  readonly messages: number;
  readonly bytesAtoB: number;
  readonly bytesBtoA: number;
  readonly largestMessage: number;
  /** CPU milliseconds of the slowest respond() call. */
  readonly slowestRespondMs: number;
}

/** Runs a full exchange over an encoding "wire"; A initiates. */
function reconcile(
  setA: IdSet,
  setB: IdSet,
  options?: ReconcileOptions,
): Exchange {
  const a: Side = { set: setA, have: [], need: [] };
  const b: Side = { set: setB, have: [], need: [] };
  let wire: Uint8Array | null = encodeMessage(initiate(setA, options));
  let messages = 1;
  let bytesAtoB = wire.length;
  let bytesBtoA = 0;
  let largestMessage = wire.length;
  let slowestRespondMs = 0;
  let receiver = b;
  while (wire !== null) {
    assert.ok(messages < MAX_TEST_MESSAGES, "the exchange does not terminate");
    const t0 = performance.now();
    const result = respond(receiver.set, decodeMessage(wire), options);
    slowestRespondMs = Math.max(slowestRespondMs, performance.now() - t0);
    receiver.have.push(...result.have);
    receiver.need.push(...result.need);
    wire = result.reply === null ? null : encodeMessage(result.reply);
    if (wire !== null) {
      messages++;
      largestMessage = Math.max(largestMessage, wire.length);
      if (receiver === a) bytesAtoB += wire.length;
      else bytesBtoA += wire.length;
    }
    receiver = receiver === a ? b : a;
  }
  return {
    a,
    b,
    messages,
    bytesAtoB,
    bytesBtoA,
    largestMessage,
    slowestRespondMs,
  };
}

/** Asserts each side learned exactly the true differences, each id once. */
function assertExactDifferences(
  x: Exchange,
  idsA: Uint8Array[],
  idsB: Uint8Array[],
) {
  const onlyA = hexDifference(idsA, idsB);
  const onlyB = hexDifference(idsB, idsA);
  const sorted = (ids: Uint8Array[]) => ids.map(toHex).sort();
  assert.deepEqual(sorted(x.a.have), onlyA, "A's have");
  assert.deepEqual(sorted(x.a.need), onlyB, "A's need");
  assert.deepEqual(sorted(x.b.have), onlyB, "B's have");
  assert.deepEqual(sorted(x.b.need), onlyA, "B's need");
}

/** Two id lists with a shared part and parts only one side holds. */
function makePair(
  rng: SeededRandom,
  shared: number,
  onlyA: number,
  onlyB: number,
) {
  const ids = rng.ids(shared + onlyA + onlyB);
  const common = ids.slice(0, shared);
  return {
    idsA: [...common, ...ids.slice(shared, shared + onlyA)],
    idsB: [...common, ...ids.slice(shared + onlyA)],
  };
}

Deno.test("reconcile: random pairs of up to 5,000 ids learn exactly their differences", () => {
  const rng = new SeededRandom(SEED);
  const MAX_SIZE = 5000;
  const shapes = [
    "random",
    "emptyA",
    "emptyB",
    "identical",
    "supersetA",
    "supersetB",
  ];
  for (let trial = 0; trial < 48; trial++) {
    const shape = shapes[trial % shapes.length];
    const size = rng.int(MAX_SIZE + 1);
    const shared = shape === "random" ? rng.int(size + 1) : size;
    let onlyA = rng.int(MAX_SIZE - shared + 1);
    let onlyB = rng.int(MAX_SIZE - shared + 1);
    if (rng.chance(0.3)) onlyA = rng.int(5); // few differences are the common case
    if (rng.chance(0.3)) onlyB = rng.int(5);
    let sizes = [shared, onlyA, onlyB];
    if (shape === "emptyA") sizes = [0, 0, size];
    if (shape === "emptyB") sizes = [0, size, 0];
    if (shape === "identical") sizes = [size, 0, 0];
    if (shape === "supersetA") sizes = [shared, onlyA, 0];
    if (shape === "supersetB") sizes = [shared, 0, onlyB];
    const { idsA, idsB } = makePair(rng, sizes[0], sizes[1], sizes[2]);
    const options: ReconcileOptions | undefined = rng.chance(0.3)
      ? { maxBytes: 1024 + rng.int(8192), maxRanges: 64 + rng.int(200) }
      : undefined;
    const x = reconcile(new IdSet(idsA), new IdSet(idsB), options);
    try {
      assertExactDifferences(x, idsA, idsB);
    } catch (e) {
      console.log(`failed: seed ${SEED}, trial ${trial} (${shape}, ${sizes})`);
      throw e;
    }
  }
});

Deno.test("reconcile: small message budgets defer ranges and still converge exactly", () => {
  const rng = new SeededRandom(SEED ^ 0x1234567);
  const options = { maxBytes: 1024, maxRanges: 64 };
  for (
    const [shared, onlyA, onlyB] of [[4000, 700, 300], [0, 3000, 0], [
      2000,
      0,
      2500,
    ]]
  ) {
    const { idsA, idsB } = makePair(rng, shared, onlyA, onlyB);
    const x = reconcile(new IdSet(idsA), new IdSet(idsB), options);
    assertExactDifferences(x, idsA, idsB);
    // A soft budget: it may be exceeded by about one deferred range.
    assert.ok(
      x.largestMessage <= options.maxBytes + 64,
      `largest ${x.largestMessage}`,
    );
  }
});

Deno.test("reconcile: an empty pair and a one-id pair", () => {
  const empty = reconcile(new IdSet(), new IdSet());
  assert.equal(empty.messages, 1);
  assert.equal(empty.bytesAtoB, 4); // version, end bound, id-list mode, zero count
  const rng = new SeededRandom(SEED + 7);
  const [id] = rng.ids(1);
  const x = reconcile(new IdSet(), new IdSet([id]));
  assertExactDifferences(x, [], [id]);
});

function bigPair(diffs: number) {
  const rng = new SeededRandom(SEED + diffs);
  const ids = rng.ids(100_000 + diffs);
  const base = ids.slice(0, 100_000);
  const extra = ids.slice(100_000);
  // Split the differences between the sides.
  const idsA = [...base, ...extra.filter((_, i) => i % 2 === 0)];
  const idsB = [...base, ...extra.filter((_, i) => i % 2 === 1)];
  return { idsA, idsB };
}

function report(label: string, x: Exchange) {
  console.log(
    `${label}: ${x.messages} messages, ${x.bytesAtoB} B A→B + ${x.bytesBtoA} B B→A = ${
      x.bytesAtoB + x.bytesBtoA
    } B, largest ${x.largestMessage} B, slowest respond ${
      x.slowestRespondMs.toFixed(1)
    } ms`,
  );
}

Deno.test("reconcile: identical sets of 100,000 ids settle in one round trip under 1 KB", () => {
  const { idsA } = bigPair(0);
  const x = reconcile(new IdSet(idsA), new IdSet(idsA));
  report("in sync, 100k", x);
  assert.equal(x.messages, 1); // the peer's reply is null: nothing to reconcile
  assert.ok(x.bytesAtoB <= 1024, `${x.bytesAtoB} bytes`);
  assert.equal(x.a.have.length + x.b.have.length, 0);
});

Deno.test("reconcile: one extra id among 100,000 costs under 4 KB and O(log n) rounds", () => {
  const rng = new SeededRandom(SEED + 11);
  const ids = rng.ids(100_001);
  const idsA = ids.slice(0, 100_000);
  const x = reconcile(new IdSet(idsA), new IdSet(ids));
  report("1 diff in 100k", x);
  assertExactDifferences(x, idsA, ids);
  assert.ok(
    x.bytesAtoB + x.bytesBtoA <= 4096,
    `${x.bytesAtoB + x.bytesBtoA} bytes`,
  );
  // log16(100,000 / 32) ≈ 3 split levels, then the id list and the difference.
  assert.ok(x.messages <= 8, `${x.messages} messages`);
});

Deno.test("reconcile: 100 and 1,000 differences among 100,000 ids", () => {
  for (const diffs of [100, 1000]) {
    const { idsA, idsB } = bigPair(diffs);
    const x = reconcile(new IdSet(idsA), new IdSet(idsB));
    report(`${diffs} diffs in 100k`, x);
    assertExactDifferences(x, idsA, idsB);
    // Per difference: a split (16 fingerprints of ~21 B) on each of ~3 levels below the
    // shared top, then an id list of at most 16 ids: ~1.5 KB alone, less when shared.
    assert.ok(x.bytesAtoB + x.bytesBtoA <= 1024 * diffs);
  }
});

Deno.test("reconcile: respond is a pure function of the set and the message", () => {
  const rng = new SeededRandom(SEED + 13);
  const { idsA, idsB } = makePair(rng, 3000, 40, 60);
  const a = new IdSet(idsA);
  const b = new IdSet(idsB);
  const first = respond(b, initiate(a));
  const again = respond(b, initiate(a));
  assert.deepEqual(again, first);
  const second = respond(a, first.reply!);
  assert.deepEqual(
    respond(a, decodeMessage(encodeMessage(first.reply!))),
    second,
  );
});

Deno.test("reconcile: a huge peer message is deferred within the hard limits", () => {
  // As many ranges as a message may hold, alternating mismatched fingerprints and skips:
  // echoing them one for one after splitting the first would exceed the range limit, so
  // the rest is deferred as one range.
  const rng = new SeededRandom(SEED + 17);
  const set = new IdSet(rng.ids(20_000));
  const ranges: ReconcileRange[] = [];
  for (let r = 0; r < MAX_RANGES_PER_MESSAGE; r++) {
    // The first range holds half our ids, so answering it is a split into 16 ranges.
    const upper = Uint8Array.of(0x80 | (r >> 8), r & 0xff, 1);
    ranges.push(
      r % 2 === 1
        ? { mode: "skip", upper }
        : { mode: "fingerprint", upper, fingerprint: new Uint8Array(16) },
    );
  }
  const message: ReconcileMessage = { version: PROTOCOL_VERSION, ranges };
  const { reply } = respond(set, message, { maxBytes: MIN_REPLY_BYTES });
  assert.ok(reply !== null);
  const bytes = encodeMessage(reply); // throws if a hard limit is broken
  assert.ok(bytes.length <= MIN_REPLY_BYTES, `${bytes.length} bytes`);
  assert.equal(reply.ranges.at(-1)?.upper, ranges.at(-1)?.upper);

  // Half as many ranges can be echoed one for one: the reply stays within the hard limits
  // though it is as big as the peer's message.
  const half = respond(set, {
    version: PROTOCOL_VERSION,
    ranges: ranges.slice(0, 8192),
  });
  assert.ok(half.reply !== null);
  assert.ok(encodeMessage(half.reply).length <= MAX_MESSAGE_BYTES);
  assert.ok(half.reply.ranges.length > 8000);
});

Deno.test("reconcile: options outside their limits are refused", () => {
  const set = new IdSet();
  assert.throws(
    () => initiate(set, { maxBytes: MIN_REPLY_BYTES - 1 }),
    RangeError,
  );
  assert.throws(
    () => initiate(set, { maxBytes: MAX_REPLY_BYTES + 1 }),
    RangeError,
  );
  assert.throws(
    () => respond(set, initiate(set), { maxRanges: 1 }),
    RangeError,
  );
  assert.throws(
    () => respond(set, { version: 7 } as unknown as ReconcileMessage),
    RangeError,
  );
});
