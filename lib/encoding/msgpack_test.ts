import assert from "node:assert/strict";
import {
  decode,
  encode,
  MAX_DEPTH,
  MsgpackReader,
  type Packable,
} from "./msgpack.ts";

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
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

const envSeed = Deno.env.get("CAPRA_SEED");
const SEED = envSeed
  ? Number(envSeed) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
console.log(`msgpack_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`);

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function bytesOf(hexText: string): Uint8Array {
  const parts = hexText.split(/\s+/).filter((x) => x !== "");
  return new Uint8Array(parts.map((x) => parseInt(x, 16)));
}

/** Structural equality where decoded maps (null prototype) equal plain objects. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") {
    return Object.is(a === 0 ? 0 : a, b === 0 ? 0 : b);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return hex(a) === hex(b);
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (
    a !== null && b !== null && typeof a === "object" && typeof b === "object"
  ) {
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return same(ka, kb) &&
      ka.every((k) =>
        same(
          (a as Record<string, unknown>)[k],
          (b as Record<string, unknown>)[k],
        )
      );
  }
  return a === b;
}

function roundTrip(v: Packable): void {
  const bytes = encode(v);
  const back = decode(bytes);
  assert.ok(same(v, back), `round trip of ${hex(bytes.subarray(0, 40))}`);
  assert.equal(hex(encode(back)), hex(bytes), "re-encoding is identical");
}

Deno.test("msgpack: byte vectors from the spec", () => {
  const vectors: [Packable, string][] = [
    [null, "c0"],
    [false, "c2"],
    [true, "c3"],
    [0, "00"],
    [-0, "00"],
    [127, "7f"],
    [128, "cc 80"],
    [255, "cc ff"],
    [256, "cd 01 00"],
    [65535, "cd ff ff"],
    [65536, "ce 00 01 00 00"],
    [0xffffffff, "ce ff ff ff ff"],
    [0x100000000, "cf 00 00 00 01 00 00 00 00"],
    [Number.MAX_SAFE_INTEGER, "cf 00 1f ff ff ff ff ff ff"],
    [-1, "ff"],
    [-32, "e0"],
    [-33, "d0 df"],
    [-128, "d0 80"],
    [-129, "d1 ff 7f"],
    [-32768, "d1 80 00"],
    [-32769, "d2 ff ff 7f ff"],
    [-0x80000000, "d2 80 00 00 00"],
    [-0x80000001, "d3 ff ff ff ff 7f ff ff ff"],
    [Number.MIN_SAFE_INTEGER, "d3 ff e0 00 00 00 00 00 01"],
    [1.5, "cb 3f f8 00 00 00 00 00 00"],
    [-2.5, "cb c0 04 00 00 00 00 00 00"],
    [2 ** 53, "cb 43 40 00 00 00 00 00 00"],
    [NaN, "cb 7f f8 00 00 00 00 00 00"],
    [Infinity, "cb 7f f0 00 00 00 00 00 00"],
    [-Infinity, "cb ff f0 00 00 00 00 00 00"],
    ["", "a0"],
    ["a", "a1 61"],
    ["é", "a2 c3 a9"],
    ["\u{1F600}", "a4 f0 9f 98 80"],
    [new Uint8Array(0), "c4 00"],
    [new Uint8Array([1, 2]), "c4 02 01 02"],
    [[], "90"],
    [[1, 2, 3], "93 01 02 03"],
    [{}, "80"],
    // The example on msgpack.org.
    [
      { compact: true, schema: 0 },
      "82 a7 63 6f 6d 70 61 63 74 c3 a6 73 63 68 65 6d 61 00",
    ],
  ];
  for (const [value, expected] of vectors) {
    assert.equal(hex(encode(value)), expected, `encode(${String(value)})`);
    assert.ok(same(decode(bytesOf(expected)), value), `decode(${expected})`);
  }
});

Deno.test("msgpack: every integer size boundary round-trips with the smallest form", () => {
  const sizes: [number, number][] = [
    [0, 1],
    [127, 1],
    [128, 2],
    [255, 2],
    [256, 3],
    [65535, 3],
    [65536, 5],
    [2 ** 32 - 1, 5],
    [2 ** 32, 9],
    [-1, 1],
    [-32, 1],
    [-33, 2],
    [-128, 2],
    [-129, 3],
    [-32768, 3],
    [-32769, 5],
    [-(2 ** 31), 5],
    [-(2 ** 31) - 1, 9],
    [2 ** 53 - 1, 9],
    [-(2 ** 53) + 1, 9],
  ];
  for (const [n, size] of sizes) {
    const bytes = encode(n);
    assert.equal(bytes.length, size, `size of ${n}`);
    assert.equal(decode(bytes), n);
  }
});

Deno.test("msgpack: string, binary, array and map length boundaries", () => {
  const header = (v: Packable) => encode(v)[0];
  const lengths = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536];
  for (const n of lengths) {
    const ascii = "x".repeat(n);
    roundTrip(ascii);
    const expectStr = n < 32
      ? 0xa0 | n
      : n < 256
      ? 0xd9
      : n < 65536
      ? 0xda
      : 0xdb;
    assert.equal(header(ascii), expectStr, `str header for ${n}`);
    // Two-byte characters: the header follows the byte length, not the string length.
    const wide = "é".repeat(n >> 1) + (n & 1 ? "x" : "");
    roundTrip(wide);
    assert.equal(header(wide), expectStr, `str header for ${n} UTF-8 bytes`);
    const bin = new Uint8Array(n).map((_, i) => i * 13);
    roundTrip(bin);
    assert.equal(header(bin), n < 256 ? 0xc4 : n < 65536 ? 0xc5 : 0xc6);
    const arr = Array.from({ length: n }, (_, i) => i % 3);
    roundTrip(arr);
    assert.equal(header(arr), n < 16 ? 0x90 | n : n < 65536 ? 0xdc : 0xdd);
    const map: Record<string, Packable> = {};
    for (let i = 0; i < n; i++) map["k" + i] = i & 1;
    roundTrip(map);
    assert.equal(header(map), n < 16 ? 0x80 | n : n < 65536 ? 0xde : 0xdf);
  }
  for (const n of [20, 21, 22, 64, 65, 100, 1000]) {
    roundTrip("ü€\u{1F600}".repeat(n));
  }
});

Deno.test("msgpack: map keys are sorted by UTF-8 bytes, whatever the insertion order", () => {
  const a = encode({ b: 1, a: 2, aa: 3, B: 4, "": 5 });
  const b = encode({ "": 5, B: 4, aa: 3, a: 2, b: 1 });
  assert.equal(hex(a), hex(b));
  const r = new MsgpackReader(a);
  const n = r.readMapHeader();
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    keys.push(r.readString());
    r.skipValue();
  }
  assert.deepEqual(keys, ["", "B", "a", "aa", "b"]);
  // U+FFFD is EF BF BD in UTF-8, U+1F600 is F0 9F 98 80: byte order differs from UTF-16.
  const astral = encode({ "\u{1F600}": 1, "\uFFFD": 2, "\u00e9": 3 });
  const r2 = new MsgpackReader(astral);
  r2.readMapHeader();
  const order = [0, 1, 2].map(() => {
    const k = r2.readString();
    r2.skipValue();
    return k;
  });
  assert.deepEqual(order, ["\u00e9", "\uFFFD", "\u{1F600}"]);
  // Many keys take the sort() path instead of insertion sort.
  const many: Record<string, number> = {};
  const names = Array.from(
    { length: 40 },
    (_, i) => `k${(i * 17) % 40}\u{1F600}`,
  );
  for (const k of names) many[k] = 1;
  const reversed: Record<string, number> = {};
  for (const k of [...names].reverse()) reversed[k] = 1;
  assert.equal(hex(encode(many)), hex(encode(reversed)));
});

Deno.test("msgpack: -0, NaN payloads and unsafe integers are canonical", () => {
  assert.equal(hex(encode(-0)), "00");
  assert.ok(Object.is(decode(encode(-0)), 0));
  const f = new Float64Array(1);
  new DataView(f.buffer).setBigUint64(0, 0x7ff0000000000123n, true);
  assert.ok(Number.isNaN(f[0]));
  assert.equal(hex(encode(f[0])), "cb 7f f8 00 00 00 00 00 00");
  assert.ok(Number.isNaN(decode(encode(NaN))));
  assert.equal(decode(encode(2 ** 53 + 2)), 2 ** 53 + 2);
  assert.equal(encode(2 ** 53 + 2)[0], 0xcb);
  assert.equal(encode(-(2 ** 60))[0], 0xcb);
  assert.equal(decode(encode(1e300)), 1e300);
  assert.equal(decode(encode(5e-324)), 5e-324);
});

Deno.test("msgpack: all number formats decode, 64-bit ints to the nearest double", () => {
  const cases: [string, number][] = [
    ["ca 3f c0 00 00", 1.5], // float32
    ["cc 05", 5],
    ["cd 00 05", 5],
    ["ce 00 00 00 05", 5],
    ["cf 00 00 00 00 00 00 00 05", 5],
    ["d0 05", 5],
    ["d0 fb", -5],
    ["d1 ff fb", -5],
    ["d2 ff ff ff fb", -5],
    ["d3 ff ff ff ff ff ff ff fb", -5],
    ["cf ff ff ff ff ff ff ff ff", 2 ** 64],
    ["cf 00 20 00 00 00 00 00 01", 2 ** 53], // 2^53 + 1 rounds to even
    ["d3 80 00 00 00 00 00 00 00", -(2 ** 63)],
    ["d3 7f ff ff ff ff ff ff ff", 2 ** 63],
  ];
  for (const [bytes, n] of cases) {
    assert.equal(decode(bytesOf(bytes)), n, bytes);
    assert.equal(new MsgpackReader(bytesOf(bytes)).readNumber(), n, bytes);
  }
});

Deno.test("msgpack: non-Packable values throw a TypeError naming what was found", () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /undefined/],
    [() => 1, /function/],
    [Symbol("s"), /symbol/],
    [10n, /bigint 10/],
    [new Date(0), /Date/],
    [new Map(), /Map/],
    [new Set(), /Set/],
    [new Uint16Array(2), /Uint16Array/],
    [new (class Point {})(), /Point/],
    [[1, undefined], /undefined/],
    [{ a: { deep: undefined } }, /key "deep"/],
    ["bad \uD800 surrogate", /lone surrogate at index 4/],
    ["x".repeat(100) + "\uDC00", /lone surrogate at index 100/],
    [{ ["\uD800"]: 1 }, /lone surrogate/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => encode(value as Packable), (e: unknown) => {
      assert.ok(e instanceof TypeError, `TypeError for ${String(message)}`);
      assert.match(e.message, message);
      return true;
    });
  }
  const cyclic: Record<string, Packable> = {};
  (cyclic as Record<string, unknown>).self = cyclic;
  assert.throws(() => encode(cyclic), RangeError);
  let deep: Packable = 1;
  for (let i = 0; i < MAX_DEPTH; i++) deep = [deep];
  assert.ok(same(decode(encode(deep)), deep));
  assert.throws(() => encode([deep]), RangeError);
  // The shared writer is still usable after a failure.
  assert.equal(hex(encode([1])), "91 01");
});

Deno.test("msgpack: decoded maps have a null prototype and __proto__ is a plain key", () => {
  const input = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 2}');
  const bytes = encode(input);
  const out = decode(bytes) as Record<string, Packable>;
  assert.equal(Object.getPrototypeOf(out), null);
  assert.deepEqual(Object.keys(out), ["__proto__", "constructor"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(out["__proto__"]), null);
  assert.equal(hex(encode(out)), hex(bytes));
});

Deno.test("msgpack: binary values are copied by decode, aliased by readBinary", () => {
  const bytes = encode([new Uint8Array([1, 2, 3])]);
  const [copy] = decode(bytes) as Uint8Array[];
  assert.notEqual(copy.buffer, bytes.buffer);
  assert.equal(copy.byteLength, copy.buffer.byteLength);
  const r = new MsgpackReader(bytes);
  r.readArrayHeader();
  const view = r.readBinary();
  assert.equal(view.buffer, bytes.buffer);
  assert.deepEqual([...view], [1, 2, 3]);
});

/** A random Packable value of bounded size, favouring boundary cases. */
function randomValue(rng: Rng, depth: number): Packable {
  const kind = rng.int(depth >= 4 ? 5 : 8);
  switch (kind) {
    case 0:
      return rng.pick([null, true, false]);
    case 1: {
      const edges = [
        0,
        1,
        31,
        32,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2 ** 32 - 1,
        2 ** 32,
      ];
      const n = rng.next() < 0.5
        ? rng.pick(edges) + rng.int(3) - 1
        : rng.int(2 ** 31);
      return rng.next() < 0.5 ? -n : n;
    }
    case 2:
      return rng.pick([
        rng.next() * 1e6,
        -rng.next(),
        2 ** 53 + 2 * rng.int(1000),
        Number.MAX_SAFE_INTEGER,
        Number.MIN_SAFE_INTEGER,
        NaN,
        Infinity,
        -Infinity,
        Number.MIN_VALUE,
        Number.MAX_VALUE,
      ]);
    case 3:
      return randomString(rng);
    case 4:
      return new Uint8Array(rng.pick([0, 1, 16, 32, 255, 256, 300])).map(() =>
        rng.int(256)
      );
    case 5:
    case 6: {
      const out: Packable[] = [];
      for (let n = rng.int(rng.next() < 0.9 ? 6 : 20); n > 0; n--) {
        out.push(randomValue(rng, depth + 1));
      }
      return out;
    }
    default: {
      const out: Record<string, Packable> = {};
      for (let n = rng.int(rng.next() < 0.9 ? 6 : 20); n > 0; n--) {
        out[randomString(rng)] = randomValue(rng, depth + 1);
      }
      return out;
    }
  }
}

function randomString(rng: Rng): string {
  const alphabets = [
    "abcxyz_-/",
    "aé€ü",
    "\u{1F600}\u{10FFFF}a\uFFFD\uE000",
    "\u0000\u007f\u0080\u07ff\u0800",
  ];
  const chars = Array.from(rng.pick(alphabets));
  const n = rng.pick([0, 1, 5, 20, 31, 32, 40, 64, 65, 100, 300]);
  let s = "";
  for (let i = 0; i < n; i++) s += rng.pick(chars);
  return s;
}

function shuffled(v: Packable, rng: Rng): Packable {
  if (Array.isArray(v)) return v.map((x) => shuffled(x, rng));
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  const entries = Object.entries(v);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  const out: Record<string, Packable> = {};
  for (const [k, x] of entries) out[k] = shuffled(x, rng);
  return out;
}

Deno.test("msgpack: seeded random values round-trip and encode independently of key order", () => {
  const rng = new Rng(SEED);
  for (let i = 0; i < 2000; i++) {
    const v = randomValue(rng, 0);
    try {
      roundTrip(v);
      assert.equal(hex(encode(shuffled(v, rng))), hex(encode(v)));
      // The reader's skipValue agrees with readValue.
      const bytes = encode(v);
      const r = new MsgpackReader(bytes);
      r.skipValue();
      assert.ok(r.atEnd);
    } catch (e) {
      throw new Error(`case ${i} failed (CAPRA_SEED=${SEED}): ${e}`, {
        cause: e,
      });
    }
  }
});

/** Every binary value inside `v`. */
function binariesOf(v: Packable, out: Uint8Array[] = []): Uint8Array[] {
  if (v instanceof Uint8Array) out.push(v);
  else if (Array.isArray(v)) { for (const x of v) binariesOf(x, out); }
  else if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) binariesOf(x, out);
  }
  return out;
}

Deno.test("msgpack: decode with views gives the same values, binaries as views of the input", () => {
  const rng = new Rng(SEED ^ 0x71e5);
  for (let i = 0; i < 1000; i++) {
    const v = randomValue(rng, 0);
    const bytes = encode(v);
    const viewed = decode(bytes, { views: true });
    assert.deepEqual(
      viewed,
      decode(bytes),
      `case ${i} (CAPRA_SEED=${SEED})`,
    );
    for (const b of binariesOf(viewed)) assert.equal(b.buffer, bytes.buffer);
    for (const b of binariesOf(decode(bytes))) {
      assert.notEqual(b.buffer, bytes.buffer);
    }
  }
});
