import assert from "node:assert/strict";
import { canonicalDeviation } from "./msgpack_canonical.ts";
import { decode, encode, type Packable } from "./msgpack.ts";

/** A small seeded random source (mulberry32). */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bool(): boolean {
    return this.next() < 0.5;
  }
}

const envSeed = Deno.env.get("CAPRA_SEED");
const SEED = envSeed
  ? Number(envSeed) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
console.log(
  `msgpack_canonical_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`,
);

const NUMBERS = [
  0,
  1,
  31,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -Number.MAX_SAFE_INTEGER,
  0.5,
  -2.25,
  1e300,
  2 ** 53,
  NaN,
  Infinity,
];

function randomValue(rng: Rng, depth = 0): Packable {
  const k = rng.int(depth > 2 ? 5 : 8);
  switch (k) {
    case 0:
      return NUMBERS[rng.int(NUMBERS.length)];
    case 1:
      return "ab€".repeat(rng.int(3)) +
        "k".repeat(rng.bool() ? rng.int(40) : 0);
    case 2:
      return rng.bool();
    case 3:
      return null;
    case 4:
      return new Uint8Array(rng.int(4));
    case 5:
    case 6: {
      const out: Record<string, Packable> = {};
      const n = rng.int(5);
      for (let i = 0; i < n; i++) {
        out[["a", "b", "ab", "é", "z", "B"][rng.int(6)]] = randomValue(
          rng,
          depth + 1,
        );
      }
      return out;
    }
    default:
      return Array.from(
        { length: rng.int(4) },
        () => randomValue(rng, depth + 1),
      );
  }
}

/** A writer that picks any valid form at random: wider headers and integers, floats, key orders. */
class LooseWriter {
  readonly out: number[] = [];
  constructor(private readonly rng: Rng) {}

  #u(n: number, width: number): void {
    for (let i = width - 1; i >= 0; i--) {
      this.out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
    }
  }

  #len(n: number, fix: number, fixMax: number, codes: readonly number[]) {
    const widths = [1, 2, 4];
    const options: [number, number][] = [];
    if (n <= fixMax) options.push([fix | n, 0]);
    codes.forEach((c, i) => {
      if (c && n < 2 ** (8 * widths[i])) options.push([c, widths[i]]);
    });
    const [code, width] = this.rng.bool()
      ? options[0]
      : options[this.rng.int(options.length)];
    this.out.push(code);
    this.#u(n, width);
  }

  #float(n: number) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, n);
    this.out.push(0xcb, ...b);
  }

  write(v: Packable): void {
    const rng = this.rng;
    if (v === null) this.out.push(0xc0);
    else if (typeof v === "boolean") this.out.push(v ? 0xc3 : 0xc2);
    else if (typeof v === "number") {
      if (!Number.isSafeInteger(v) || rng.int(6) === 0) return this.#float(v);
      const forms: [number, number][] = [];
      if (v >= 0) {
        if (v < 0x80) forms.push([-1, 0]);
        if (v < 0x100) forms.push([0xcc, 1]);
        if (v < 0x10000) forms.push([0xcd, 2]);
        if (v < 2 ** 32) forms.push([0xce, 4]);
        forms.push([0xcf, 8]);
      } else {
        if (v >= -32) forms.push([-1, 0]);
        if (v >= -0x80) forms.push([0xd0, 1]);
        if (v >= -0x8000) forms.push([0xd1, 2]);
        if (v >= -(2 ** 31)) forms.push([0xd2, 4]);
        forms.push([0xd3, 8]);
      }
      const [code, width] = rng.bool()
        ? forms[0]
        : forms[rng.int(forms.length)];
      if (code === -1) return void this.out.push(v & 0xff);
      this.out.push(code);
      const n = BigInt.asUintN(8 * width, BigInt(v));
      for (let i = width - 1; i >= 0; i--) {
        this.out.push(Number((n >> BigInt(8 * i)) & 0xffn));
      }
    } else if (typeof v === "string") {
      const b = new TextEncoder().encode(v);
      this.#len(b.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      this.out.push(...b);
    } else if (v instanceof Uint8Array) {
      this.#len(v.length, 0, -1, [0xc4, 0xc5, 0xc6]);
      this.out.push(...v);
    } else if (Array.isArray(v)) {
      this.#len(v.length, 0x90, 15, [0, 0xdc, 0xdd]);
      for (const x of v) this.write(x);
    } else {
      const keys = Object.keys(v).sort((a, b) => {
        const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
        for (let i = 0; i < Math.min(x.length, y.length); i++) {
          if (x[i] !== y[i]) return x[i] - y[i];
        }
        return x.length - y.length;
      });
      if (keys.length > 1 && rng.int(4) === 0) keys.reverse();
      this.#len(keys.length, 0x80, 15, [0, 0xde, 0xdf]);
      for (const k of keys) {
        this.write(k);
        this.write((v as Record<string, Packable>)[k]);
      }
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

Deno.test("canonicalDeviation: null exactly when re-encoding the decoded value gives the same bytes (seeded)", () => {
  const rng = new Rng(SEED);
  let deviating = 0;
  for (let i = 0; i < 3000; i++) {
    const value = randomValue(rng);
    assert.equal(canonicalDeviation(encode(value)), null, "encode() output");
    const w = new LooseWriter(rng);
    w.write(value);
    const bytes = new Uint8Array(w.out);
    const canonical = sameBytes(encode(decode(bytes)), bytes);
    const d = canonicalDeviation(bytes);
    assert.equal(
      d === null,
      canonical,
      `case ${i} (seed ${SEED}): ${JSON.stringify(d)} for ${
        Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
      }`,
    );
    if (d) deviating++;
  }
  assert.ok(deviating > 300, `${deviating} non-canonical cases exercised`);
});

Deno.test("canonicalDeviation names the offset and the reason", () => {
  const cases: [number[], number, RegExp][] = [
    [[0xcc, 0x05], 0, /longer form/],
    [[0x92, 0x01, 0xd0, 0xff], 2, /longer form/],
    [[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], 0, /float64 holding the integer 1/],
    [[0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0], 0, /integer 0/], // -0
    [[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1], 0, /NaN/],
    [[0xca, 0x3f, 0x80, 0, 0], 0, /float32/],
    [[0xd9, 0x01, 0x61], 0, /longer header/],
    [[0xdc, 0x00, 0x01, 0x01], 0, /longer header/],
    [[0x82, 0xa1, 0x62, 0x01, 0xa1, 0x61, 0x02], 4, /increasing order/],
    [[0x82, 0xa2, 0x61, 0x62, 0x01, 0xa1, 0x61, 0x02], 5, /increasing order/],
    [[0x81, 0x01, 0x01], 1, /not a string/],
    [[0x01, 0x02], 1, /trailing/],
    [[0x92, 0x01], 2, /truncated/],
  ];
  for (const [bytes, offset, reason] of cases) {
    const d = canonicalDeviation(new Uint8Array(bytes));
    assert.ok(d, `deviation in ${bytes}`);
    assert.equal(d.offset, offset, `offset in ${bytes}`);
    assert.match(d.reason, reason);
  }
  // Keys ordered by UTF-8 bytes: "B" (0x42) < "a" < "ab" < "é" (0xc3 0xa9).
  assert.equal(canonicalDeviation(encode({ é: 1, ab: 2, a: 3, B: 4 })), null);
});
