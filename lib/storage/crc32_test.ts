import { seedFor, uint32Source } from "../../tests/_seed.ts";
import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";

const SEED = seedFor("crc32_test");
const rng = uint32Source;

/** The textbook bit-at-a-time CRC-32, as the reference. */
function bitwiseCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (crc & 1 ? 0xedb88320 : 0);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32: check value and known vectors", () => {
  assert.equal(crc32(text("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(text("a")), 0xe8b7be43);
  assert.equal(
    crc32(text("The quick brown fox jumps over the lazy dog")),
    0x414fa339,
  );
  assert.equal(crc32(new Uint8Array(32)), 0x190a55ad);
  assert.equal(crc32(new Uint8Array(32).fill(0xff)), 0xff6cab0b);
});

Deno.test("crc32: results are unsigned 32-bit numbers", () => {
  const c = crc32(text("123456789"));
  assert.ok(c > 0x7fffffff && Number.isInteger(c));
});

Deno.test("crc32: sub-ranges equal the crc of the sliced copy", () => {
  const next = rng(SEED);
  const data = new Uint8Array(300).map(() => next() & 0xff);
  for (let i = 0; i < 500; i++) {
    const start = next() % 300;
    const end = start + (next() % (301 - start));
    assert.equal(
      crc32(data, start, end),
      crc32(data.slice(start, end)),
      `[${start}, ${end})`,
    );
  }
  assert.equal(crc32(data, 10), crc32(data.slice(10)));
  assert.equal(crc32(data, 5, 5), 0);
  assert.throws(() => crc32(data, 5, 4), RangeError);
  assert.throws(() => crc32(data, -1), RangeError);
  assert.throws(() => crc32(data, 0, 301), RangeError);
});

Deno.test("crc32: random inputs match the bitwise reference", () => {
  const next = rng(SEED ^ 0x1234567);
  for (let n = 0; n <= 64; n++) {
    const data = new Uint8Array(n).map(() => next() & 0xff);
    assert.equal(
      crc32(data),
      bitwiseCrc32(data),
      `length ${n} (CAPRA_SEED=${SEED})`,
    );
  }
  for (let i = 0; i < 100; i++) {
    const data = new Uint8Array(next() % 5000).map(() => next() & 0xff);
    const view = data.subarray(next() % 3);
    assert.equal(
      crc32(view),
      bitwiseCrc32(view),
      `case ${i} (CAPRA_SEED=${SEED})`,
    );
  }
});
