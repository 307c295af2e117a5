import assert from "node:assert/strict";
import {
  decode,
  encode,
  MsgpackReader,
  MsgpackWriter,
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
}

const envSeed = Deno.env.get("CAPRA_SEED");
const SEED = envSeed
  ? Number(envSeed) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
console.log(
  `msgpack_reader_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`,
);

function bytesOf(hexText: string): Uint8Array {
  const parts = hexText.split(/\s+/).filter((x) => x !== "");
  return new Uint8Array(parts.map((x) => parseInt(x, 16)));
}

function assertDecodeError(
  input: Uint8Array | string,
  kind: typeof SyntaxError | typeof RangeError,
  message: RegExp,
  maxDepth?: number,
): void {
  const bytes = typeof input === "string" ? bytesOf(input) : input;
  assert.throws(() => decode(bytes, { maxDepth }), (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${e}`);
    assert.match((e as Error).message, message);
    return true;
  });
}

Deno.test("decode: truncated input is a SyntaxError naming the offset", () => {
  assertDecodeError("", SyntaxError, /end of MessagePack data at byte 0/);
  assertDecodeError(
    "cd 01",
    SyntaxError,
    /end of MessagePack data at byte 1: need 2 more, 1 left/,
  );
  assertDecodeError("cb 00 00", SyntaxError, /at byte 1/);
  assertDecodeError("92 cd 01", SyntaxError, /at byte 2/);
  assertDecodeError("81 a1 61", SyntaxError, /at byte 3/);
  assertDecodeError("d9", SyntaxError, /at byte 1/);
  assertDecodeError("dc 00", SyntaxError, /at byte 1/);
  // Every proper prefix of a valid encoding fails with one of the two error kinds.
  const full = encode([
    1,
    "hello",
    { a: [1.5, new Uint8Array(3)] },
    -200,
    70000,
  ]);
  for (let n = 0; n < full.length; n++) {
    assert.throws(
      () => decode(full.subarray(0, n)),
      (e: unknown) => e instanceof SyntaxError || e instanceof RangeError,
    );
  }
});

Deno.test("decode: trailing bytes, 0xc1 and ext types are SyntaxErrors", () => {
  assertDecodeError(
    "01 02",
    SyntaxError,
    /trailing bytes .* at byte 1 \(1 extra\)/,
  );
  assertDecodeError(
    "c1",
    SyntaxError,
    /Reserved MessagePack byte 0xc1 at byte 0/,
  );
  assertDecodeError("91 c1", SyntaxError, /0xc1 at byte 1/);
  const exts = [
    "c7 01 05 00",
    "c8 00 01 05 00",
    "c9 00 00 00 01 05 00",
    "d4 05 00",
  ];
  exts.push(
    "d5 05 00 00",
    "d6 05 00 00 00 00",
    "d7 05" + " 00".repeat(8),
    "d8 05" + " 00".repeat(16),
  );
  for (const ext of exts) {
    assertDecodeError(
      ext,
      SyntaxError,
      /ext type .* at byte 0 is not supported/,
    );
  }
});

Deno.test("decode: invalid UTF-8 is a SyntaxError, on the short and the long path", () => {
  const bad = [
    "80", // lone continuation byte
    "c0 80", // overlong NUL
    "c1 bf", // overlong
    "e0 80 80", // overlong
    "ed a0 80", // UTF-16 surrogate
    "f4 90 80 80", // above U+10FFFF
    "f5 80 80 80",
    "ff",
    "e2 82", // truncated sequence
    "c3 28", // bad continuation
  ];
  for (const seq of bad) {
    const body = bytesOf(seq);
    for (const pad of [0, 100]) {
      const len = body.length + pad;
      const head = len < 32 ? [0xa0 | len] : [0xd9, len];
      const bytes = new Uint8Array([
        ...head,
        ...new Uint8Array(pad).fill(0x61),
        ...body,
      ]);
      assertDecodeError(
        bytes,
        SyntaxError,
        /Invalid UTF-8 in MessagePack string at byte 0/,
      );
      // As a map key too.
      const key = new Uint8Array([0x81, ...bytes, 0xc0]);
      assertDecodeError(key, SyntaxError, /Invalid UTF-8 .* at byte 1/);
    }
  }
  // A BOM is kept, not stripped.
  assert.equal(decode(encode("\uFEFFx")), "\uFEFFx");
  assert.equal(
    decode(encode("\uFEFF" + "x".repeat(100))),
    "\uFEFF" + "x".repeat(100),
  );
});

Deno.test("decode: map keys must be unique strings", () => {
  assertDecodeError(
    "81 01 02",
    SyntaxError,
    /map key at byte 1 is a number \(0x01\), not a string/,
  );
  assertDecodeError("81 c4 00 02", SyntaxError, /is a binary/);
  assertDecodeError(
    "82 a1 61 01 a1 61 02",
    SyntaxError,
    /Duplicate MessagePack map key "a" at byte 4/,
  );
  assert.deepEqual({ ...(decode(bytesOf("81 d9 01 61 01")) as object) }, {
    a: 1,
  });
});

Deno.test("decode: nesting beyond maxDepth is a RangeError", () => {
  const nested = (n: number) =>
    new Uint8Array([...new Array(n).fill(0x91), 0x01]);
  assert.ok(decode(nested(64)));
  assertDecodeError(
    nested(65),
    RangeError,
    /at byte 64 is nested deeper than 64/,
  );
  assertDecodeError(nested(3), RangeError, /deeper than 2/, 2);
  assert.equal(decode(nested(0), { maxDepth: 0 }), 1);
  assertDecodeError("81 a1 61 80", RangeError, /deeper than 1/, 1);
  assertDecodeError("01", RangeError, /Invalid maxDepth NaN/, NaN);
  assertDecodeError("01", RangeError, /Invalid maxDepth -1/, -1);
  // A deep stack of headers never overflows the call stack.
  assertDecodeError(nested(100_000), RangeError, /deeper than 64/);
  assert.throws(
    () => new MsgpackReader(nested(100_000)).skipValue(),
    RangeError,
  );
});

Deno.test("decode: declared lengths beyond the input are RangeErrors (no allocation)", () => {
  assertDecodeError(
    "db ff ff ff ff 61",
    RangeError,
    /string at byte 0 declares length 4294967295 but only 1 bytes remain/,
  );
  assertDecodeError(
    "c6 ff ff ff ff",
    RangeError,
    /binary at byte 0 declares length 4294967295/,
  );
  assertDecodeError(
    "dd ff ff ff ff 01",
    RangeError,
    /array at byte 0 declares length 4294967295/,
  );
  assertDecodeError(
    "df ff ff ff ff 01 01",
    RangeError,
    /map at byte 0 declares length 4294967295/,
  );
  assertDecodeError(
    "a3 61 62",
    RangeError,
    /declares length 3 but only 2 bytes remain/,
  );
  assertDecodeError(
    "82 a1 61 01",
    RangeError,
    /map at byte 0 declares length 2 but only 3/,
  );
  assertDecodeError(
    "93 01 02",
    RangeError,
    /array at byte 0 declares length 3 but only 2/,
  );
});

Deno.test("MsgpackReader: typed reads, peekType, skipValue, offsets", () => {
  const w = new MsgpackWriter(16);
  w.writeArrayHeader(8);
  w.writeNil();
  w.writeBoolean(true);
  w.writeNumber(-300);
  w.writeString("héllo");
  w.writeBinary(new Uint8Array([9, 8]));
  w.writeMapHeader(1);
  w.writeString("k");
  w.writeValue([1, { x: null }]);
  w.writeNumber(0.25);
  w.writeRaw(encode("raw"));
  w.writeNumber(7);
  const bytes = w.toBytes();
  assert.equal(w.length, bytes.length);
  const r = new MsgpackReader(bytes);
  assert.equal(r.peekType(), "array");
  assert.equal(r.readArrayHeader(), 8);
  assert.equal(r.peekType(), "nil");
  assert.equal(r.readNil(), null);
  assert.equal(r.peekType(), "boolean");
  assert.equal(r.readBoolean(), true);
  assert.equal(r.peekType(), "number");
  assert.equal(r.readNumber(), -300);
  assert.equal(r.peekType(), "string");
  assert.equal(r.readString(), "héllo");
  assert.equal(r.peekType(), "binary");
  assert.deepEqual([...r.readBinary()], [9, 8]);
  assert.equal(r.peekType(), "map");
  const mapAt = r.offset;
  assert.equal(r.readMapHeader(), 1);
  r.offset = mapAt;
  r.skipValue();
  assert.equal(r.readNumber(), 0.25);
  assert.equal(r.readValue(), "raw");
  assert.equal(r.atEnd, false);
  assert.equal(r.readNumber(), 7);
  assert.equal(r.atEnd, true);
  assert.throws(() => r.readNumber(), SyntaxError);
  assert.throws(() => r.peekType(), SyntaxError);
  // Type mismatches name what was found and leave the cursor alone.
  const r2 = new MsgpackReader(encode(["a"]));
  assert.throws(
    () => r2.readString(),
    /Expected a MessagePack string at byte 0, found array \(0x91\)/,
  );
  assert.equal(r2.offset, 0);
  assert.equal(new MsgpackReader(bytesOf("c1")).peekType(), "other");
  assert.equal(new MsgpackReader(bytesOf("d4 00 00")).peekType(), "other");
});

Deno.test("MsgpackReader: reads a sub-range and validates its bounds", () => {
  const bytes = bytesOf("ff 01 a1 61 ff");
  const r = new MsgpackReader(bytes, 1, 4);
  assert.equal(r.readNumber(), 1);
  assert.equal(r.readString(), "a");
  assert.ok(r.atEnd);
  assert.throws(() => r.readNil(), SyntaxError);
  assert.throws(() => new MsgpackReader(bytes, 2, 3).readValue(), RangeError);
  assert.throws(() => new MsgpackReader(bytes, 4, 3), RangeError);
  assert.throws(() => new MsgpackReader(bytes, 0, 6), RangeError);
  assert.throws(() => {
    r.offset = 5;
  }, RangeError);
});

Deno.test("MsgpackWriter: reset, view, toBytes and header validation", () => {
  const w = new MsgpackWriter(1);
  w.writeValue({ a: "x".repeat(1000) });
  const copy = w.toBytes();
  const view = w.view();
  assert.deepEqual(copy, view);
  assert.notEqual(copy.buffer, view.buffer);
  w.reset();
  assert.equal(w.length, 0);
  w.writeNumber(1);
  assert.deepEqual([...w.view()], [1]);
  assert.throws(() => w.writeArrayHeader(-1), RangeError);
  assert.throws(() => w.writeMapHeader(1.5), RangeError);
  assert.throws(() => w.writeArrayHeader(2 ** 32), RangeError);
});

/** Mutates a valid encoding: flips, inserts, deletes or truncates bytes. */
function mutate(rng: Rng, bytes: Uint8Array): Uint8Array {
  const out = [...bytes];
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const at = rng.int(out.length + 1);
    switch (rng.int(4)) {
      case 0:
        out[at] = rng.int(256);
        break;
      case 1:
        out.splice(at, 0, rng.int(256));
        break;
      case 2:
        out.splice(at, 1);
        break;
      default:
        out.length = at;
    }
  }
  return new Uint8Array(out);
}

Deno.test("decode: random and mutated bytes only ever throw SyntaxError or RangeError", () => {
  const rng = new Rng(SEED);
  const samples: Packable[] = [
    [1, "/todo/bench/abcdefghij", [], new Uint8Array(16), 1.7e15, "todo/1", [
      0,
      { done: false },
      0,
    ]],
    { a: [1, 2, { b: "héllo\u{1F600}" }], c: -1e10, d: null, e: true },
    ["x".repeat(70), 65536, -70000, 0.5],
  ];
  const encoded = samples.map((v) => encode(v));
  let decoded = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = i % 2 === 0
      ? new Uint8Array(rng.int(40)).map(() => rng.int(256))
      : mutate(rng, encoded[i % encoded.length]);
    try {
      const v = decode(input, { maxDepth: 8 });
      decoded++;
      encode(v); // whatever decodes is Packable
      const r = new MsgpackReader(input);
      r.skipValue(8);
      assert.ok(r.atEnd, "skipValue consumes what readValue consumed");
    } catch (e) {
      if (!(e instanceof SyntaxError || e instanceof RangeError)) {
        throw new Error(`input ${i} (CAPRA_SEED=${SEED}) threw ${e}`, {
          cause: e,
        });
      }
    }
  }
  assert.ok(decoded > 100, `some inputs decode (${decoded})`);
});
