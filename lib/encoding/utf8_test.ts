import { seedFor, uint32Source } from "../../tests/_seed.ts";
import assert from "node:assert/strict";
import {
  compareUtf8,
  decodeUtf8,
  decodeUtf8Cached,
  encodeUtf8Into,
  utf8Length,
} from "./utf8.ts";

const SEED = seedFor("utf8_test");
const rng = uint32Source;

const encoder = new TextEncoder();
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function randomString(next: () => number, n: number): string {
  const pool = [
    0x41,
    0x7f,
    0x80,
    0x7ff,
    0x800,
    0xd7ff,
    0xe000,
    0xfeff,
    0xfffd,
    0xffff,
    0x10000,
    0x1f600,
    0x10ffff,
  ];
  let s = "";
  for (let i = 0; i < n; i++) {
    const cp = next() % 3 === 0
      ? pool[next() % pool.length]
      : next() % 0x11_0000;
    s += String.fromCodePoint(cp >= 0xd800 && cp < 0xe000 ? 0x61 : cp);
  }
  return s;
}

Deno.test("utf8: encoding, length and decoding agree with TextEncoder", () => {
  const next = rng(SEED);
  const buf = new Uint8Array(1024);
  for (let i = 0; i < 2000; i++) {
    const s = randomString(next, next() % 70);
    const expected = encoder.encode(s);
    assert.equal(utf8Length(s), expected.length);
    const end = encodeUtf8Into(s, buf, 3);
    assert.deepEqual(
      buf.subarray(3, end),
      expected,
      `case ${i} (CAPRA_SEED=${SEED})`,
    );
    assert.equal(decodeUtf8(buf, 3, end), s);
    assert.equal(decodeUtf8Cached(buf, 3, end), s);
    assert.equal(decodeUtf8Cached(buf, 3, end), s);
  }
  assert.throws(() => utf8Length("a\uD800"), /lone surrogate at index 1/);
  assert.throws(() => utf8Length("\uDC00\uD800"), /index 0/);
});

Deno.test("utf8: random bytes decode exactly as a fatal TextDecoder does", () => {
  const next = rng(SEED ^ 0xabcdef);
  const interesting = [
    0x00,
    0x7f,
    0x80,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xed,
    0xef,
    0xf0,
    0xf4,
    0xf5,
    0xff,
    0x9f,
    0xa0,
    0x8f,
    0x90,
  ];
  for (let i = 0; i < 10_000; i++) {
    const bytes = new Uint8Array(next() % 70).map(() =>
      next() % 2 ? interesting[next() % interesting.length] : next() & 0xff
    );
    let expected: string | undefined;
    try {
      expected = fatal.decode(bytes);
    } catch {
      expected = undefined;
    }
    for (const decode of [decodeUtf8, decodeUtf8Cached]) {
      let actual: string | undefined;
      try {
        actual = decode(bytes, 0, bytes.length);
      } catch (e) {
        assert.ok(e instanceof TypeError);
        actual = undefined;
      }
      assert.equal(
        actual,
        expected,
        `bytes ${bytes.join(",")} (CAPRA_SEED=${SEED})`,
      );
    }
  }
});

Deno.test("utf8: compareUtf8 orders like the UTF-8 bytes", () => {
  const next = rng(SEED ^ 0x777);
  const cmpBytes = (a: Uint8Array, b: Uint8Array) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== b[i]) return a[i] - b[i];
    }
    return a.length - b.length;
  };
  for (let i = 0; i < 5000; i++) {
    const a = randomString(next, next() % 4),
      b = next() % 4 === 0
        ? a + randomString(next, 1)
        : randomString(next, next() % 4);
    assert.equal(
      Math.sign(compareUtf8(a, b)),
      Math.sign(cmpBytes(encoder.encode(a), encoder.encode(b))),
      `${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
    );
  }
});
