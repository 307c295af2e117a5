import assert from "node:assert/strict";
import { IdSet } from "../idset/id_set.ts";
import { compareIds, ID_BYTES, separatorBound } from "../idset/id_bytes.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import {
  MAX_IDS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  MAX_RANGES_PER_MESSAGE,
  PROTOCOL_VERSION,
  type ReconcileMessage,
  type ReconcileRange,
} from "./message.ts";
import { initiate, respond } from "./reconcile.ts";
import { pickSeed, SeededRandom } from "../idset/_test_utils.ts";

const SEED = pickSeed(Deno.env.get("CAPRA_SEED"));
console.log(`codec_test seed: ${SEED} (rerun with CAPRA_SEED=${SEED})`);

/** Random inputs fed to the decoder. */
const FUZZ_INPUTS = 10_000;

/** A random well-formed message: non-empty chunks of sorted ids, one chunk per range. */
function randomMessage(rng: SeededRandom): ReconcileMessage {
  const ids = rng.ids(1 + rng.int(60)).sort(compareIds);
  const ranges: ReconcileRange[] = [];
  let i = 0;
  while (i < ids.length) {
    const chunk = ids.slice(i, i + 1 + rng.int(6));
    i += chunk.length;
    const upper = i < ids.length
      ? separatorBound(chunk[chunk.length - 1], ids[i])
      : rng.chance(0.5)
      ? null
      : separatorBound(
        chunk[chunk.length - 1],
        new Uint8Array(ID_BYTES).fill(0xff),
      );
    if (
      upper !== null && upper.length === ID_BYTES &&
      upper.every((b) => b === 0xff)
    ) {
      break; // cannot bound above the largest id
    }
    const pick = rng.int(4);
    if (pick === 0) ranges.push({ mode: "skip", upper });
    if (pick === 1) {
      ranges.push({ mode: "fingerprint", upper, fingerprint: rng.bytes(16) });
    }
    if (pick === 2) {
      ranges.push({
        mode: "idList",
        upper,
        ids: chunk.filter(() => rng.chance(0.7)),
      });
    }
    if (pick === 3) {
      const have = chunk.filter(() => rng.chance(0.5));
      const need = chunk.filter((id) => !have.includes(id));
      ranges.push({ mode: "difference", upper, have, need });
    }
  }
  return { version: PROTOCOL_VERSION, ranges };
}

/** Messages of a real exchange, as encoded bytes. */
function exchangeMessages(rng: SeededRandom): Uint8Array[] {
  const shared = rng.ids(400);
  const a = new IdSet([...shared, ...rng.ids(40)]);
  const b = new IdSet([...shared, ...rng.ids(40)]);
  const out: Uint8Array[] = [];
  let message: ReconcileMessage | null = initiate(a);
  let receiver = b;
  while (message !== null) {
    out.push(encodeMessage(message));
    message = respond(receiver, message).reply;
    receiver = receiver === a ? b : a;
  }
  return out;
}

function mutate(rng: SeededRandom, bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  switch (rng.int(5)) {
    case 0: // flip a few bytes
      for (let k = 0; k <= rng.int(3); k++) {
        copy[rng.int(copy.length)] ^= 1 + rng.int(255);
      }
      return copy;
    case 1: // truncate
      return copy.subarray(0, rng.int(copy.length));
    case 2: { // append junk
      const out = new Uint8Array(copy.length + 1 + rng.int(40));
      out.set(copy);
      out.set(rng.bytes(out.length - copy.length), copy.length);
      return out;
    }
    case 3: { // delete a span
      const at = rng.int(copy.length);
      const n = 1 + rng.int(8);
      return Uint8Array.of(...copy.subarray(0, at), ...copy.subarray(at + n));
    }
    default: // set a byte to an extreme
      copy[rng.int(copy.length)] = rng.chance(0.5) ? 0xff : 0x00;
      return copy;
  }
}

Deno.test("codec: random well-formed messages round-trip byte for byte", () => {
  const rng = new SeededRandom(SEED);
  for (let i = 0; i < 500; i++) {
    const message = randomMessage(rng);
    const bytes = encodeMessage(message);
    const decoded = decodeMessage(bytes);
    assert.deepEqual(decoded, message);
    assert.deepEqual(encodeMessage(decoded), bytes);
  }
});

Deno.test("codec: 10,000 random and mutated inputs decode canonically or throw Syntax/RangeError", () => {
  const rng = new SeededRandom(SEED ^ 0xdeadbeef);
  const valid = [
    ...exchangeMessages(rng),
    ...Array.from({ length: 50 }, () => encodeMessage(randomMessage(rng))),
  ];
  const set = new IdSet(rng.ids(300));
  let decoded = 0;
  for (let i = 0; i < FUZZ_INPUTS; i++) {
    const kind = rng.int(3);
    const input = kind === 0
      ? rng.bytes(rng.int(200))
      : kind === 1
      ? Uint8Array.of(PROTOCOL_VERSION, ...rng.bytes(rng.int(200)))
      : mutate(rng, valid[rng.int(valid.length)]);
    let message: ReconcileMessage;
    try {
      message = decodeMessage(input);
    } catch (e) {
      if (!(e instanceof SyntaxError || e instanceof RangeError)) {
        console.log(`seed ${SEED}, input ${i}: unexpected ${e}`);
        throw e;
      }
      continue;
    }
    decoded++;
    // Whatever decodes is canonical and processable.
    assert.deepEqual(encodeMessage(message), input);
    const { reply } = respond(set, message);
    if (reply !== null) decodeMessage(encodeMessage(reply));
  }
  console.log(`${decoded} of ${FUZZ_INPUTS} fuzz inputs happened to be valid`);
});

function idListMessage(count: number, claimed = count): Uint8Array {
  // version, end bound, id-list mode, varint count, ids
  const head = [PROTOCOL_VERSION, 0xff, 2];
  let n = claimed;
  while (n >= 0x80) {
    head.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  head.push(n);
  const out = new Uint8Array(head.length + count * ID_BYTES);
  out.set(head);
  for (let i = 0; i < count; i++) {
    out[head.length + i * ID_BYTES] = i >> 8;
    out[head.length + i * ID_BYTES + 1] = i & 0xff;
  }
  return out;
}

Deno.test("codec: hostile sizes and counts fail fast", () => {
  assert.throws(
    () => decodeMessage(new Uint8Array(MAX_MESSAGE_BYTES + 1)),
    RangeError,
  );
  assert.throws(() => decodeMessage(new Uint8Array(0)), SyntaxError);
  assert.throws(() => decodeMessage(Uint8Array.of(2)), RangeError); // version
  assert.throws(() => decodeMessage(Uint8Array.of(0)), RangeError);
  // A count far beyond the bytes present, and one beyond the id limit.
  assert.throws(() => decodeMessage(idListMessage(1, 2_000_000)), RangeError);
  assert.throws(() => decodeMessage(idListMessage(2, 10_000)), SyntaxError);
  assert.throws(
    () => decodeMessage(idListMessage(0, MAX_IDS_PER_MESSAGE + 1)),
    RangeError,
  );
  assert.equal(decodeMessage(idListMessage(3)).ranges.length, 1);
  // Overlong and non-minimal varints.
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 0xff, 2, 0x80, 0x80, 0x80, 0x01)),
    SyntaxError,
  );
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 0xff, 2, 0x80, 0x00)),
    SyntaxError,
  );
  // Bounds: too long, non-canonical, not increasing, empty first bound.
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 33, ...new Uint8Array(33), 0)),
    SyntaxError,
  );
  assert.throws(() => decodeMessage(Uint8Array.of(1, 2, 5, 0, 0)), SyntaxError);
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 1, 5, 0, 1, 4, 0)),
    SyntaxError,
  );
  assert.throws(() => decodeMessage(Uint8Array.of(1, 0, 0)), SyntaxError);
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 0xff, 0, 1, 4, 0)),
    SyntaxError,
  );
  assert.throws(() => decodeMessage(Uint8Array.of(1, 0xff, 9)), SyntaxError); // mode
  assert.throws(
    () => decodeMessage(Uint8Array.of(1, 0xff, 3, 0, 0)),
    SyntaxError,
  ); // empty diff
  // Too many ranges.
  const many = new Uint8Array(1 + (MAX_RANGES_PER_MESSAGE + 1) * 4);
  many[0] = PROTOCOL_VERSION;
  for (let r = 0; r <= MAX_RANGES_PER_MESSAGE; r++) {
    many.set([2, (r + 1) >> 8, (r + 1) & 0xff || 1, 0], 1 + r * 4);
  }
  assert.throws(() => decodeMessage(many), RangeError);
});

Deno.test("codec: encode refuses malformed messages with a clear error", () => {
  const rng = new SeededRandom(SEED + 3);
  const [a, b] = rng.ids(2).sort(compareIds);
  const bad = (ranges: unknown[]) =>
    ({ version: 1, ranges }) as ReconcileMessage;
  assert.throws(
    () => encodeMessage(bad([{ mode: "idList", upper: null, ids: [b, a] }])),
    SyntaxError,
  );
  assert.throws(
    () => encodeMessage(bad([{ mode: "idList", upper: null, ids: [a, a] }])),
    SyntaxError,
  );
  assert.throws(
    () =>
      encodeMessage(
        bad([{ mode: "idList", upper: separatorBound(a, b), ids: [b] }]),
      ),
    SyntaxError,
  );
  assert.throws(
    () => encodeMessage(bad([{ mode: "skip", upper: Uint8Array.of(1, 0) }])),
    SyntaxError,
  );
  assert.throws(
    () =>
      encodeMessage(
        bad([{
          mode: "fingerprint",
          upper: null,
          fingerprint: new Uint8Array(15),
        }]),
      ),
    TypeError,
  );
  assert.throws(
    () => encodeMessage(bad([{ mode: "nope", upper: null }])),
    TypeError,
  );
  assert.throws(
    () =>
      encodeMessage(
        bad([{ mode: "difference", upper: null, have: [a], need: [a] }]),
      ),
    SyntaxError,
  );
  assert.throws(() => encodeMessage(bad([null])), TypeError);
  assert.throws(
    () =>
      encodeMessage({ version: 2, ranges: [] } as unknown as ReconcileMessage),
    RangeError,
  );
  assert.throws(
    () =>
      encodeMessage(
        bad([{ mode: "skip", upper: null }, { mode: "skip", upper: null }]),
      ),
    SyntaxError,
  );
});
