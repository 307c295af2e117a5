/**
 * Binary encoding of reconciliation messages (layout in `message.ts`). Decoding checks
 * every length against the bytes actually present and every count against the protocol
 * limits before allocating, so hostile input fails fast with a clear error.
 *
 * @module
 */

import { ID_BYTES, type IdBound } from "../idset/id_bytes.ts";
import { FINGERPRINT_BYTES } from "../idset/fingerprint.ts";
import {
  END_BOUND_TAG,
  MAX_IDS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  MAX_RANGES_PER_MESSAGE,
  MAX_VARINT_BYTES,
  PROTOCOL_VERSION,
  RangeMode,
  type ReconcileMessage,
  type ReconcileRange,
  validateMessage,
} from "./message.ts";

/**
 * Encodes a message; throws like {@linkcode validateMessage} when it is malformed or
 * exceeds a limit.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./codec.ts";
 * const bytes = encodeMessage({ version: 1, ranges: [{ mode: "skip", upper: null }] });
 * decodeMessage(bytes).ranges[0].mode; // "skip"
 * ```
 */
export function encodeMessage(message: ReconcileMessage): Uint8Array {
  const out = new Uint8Array(validateMessage(message));
  let at = 0;
  out[at++] = PROTOCOL_VERSION;
  const writeVarint = (n: number) => {
    while (n >= 0x80) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
  };
  // Byte loops: for arrays this small they beat typed-array set().
  const writeBytes = (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i];
  };
  const writeIds = (ids: readonly Uint8Array[]) => {
    for (const id of ids) writeBytes(id);
  };
  for (const range of message.ranges) {
    if (range.upper === null) {
      out[at++] = END_BOUND_TAG;
    } else {
      out[at++] = range.upper.length;
      writeBytes(range.upper);
    }
    out[at++] = RangeMode[range.mode];
    switch (range.mode) {
      case "skip":
        break;
      case "fingerprint":
        writeBytes(range.fingerprint);
        break;
      case "idList":
        writeVarint(range.ids.length);
        writeIds(range.ids);
        break;
      case "difference":
        writeVarint(range.have.length);
        writeVarint(range.need.length);
        writeIds(range.have);
        writeIds(range.need);
        break;
    }
  }
  return out;
}

/** Reads message bytes with bounds checks; every failure names the byte offset. */
class MessageReader {
  #at = 0;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get done(): boolean {
    return this.#at === this.#bytes.length;
  }

  fail(what: string): never {
    throw new SyntaxError(
      `Malformed reconcile message at byte ${this.#at}: ${what}`,
    );
  }

  byte(what: string): number {
    if (this.#at >= this.#bytes.length) this.fail(`truncated ${what}`);
    return this.#bytes[this.#at++];
  }

  take(length: number, what: string): Uint8Array {
    if (length > this.#bytes.length - this.#at) this.fail(`truncated ${what}`);
    const out = this.#bytes.slice(this.#at, this.#at + length);
    this.#at += length;
    return out;
  }

  varint(what: string): number {
    let value = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte(what);
      value |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail(`non-minimal varint in ${what}`);
        return value;
      }
    }
    return this.fail(
      `varint in ${what} is longer than ${MAX_VARINT_BYTES} bytes`,
    );
  }

  bound(): IdBound {
    const length = this.byte("range bound");
    if (length === END_BOUND_TAG) return null;
    if (length > ID_BYTES) {
      this.fail(`bound length ${length} exceeds ${ID_BYTES}`);
    }
    return this.take(length, "range bound");
  }

  ids(count: number, what: string): Uint8Array[] {
    if (count * ID_BYTES > this.#bytes.length - this.#at) {
      this.fail(`${what} announces ${count} ids but the message is shorter`);
    }
    const ids: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) ids[i] = this.take(ID_BYTES, what);
    return ids;
  }
}

/**
 * Decodes and validates a message. Throws a RangeError for an oversized input, an
 * unsupported version or an exceeded limit, and a SyntaxError for malformed bytes.
 */
export function decodeMessage(bytes: Uint8Array): ReconcileMessage {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("Invalid reconcile message: expected a Uint8Array");
  }
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Reconcile message of ${bytes.length} bytes exceeds the limit of ${MAX_MESSAGE_BYTES}`,
    );
  }
  const reader = new MessageReader(bytes);
  const version = reader.byte("version");
  if (version !== PROTOCOL_VERSION) {
    throw new RangeError(
      `Unsupported reconcile message version ${version}: expected ${PROTOCOL_VERSION}`,
    );
  }
  const ranges: ReconcileRange[] = [];
  let idCount = 0;
  const countIds = (n: number) => {
    idCount += n;
    if (idCount > MAX_IDS_PER_MESSAGE) {
      throw new RangeError(
        `Reconcile message carries more than ${MAX_IDS_PER_MESSAGE} ids`,
      );
    }
  };
  while (!reader.done) {
    if (ranges.length === MAX_RANGES_PER_MESSAGE) {
      throw new RangeError(
        `Reconcile message has more than ${MAX_RANGES_PER_MESSAGE} ranges`,
      );
    }
    const upper = reader.bound();
    const mode = reader.byte("range mode");
    switch (mode) {
      case RangeMode.skip:
        ranges.push({ mode: "skip", upper });
        break;
      case RangeMode.fingerprint:
        ranges.push({
          mode: "fingerprint",
          upper,
          fingerprint: reader.take(FINGERPRINT_BYTES, "fingerprint"),
        });
        break;
      case RangeMode.idList: {
        const count = reader.varint("id count");
        countIds(count);
        ranges.push({
          mode: "idList",
          upper,
          ids: reader.ids(count, "id list"),
        });
        break;
      }
      case RangeMode.difference: {
        const haveCount = reader.varint("have count");
        const needCount = reader.varint("need count");
        countIds(haveCount + needCount);
        const have = reader.ids(haveCount, "difference");
        const need = reader.ids(needCount, "difference");
        ranges.push({ mode: "difference", upper, have, need });
        break;
      }
      default:
        reader.fail(`unknown range mode ${mode}`);
    }
  }
  const message: ReconcileMessage = { version: PROTOCOL_VERSION, ranges };
  validateMessage(message);
  return message;
}
