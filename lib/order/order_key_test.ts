import assert from "node:assert/strict";
import {
  isOrderKey,
  ORDER_KEY_DIGITS,
  orderKeyBetween,
  orderKeyOfNumber,
  orderKeyProblem,
  orderKeysBetween,
  type RandomBytes,
} from "./order_key.ts";
import { orderField, orderKeyAt, orderKeyForMove } from "./list_position.ts";
import { seedFor, uint32Source } from "../../tests/_seed.ts";

function seededBytes(seed: number): RandomBytes {
  const next = uint32Source(seed);
  return (b) => {
    for (let i = 0; i < b.length; i++) b[i] = next() & 0xff;
  };
}

const byCodeUnits = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;

Deno.test("order keys: a list edited at random keeps the model's order", () => {
  const seed = seedFor("order keys random edits");
  const next = uint32Source(seed);
  const random = seededBytes(seed ^ 0x5bd1e995);
  for (let round = 0; round < 40; round++) {
    // The model: item names in list order. The keys must sort into the same order.
    const model: string[] = [];
    const keyOf = new Map<string, string>();
    const sortedKeys = () => model.map((name) => keyOf.get(name)!);
    for (let step = 0; step < 300; step++) {
      const op = next() % 3;
      if (op < 2 || model.length < 2) {
        const at = next() % (model.length + 1);
        const name = `i${round}-${step}`;
        keyOf.set(name, orderKeyAt(sortedKeys(), at, { random }));
        model.splice(at, 0, name);
      } else {
        const from = next() % model.length;
        const to = next() % model.length;
        const key = orderKeyForMove(sortedKeys(), from, to, { random });
        const [name] = model.splice(from, 1);
        model.splice(to, 0, name);
        keyOf.set(name, key);
      }
      const byKey = [...model].sort((a, b) =>
        byCodeUnits(keyOf.get(a)!, keyOf.get(b)!)
      );
      assert.deepEqual(byKey, model, `round ${round} step ${step}`);
    }
    for (const k of keyOf.values()) {
      assert.ok(isOrderKey(k), `valid key ${k}`);
    }
    assert.equal(new Set(keyOf.values()).size, keyOf.size, "keys are unique");
  }
});

Deno.test("order keys: 10,000 alternating moves of three items never get stuck", () => {
  const random = seededBytes(seedFor("order keys alternating moves"));
  // The demo app's old midpoint numbers stopped moving after 54 of these.
  let list = orderKeysBetween(null, null, 3, { random });
  let longest = 0;
  for (let i = 0; i < 10_000; i++) {
    const from = i % 2 === 0 ? 2 : 0;
    const to = 1;
    const key = orderKeyForMove(list, from, to, { random });
    const moved = [...list];
    moved.splice(from, 1);
    moved.splice(to, 0, key);
    assert.ok(moved[0] < moved[1] && moved[1] < moved[2], `move ${i}`);
    list = moved;
    longest = Math.max(longest, key.length);
  }
  // Each move halves the gap between the two others: about one base-62 digit per six
  // moves (plus the jitter), never a dead end.
  console.log(`longest key after 10,000 alternating moves: ${longest}`);
  assert.ok(longest < 2500, `keys grow slowly (${longest})`);
});

Deno.test("order keys: concurrent inserts at one place differ and sort alike", () => {
  const seed = seedFor("order keys concurrent inserts");
  const a = "a0", b = "a1";
  let equal = 0;
  for (let i = 0; i < 1000; i++) {
    const x = orderKeyBetween(a, b, { random: seededBytes(seed + 2 * i) });
    const y = orderKeyBetween(a, b, { random: seededBytes(seed + 2 * i + 1) });
    for (const k of [x, y]) assert.ok(a < k && k < b, `${k} between`);
    if (x === y) { // less than a 1 in 400,000 chance per pair
      equal++;
      continue;
    }
    // Both replicas sort by the keys alone: the same order everywhere, and there is
    // room between the two for a later insert.
    const [lo, hi] = [x, y].sort(byCodeUnits);
    const mid = orderKeyBetween(lo, hi, { random: seededBytes(i) });
    assert.ok(lo < mid && mid < hi);
  }
  assert.ok(equal <= 1, `${equal} of 1000 concurrent pairs got equal keys`);
  // Without jitter the same place gives the same key: that is what jitter prevents.
  assert.equal(
    orderKeyBetween(a, b, { jitterDigits: 0 }),
    orderKeyBetween(a, b, { jitterDigits: 0 }),
  );
});

Deno.test("order keys: appends and prepends stay short across integer lengths", () => {
  let k: string | null = null;
  let prev = "";
  for (let i = 0; i < 5000; i++) {
    k = orderKeyBetween(k, null, { jitterDigits: 0 });
    assert.ok(k > prev, `${k} > ${prev}`);
    assert.ok(isOrderKey(k));
    prev = k;
  }
  assert.ok(k!.length <= 4, `5000 appends: ${k}`);
  let low: string | null = null;
  let above = "~";
  for (let i = 0; i < 5000; i++) {
    low = orderKeyBetween(null, low, { jitterDigits: 0 });
    assert.ok(low < above, `${low} < ${above}`);
    assert.ok(isOrderKey(low));
    above = low;
  }
  assert.ok(low!.length <= 4, `5000 prepends: ${low}`);
  // Across every length class boundary, up and down.
  const z = ORDER_KEY_DIGITS.at(-1)!;
  for (const head of "ABCXYZabcxyz") {
    const n = head >= "a" ? head.charCodeAt(0) - 95 : 92 - head.charCodeAt(0);
    for (const edge of [head + "0".repeat(n - 1), head + z.repeat(n - 1)]) {
      if (!isOrderKey(edge)) continue;
      if (edge !== "z" + z.repeat(26)) {
        const up = orderKeyBetween(edge, null, { jitterDigits: 0 });
        assert.ok(up > edge && isOrderKey(up), `${edge} → ${up}`);
      }
      const down = orderKeyBetween(null, edge, { jitterDigits: 0 });
      assert.ok(down < edge && isOrderKey(down), `${down} ← ${edge}`);
    }
  }
});

Deno.test("order keys: room at the extremes of the key space", () => {
  const smallestOne = "A" + "0".repeat(25) + "1";
  const lows = [smallestOne];
  for (let i = 0; i < 50; i++) {
    const k = orderKeyBetween(null, lows.at(-1)!, { jitterDigits: 0 });
    assert.ok(k < lows.at(-1)! && isOrderKey(k), k);
    lows.push(k);
  }
  const largest = "z" + "z".repeat(26);
  const highs = [largest];
  for (let i = 0; i < 50; i++) {
    const k = orderKeyBetween(highs.at(-1)!, null, { jitterDigits: 0 });
    assert.ok(k > highs.at(-1)! && isOrderKey(k), k);
    highs.push(k);
  }
});

Deno.test("order keys: many keys at once are increasing and valid", () => {
  const random = seededBytes(seedFor("order keys batches"));
  for (
    const [lo, hi] of [[null, null], ["a5", null], [null, "a5"], ["a0", "a1"]]
  ) {
    const keys = orderKeysBetween(lo, hi, 500, { random });
    assert.equal(keys.length, 500);
    for (let i = 0; i < keys.length; i++) {
      assert.ok(isOrderKey(keys[i]), keys[i]);
      if (i) assert.ok(keys[i - 1] < keys[i], `${keys[i - 1]} < ${keys[i]}`);
    }
    if (lo !== null) assert.ok(lo < keys[0]);
    if (hi !== null) assert.ok(keys.at(-1)! < hi);
  }
});

Deno.test("order keys: bad input is refused with the key in the message", () => {
  assert.throws(
    () => orderKeyBetween("a1", "a0"),
    (e) => e instanceof RangeError && /"a1" and "a0"/.test(e.message),
  );
  assert.throws(() => orderKeyBetween("a1", "a1"), RangeError);
  for (
    const bad of ["", "a", "!x", "a0V0", "b1", "a0-", "A" + "0".repeat(26)]
  ) {
    assert.ok(orderKeyProblem(bad) !== null, `${bad} is refused`);
    assert.throws(
      () => orderKeyBetween(bad, null),
      (e) => e instanceof TypeError && e.message.includes(JSON.stringify(bad)),
    );
  }
  assert.equal(orderKeyProblem(1), "expected a string, got number");
  assert.throws(() => orderKeysBetween(null, null, -1), RangeError);
  assert.throws(() => orderKeyAt(["a0"], 2), RangeError);
  assert.throws(() => orderKeyForMove(["a0"], 0, 1), RangeError);
  assert.throws(
    () => orderKeyBetween(null, null, { jitterDigits: 99 }),
    RangeError,
  );
});

Deno.test("order keys: equal neighbours are passed as one position", () => {
  const random = seededBytes(7);
  const k = orderKeyAt(["a0", "a1", "a1", "a2"], 2, { random });
  assert.ok(k > "a1" && k < "a2", k);
});

Deno.test("order keys: orderField refuses what is not an order key", () => {
  const f = orderField();
  assert.equal(f.type, "string");
  assert.equal(f.validate("a0"), true);
  assert.match(String(f.validate("zz")), /not an order key/);
});

Deno.test("order keys: numbers map to keys in the same order", () => {
  const seed = seedFor("order keys of numbers");
  const next = uint32Source(seed);
  const numbers = [0, -1, 1, 61, 62, 63, -62, -63, 3905, 3906, 1024, 1536.5];
  numbers.push(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  for (let i = 0; i < 2000; i++) {
    const scale = [1, 1024, 1e6, 1e12][next() % 4];
    numbers.push(((next() / 2 ** 31) - 1) * scale);
  }
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const keys = sorted.map(orderKeyOfNumber);
  for (let i = 0; i < keys.length; i++) {
    assert.ok(isOrderKey(keys[i]), `${sorted[i]} → ${keys[i]}`);
    if (i) {
      assert.ok(
        keys[i - 1] < keys[i],
        `${sorted[i - 1]} → ${keys[i - 1]} < ${sorted[i]} → ${keys[i]}`,
      );
    }
  }
  assert.throws(() => orderKeyOfNumber(Infinity), RangeError);
});
