import { seedFor, uint32Source } from "../../tests/_seed.ts";
import assert from "node:assert/strict";
import { sha256, sha256Parts } from "./sha256.ts";

const SEED = seedFor("sha256_test");
const rng = uint32Source;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const text = (s: string) => new TextEncoder().encode(s);

async function reference(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

Deno.test("sha256: NIST vectors", () => {
  assert.equal(
    hex(sha256(new Uint8Array(0))),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    hex(sha256(text("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(
      sha256(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    ),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assert.equal(
    hex(sha256(text(
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
    ))),
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
  );
  assert.equal(
    hex(sha256(new Uint8Array(1_000_000).fill(0x61))),
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
  );
});

Deno.test("sha256: lengths 0..200 match crypto.subtle", async () => {
  const data = new Uint8Array(200).map((_, i) => (i * 31 + 7) & 0xff);
  for (let n = 0; n <= 200; n++) {
    const part = data.subarray(0, n);
    assert.equal(hex(sha256(part)), await reference(part), `length ${n}`);
  }
});

Deno.test("sha256: seeded random inputs and sub-arrays match crypto.subtle", async () => {
  const next = rng(SEED);
  for (let i = 0; i < 200; i++) {
    const n = i < 150 ? next() % 300 : next() % 70_000;
    const buf = new Uint8Array(n + 10).map(() => next() & 0xff);
    const start = next() % 10;
    const view = buf.subarray(start, start + n);
    assert.equal(
      hex(sha256(view)),
      await reference(view),
      `case ${i} (CAPRA_SEED=${SEED})`,
    );
  }
});

Deno.test("sha256Parts: equals sha256 of the concatenation, however it is split", () => {
  const next = rng(SEED ^ 0x5a5a5a5a);
  assert.equal(hex(sha256Parts([])), hex(sha256(new Uint8Array(0))));
  for (let i = 0; i < 300; i++) {
    const n = next() % 400;
    const data = new Uint8Array(n).map(() => next() & 0xff);
    const parts: Uint8Array[] = [];
    let at = 0;
    while (at < n) {
      const len = next() % 3 === 0 ? 0 : 1 + (next() % 130);
      parts.push(data.subarray(at, Math.min(n, at + len)));
      at += len;
    }
    if (next() % 2 === 0) parts.push(new Uint8Array(0));
    assert.equal(
      hex(sha256Parts(parts)),
      hex(sha256(data)),
      `case ${i} (CAPRA_SEED=${SEED})`,
    );
  }
});
