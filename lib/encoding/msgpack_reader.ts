/**
 * The decoding half of Capra's canonical MessagePack (see `msgpack.ts`). Strict and
 * bounded: malformed input is a `SyntaxError`, lengths or nesting beyond what the input
 * can hold is a `RangeError`, and nothing is allocated from an unchecked length.
 *
 * @module
 */

import { MAX_DEPTH, type Packable } from "./msgpack_writer.ts";
import { decodeUtf8, decodeUtf8Cached } from "./utf8.ts";

/** The kind of the next value, as reported by {@linkcode MsgpackReader.peekType}. */
export type PackType =
  | "nil"
  | "boolean"
  | "number"
  | "string"
  | "binary"
  | "array"
  | "map"
  | "other";

const TWO_32 = 0x1_0000_0000;

function typeOfLead(b: number): PackType {
  if (b < 0x80 || b >= 0xe0 || (b >= 0xca && b <= 0xd3)) return "number";
  if (b < 0x90 || b === 0xde || b === 0xdf) return "map";
  if (b < 0xa0 || b === 0xdc || b === 0xdd) return "array";
  if (b < 0xc0 || (b >= 0xd9 && b <= 0xdb)) return "string";
  if (b === 0xc0) return "nil";
  if (b === 0xc2 || b === 0xc3) return "boolean";
  if (b >= 0xc4 && b <= 0xc6) return "binary";
  return "other";
}

/** The {@linkcode PackType} of every possible lead byte. */
const LEAD_TYPES: readonly PackType[] = Array.from(
  { length: 256 },
  (_, b) => typeOfLead(b),
);

/**
 * For each lead byte: the length carried in the byte itself (fixstr/fixarray/fixmap), or
 * -1, -2, -4 when a 1-, 2- or 4-byte length field follows (str, bin, array, map).
 */
const LENGTHS: Int8Array = Int8Array.from({ length: 256 }, (_, b) => {
  if (b >= 0x80 && b < 0xa0) return b & 0x0f;
  if (b >= 0xa0 && b < 0xc0) return b & 0x1f;
  if (b === 0xc4 || b === 0xd9) return -1;
  if (b === 0xc5 || b === 0xda || b === 0xdc || b === 0xde) return -2;
  if (b === 0xc6 || b === 0xdb || b === 0xdd || b === 0xdf) return -4;
  return 0;
});

function checkMaxDepth(maxDepth: number): number {
  if (!(Number.isInteger(maxDepth) && maxDepth >= 0)) {
    throw new RangeError(
      `Invalid maxDepth ${maxDepth}: must be an integer >= 0`,
    );
  }
  return maxDepth;
}

function hex(b: number): string {
  return "0x" + b.toString(16).padStart(2, "0");
}

/**
 * Reads MessagePack values from a byte range with a cursor.
 *
 * @example
 * ```ts
 * const r = new MsgpackReader(new Uint8Array([0x92, 0x01, 0xa1, 0x61]));
 * r.readArrayHeader(); // 2
 * r.readNumber(); // 1
 * r.readString(); // "a"
 * r.atEnd; // true
 * ```
 */
export class MsgpackReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  #pos: number;
  #dataView: DataView | undefined;
  /** Binary values are subarrays of the input (see {@linkcode readValue}). */
  #views = false;

  /** Reads `bytes[offset..end)`. */
  constructor(bytes: Uint8Array, offset = 0, end: number = bytes.length) {
    if (!(Number.isInteger(end) && end >= 0 && end <= bytes.length)) {
      throw new RangeError(
        `Invalid MsgpackReader end ${end}: input has ${bytes.length} bytes`,
      );
    }
    this.#bytes = bytes;
    this.#end = end;
    this.#pos = 0;
    this.offset = offset;
  }

  /** Position of the next byte to read, as an index into the input array. */
  get offset(): number {
    return this.#pos;
  }

  set offset(offset: number) {
    if (!(Number.isInteger(offset) && offset >= 0 && offset <= this.#end)) {
      throw new RangeError(
        `Invalid MsgpackReader offset ${offset}: must be 0..${this.#end}`,
      );
    }
    this.#pos = offset;
  }

  /** True when every byte of the range has been read. */
  get atEnd(): boolean {
    return this.#pos >= this.#end;
  }

  #need(n: number): void {
    const left = this.#end - this.#pos;
    if (left < n) {
      throw new SyntaxError(
        `Unexpected end of MessagePack data at byte ${this.#pos}: need ${n} more, ${left} left`,
      );
    }
  }

  /** The lead byte of the next value, not consumed. */
  #peek(): number {
    this.#need(1);
    return this.#bytes[this.#pos];
  }

  #mismatch(expected: string): SyntaxError {
    const b = this.#bytes[this.#pos];
    return new SyntaxError(
      `Expected a MessagePack ${expected} at byte ${this.#pos}, found ${
        LEAD_TYPES[b]
      } (${hex(b)})`,
    );
  }

  #u8(): number {
    this.#need(1);
    return this.#bytes[this.#pos++];
  }

  #u16(): number {
    this.#need(2);
    const b = this.#bytes, p = this.#pos;
    this.#pos = p + 2;
    return (b[p] << 8) | b[p + 1];
  }

  #u32(): number {
    this.#need(4);
    const b = this.#bytes, p = this.#pos;
    this.#pos = p + 4;
    return b[p] * 0x100_0000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  #float(size: 4 | 8): number {
    this.#need(size);
    const b = this.#bytes;
    const view = this.#dataView ??= new DataView(
      b.buffer,
      b.byteOffset,
      b.byteLength,
    );
    const p = this.#pos;
    this.#pos = p + size;
    return size === 4 ? view.getFloat32(p) : view.getFloat64(p);
  }

  /** Checks a declared length (of `unit`-byte items) against the bytes that remain. */
  #checkLength(len: number, unit: number, what: string, at: number): void {
    const left = this.#end - this.#pos;
    if (len * unit > left) {
      throw new RangeError(
        `MessagePack ${what} at byte ${at} declares length ${len} but only ${left} bytes remain`,
      );
    }
  }

  /** Reads the body of a number whose lead byte `b` (0xca..0xd3) was consumed. */
  #numberBody(b: number): number {
    switch (b) {
      case 0xca:
        return this.#float(4);
      case 0xcb:
        return this.#float(8);
      case 0xcc:
        return this.#u8();
      case 0xcd:
        return this.#u16();
      case 0xce:
        return this.#u32();
      case 0xcf:
        return this.#u32() * TWO_32 + this.#u32();
      case 0xd0:
        return (this.#u8() << 24) >> 24;
      case 0xd1:
        return (this.#u16() << 16) >> 16;
      case 0xd2:
        return this.#u32() | 0;
      default: // 0xd3: the sum rounds once, so out-of-range values become the nearest double
        return (this.#u32() | 0) * TWO_32 + this.#u32();
    }
  }

  /** Reads a string body of `len` bytes whose header started at byte `at`. */
  #stringBody(len: number, at: number, cached = false): string {
    this.#checkLength(len, 1, "string", at);
    const start = this.#pos;
    this.#pos = start + len;
    try {
      return cached
        ? decodeUtf8Cached(this.#bytes, start, start + len)
        : decodeUtf8(this.#bytes, start, start + len);
    } catch (e) {
      throw new SyntaxError(
        `Invalid UTF-8 in MessagePack string at byte ${at}: ${
          (e as Error).message
        }`,
      );
    }
  }

  #binaryBody(len: number, at: number): Uint8Array {
    this.#checkLength(len, 1, "binary", at);
    const start = this.#pos;
    this.#pos = start + len;
    return this.#bytes.subarray(start, start + len);
  }

  /** Reads nil. */
  readNil(): null {
    if (this.#peek() !== 0xc0) throw this.#mismatch("nil");
    this.#pos++;
    return null;
  }

  /** Reads a boolean. */
  readBoolean(): boolean {
    const b = this.#peek();
    if (b !== 0xc2 && b !== 0xc3) throw this.#mismatch("boolean");
    this.#pos++;
    return b === 0xc3;
  }

  /** Reads any integer or float format as a number (64-bit ints round to the nearest double). */
  readNumber(): number {
    const b = this.#peek();
    if (b < 0x80) {
      this.#pos++;
      return b;
    }
    if (b >= 0xe0) {
      this.#pos++;
      return b - 0x100;
    }
    if (b < 0xca || b > 0xd3) throw this.#mismatch("number");
    this.#pos++;
    return this.#numberBody(b);
  }

  /** Consumes the lead byte if it is of kind `type`; returns its declared length. */
  #lead(type: PackType): number {
    const b = this.#peek();
    if (LEAD_TYPES[b] !== type) throw this.#mismatch(type);
    this.#pos++;
    return this.#length(b);
  }

  /** The length declared by lead byte `b` (already consumed) of a str/bin/array/map. */
  #length(b: number): number {
    const n = LENGTHS[b];
    if (n >= 0) return n;
    return n === -1 ? this.#u8() : n === -2 ? this.#u16() : this.#u32();
  }

  /** Reads a string (validated UTF-8). */
  readString(): string {
    const at = this.#pos;
    return this.#stringBody(this.#lead("string"), at);
  }

  /** Reads binary data as a subarray of the input (no copy). */
  readBinary(): Uint8Array {
    const at = this.#pos;
    return this.#binaryBody(this.#lead("binary"), at);
  }

  /** Reads an array header and returns its element count. */
  readArrayHeader(): number {
    const at = this.#pos;
    const n = this.#lead("array");
    this.#checkLength(n, 1, "array", at);
    return n;
  }

  /** Reads a map header and returns its entry count. */
  readMapHeader(): number {
    const at = this.#pos;
    const n = this.#lead("map");
    this.#checkLength(n, 2, "map", at);
    return n;
  }

  /** The kind of the next value, without consuming it. */
  peekType(): PackType {
    return LEAD_TYPES[this.#peek()];
  }

  /**
   * Reads one complete value. Maps become objects with a null prototype (so a key
   * `"__proto__"` is an ordinary property). Binary data is copied out of the input, unless
   * `views` is true: then binary values are subarrays of the input (no copy, as
   * `readBinary` does), valid while the input is not changed.
   */
  readValue(maxDepth: number = MAX_DEPTH, views = false): Packable {
    this.#views = views;
    return this.#value(0, checkMaxDepth(maxDepth));
  }

  /** Skips one complete value (string contents are not UTF-8 validated). */
  skipValue(maxDepth: number = MAX_DEPTH): void {
    this.#skip(0, checkMaxDepth(maxDepth));
  }

  #enter(depth: number, maxDepth: number, at: number): void {
    if (depth >= maxDepth) {
      throw new RangeError(
        `MessagePack value at byte ${at} is nested deeper than ${maxDepth}`,
      );
    }
  }

  #value(depth: number, maxDepth: number): Packable {
    const at = this.#pos;
    if (at >= this.#end) this.#need(1);
    const b = this.#bytes[at];
    this.#pos = at + 1;
    // The common lead bytes first, by number (no table lookups).
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0) {
      if (b < 0xc0) return this.#stringBody(b & 0x1f, at);
      if (b >= 0xca && b <= 0xd3) return this.#numberBody(b);
      switch (b) {
        case 0xc0:
          return null;
        case 0xc2:
          return false;
        case 0xc3:
          return true;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const n = this.#length(b);
          return this.#views
            ? this.#binaryBody(n, at)
            : this.#binaryBody(n, at).slice();
        }
        case 0xd9:
        case 0xda:
        case 0xdb:
          return this.#stringBody(this.#length(b), at);
        case 0xdc:
        case 0xdd:
          return this.#array(this.#length(b), depth, maxDepth, at);
        case 0xde:
        case 0xdf:
          return this.#map(this.#length(b), depth, maxDepth, at);
        default:
          throw this.#unsupported(b, at);
      }
    }
    if (b < 0x90) return this.#map(b & 0x0f, depth, maxDepth, at);
    return this.#array(b & 0x0f, depth, maxDepth, at);
  }

  #unsupported(b: number, at: number): SyntaxError {
    return new SyntaxError(
      b === 0xc1
        ? `Reserved MessagePack byte 0xc1 at byte ${at}`
        : `MessagePack ext type (${hex(b)}) at byte ${at} is not supported`,
    );
  }

  #array(n: number, depth: number, maxDepth: number, at: number): Packable[] {
    this.#enter(depth, maxDepth, at);
    this.#checkLength(n, 1, "array", at);
    const out: Packable[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#value(depth + 1, maxDepth);
    return out;
  }

  #map(
    n: number,
    depth: number,
    maxDepth: number,
    at: number,
  ): Record<string, Packable> {
    this.#enter(depth, maxDepth, at);
    this.#checkLength(n, 2, "map", at);
    const out: Record<string, Packable> = Object.create(null);
    for (let i = 0; i < n; i++) {
      const keyAt = this.#pos;
      const b = this.#peek();
      let key: string;
      if (b >= 0xa0 && b < 0xc0) {
        this.#pos++;
        key = this.#stringBody(b & 0x1f, keyAt, true);
      } else if (b >= 0xd9 && b <= 0xdb) {
        this.#pos++;
        key = this.#stringBody(this.#length(b), keyAt);
      } else {
        throw new SyntaxError(
          `MessagePack map key at byte ${keyAt} is a ${LEAD_TYPES[b]} (${
            hex(b)
          }), not a string`,
        );
      }
      if (key in out) {
        throw new SyntaxError(
          `Duplicate MessagePack map key ${
            JSON.stringify(key)
          } at byte ${keyAt}`,
        );
      }
      out[key] = this.#value(depth + 1, maxDepth);
    }
    return out;
  }

  #skip(depth: number, maxDepth: number): void {
    const at = this.#pos;
    const b = this.#peek();
    const type = LEAD_TYPES[b];
    this.#pos++;
    switch (type) {
      case "nil":
      case "boolean":
        return;
      case "number":
        if (b >= 0xca && b <= 0xd3) this.#numberBody(b);
        return;
      case "string":
      case "binary": {
        const n = this.#length(b);
        this.#checkLength(n, 1, type, at);
        this.#pos += n;
        return;
      }
      case "array":
      case "map": {
        const n = this.#length(b);
        const unit = type === "map" ? 2 : 1;
        this.#enter(depth, maxDepth, at);
        this.#checkLength(n, unit, type, at);
        for (let i = n * unit; i > 0; i--) this.#skip(depth + 1, maxDepth);
        return;
      }
      default:
        throw this.#unsupported(b, at);
    }
  }
}
