import { seedFor, uint32Source } from "../../tests/_seed.ts";
import assert from "node:assert/strict";
import {
  decodeBase64Url,
  decodeHex,
  encodeBase64Url,
  encodeBase64UrlPortable,
  encodeHex,
} from "./base64url.ts";

const SEED = seedFor("base64url_test");
const rng = uint32Source;

const text = (s: string) => new TextEncoder().encode(s);

/** Base64url through the platform's btoa, as the reference. */
function reference(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(
    /\//g,
    "_",
  )
    .replace(/=+$/, "");
}

Deno.test("base64url: RFC 4648 vectors", () => {
  const vectors: [string, string][] = [
    ["", ""],
    ["f", "Zg"],
    ["fo", "Zm8"],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg"],
    ["fooba", "Zm9vYmE"],
    ["foobar", "Zm9vYmFy"],
  ];
  for (const [plain, encoded] of vectors) {
    assert.equal(encodeBase64Url(text(plain)), encoded);
    assert.deepEqual(decodeBase64Url(encoded), text(plain));
  }
  assert.equal(encodeBase64Url(new Uint8Array([0xfb, 0xff, 0xbf])), "-_-_");
  assert.deepEqual([...decodeBase64Url("-_-_")], [0xfb, 0xff, 0xbf]);
});

Deno.test("base64url: seeded random round trips match btoa", () => {
  const next = rng(SEED);
  const lengths = [
    ...Array(70).keys(),
    1000,
    8191,
    8192,
    8193,
    30_000,
    100_000,
  ];
  for (const n of lengths) {
    const bytes = new Uint8Array(n).map(() => next() & 0xff);
    const s = encodeBase64Url(bytes);
    assert.equal(s, reference(bytes), `length ${n} (CAPRA_SEED=${SEED})`);
    assert.deepEqual(decodeBase64Url(s), bytes);
    assert.equal(
      encodeHex(bytes),
      Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
    );
    assert.deepEqual(decodeHex(encodeHex(bytes)), bytes);
  }
  // Every 32-byte id round-trips to the same 43 characters.
  for (let i = 0; i < 200; i++) {
    const id = new Uint8Array(32).map(() => next() & 0xff);
    const s = encodeBase64Url(id);
    assert.equal(s.length, 43);
    assert.equal(encodeBase64Url(decodeBase64Url(s)), s);
  }
});

Deno.test("base64url: the native and the portable encoder agree, on views too", () => {
  const next = rng(SEED ^ 0x5eed);
  const big = new Uint8Array(4096).map(() => next() & 0xff);
  for (let n = 0; n < 300; n++) {
    const offset = next() % 64;
    const view = big.subarray(offset, offset + n);
    const want = reference(view);
    assert.equal(encodeBase64UrlPortable(view), want, `length ${n}`);
    assert.equal(encodeBase64Url(view), want, `length ${n}`);
  }
  assert.equal(encodeBase64Url(big), reference(big));
});

Deno.test("base64url: invalid input is a SyntaxError naming the character and position", () => {
  const bad: [string, RegExp][] = [
    ["Zg==", /character "=" at position 2/],
    ["Zm9v=", /length 5/],
    ["A", /length 1/],
    ["Zm+v", /character "\+" at position 2/],
    ["Zm/v", /character "\/" at position 2/],
    ["Zm9 ", /character " " at position 3/],
    ["Zm9vY\u00e9", /character "é" at position 5/],
    ["Zm9v\u0141mFy", /character "Ł" at position 4/], // 0x141 & 127 would be "A"
    ["Zm\u00c1v", /position 2/],
    ["Zh", /character "h" at position 1 has non-zero unused bits/],
    ["Zm9", /character "9" at position 2 has non-zero unused bits/],
    ["Zm9vZm9", /position 6 has non-zero unused bits/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => decodeBase64Url(input), (e: unknown) => {
      assert.ok(
        e instanceof SyntaxError,
        `SyntaxError for ${JSON.stringify(input)}`,
      );
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("hex: vectors and strict decoding", () => {
  assert.equal(encodeHex(new Uint8Array(0)), "");
  assert.equal(
    encodeHex(new Uint8Array([0, 1, 0x7f, 0x80, 0xab, 0xff])),
    "00017f80abff",
  );
  assert.deepEqual([...decodeHex("00017F80abFF")], [
    0,
    1,
    0x7f,
    0x80,
    0xab,
    0xff,
  ]);
  const bad: [string, RegExp][] = [
    ["abc", /length 3: must be even/],
    ["0g", /character "g" at position 1/],
    ["x0", /character "x" at position 0/],
    ["00 1", /character " " at position 2/],
    ["0 ", /character " " at position 1/],
    ["\u0130\u0130", /position 0/], // 0x130 & 127 would be "0"
  ];
  for (const [input, message] of bad) {
    assert.throws(() => decodeHex(input), (e: unknown) => {
      assert.ok(e instanceof SyntaxError);
      assert.match(e.message, message);
      return true;
    });
  }
});
