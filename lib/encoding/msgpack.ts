/**
 * Canonical MessagePack: the one encoding Capra uses for disk, wire and hashing.
 *
 * Equal values always encode to equal bytes: safe integers take their smallest form,
 * every other number is a float64 (NaN as the quiet NaN 0x7ff8000000000000), `-0` is the
 * integer 0, strings take their smallest header, and map keys are written sorted by
 * their UTF-8 bytes. Only {@linkcode Packable} values are accepted: convert dates to
 * integers and sets/maps to sorted arrays/objects first.
 *
 * Decoding is strict and bounded, so it is safe on bytes from the network: malformed
 * input (truncation, trailing bytes, 0xc1, ext types, invalid UTF-8, non-string or
 * duplicate map keys) throws `SyntaxError`; nesting beyond `maxDepth` or a declared
 * length longer than the remaining input throws `RangeError`.
 *
 * The writer lives in `msgpack_writer.ts` and the reader in `msgpack_reader.ts`; import
 * both from here.
 *
 * @example
 * ```ts
 * import { decode, encode } from "./msgpack.ts";
 * const bytes = encode({ b: 1, a: [true, "x"] }); // keys written in the order a, b
 * decode(bytes); // { a: [true, "x"], b: 1 }, an object with a null prototype
 * ```
 *
 * @module
 */

import { MsgpackReader } from "./msgpack_reader.ts";
import { MAX_DEPTH, MsgpackWriter, type Packable } from "./msgpack_writer.ts";

export { MsgpackReader, type PackType } from "./msgpack_reader.ts";
export { MAX_DEPTH, MsgpackWriter, type Packable } from "./msgpack_writer.ts";

let sharedWriter = new MsgpackWriter(4096);
let sharedBusy = false;

/**
 * Encodes a value as canonical MessagePack. Throws `TypeError` for values that are not
 * {@linkcode Packable} and `RangeError` beyond {@linkcode MAX_DEPTH} levels of nesting.
 *
 * @example
 * ```ts
 * encode([1, "a"]); // Uint8Array [0x92, 0x01, 0xa1, 0x61]
 * ```
 */
export function encode(value: Packable): Uint8Array<ArrayBuffer> {
  // A getter inside the value could re-enter encode(); it gets a writer of its own.
  const shared = !sharedBusy;
  const writer = shared ? sharedWriter : new MsgpackWriter();
  sharedBusy = true;
  try {
    writer.reset();
    writer.writeValue(value);
    return writer.toBytes();
  } finally {
    if (shared) {
      sharedBusy = false;
      // Do not pin a huge buffer because one large value was encoded once.
      if (writer.length > 1 << 20) sharedWriter = new MsgpackWriter(4096);
      writer.reset();
    }
  }
}

/** Options for {@linkcode decode}. */
export interface DecodeOptions {
  /** Deepest allowed nesting of arrays and maps (default {@linkcode MAX_DEPTH}). */
  readonly maxDepth?: number;
  /**
   * Binary values are subarrays of `bytes` instead of copies (no allocation per value):
   * for input nobody changes afterwards, whose binary values are copied or dropped
   * before long (sync messages). Default false: every binary value owns its buffer.
   */
  readonly views?: boolean;
}

/**
 * Decodes exactly one MessagePack value that fills all of `bytes`.
 *
 * @example
 * ```ts
 * decode(new Uint8Array([0x92, 0x01, 0xa1, 0x61])); // [1, "a"]
 * ```
 */
export function decode(bytes: Uint8Array, options?: DecodeOptions): Packable {
  const reader = new MsgpackReader(bytes);
  const value = reader.readValue(
    options?.maxDepth ?? MAX_DEPTH,
    options?.views === true,
  );
  if (!reader.atEnd) {
    throw new SyntaxError(
      `Unexpected trailing bytes after MessagePack value at byte ${reader.offset} ` +
        `(${bytes.length - reader.offset} extra)`,
    );
  }
  return value;
}
