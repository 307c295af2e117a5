/**
 * The encoding half of Capra's canonical MessagePack (see `msgpack.ts` for the rules).
 *
 * @module
 */

import { compareUtf8, encodeUtf8Into, utf8Length } from "./utf8.ts";

/** A value the codec can encode. Dates, sets and maps must be converted first. */
export type Packable =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly Packable[]
  | { readonly [key: string]: Packable };

/** Default limit on nested arrays/maps, for both encoding and decoding. */
export const MAX_DEPTH = 64;

/** Strings up to this many UTF-16 units are UTF-8 encoded by hand (faster than encodeInto). */
const SHORT_STRING = 64;
const TWO_32 = 0x1_0000_0000;
const MAX_LENGTH = 0xffff_ffff;

const textEncoder = new TextEncoder();

function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort(compareUtf8);
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i];
    let j = i - 1;
    while (j >= 0 && compareUtf8(keys[j], k) > 0) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = k;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "number" || typeof v === "bigint") {
    return `${typeof v} ${String(v)}`;
  }
  if (typeof v !== "object" || v === null) return typeof v;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== ""
    ? name
    : "object with a custom prototype";
}

/** Appends canonical MessagePack to a reusable, growable buffer. */
export class MsgpackWriter {
  #buf: Uint8Array<ArrayBuffer>;
  #view: DataView;
  #pos = 0;

  /** Creates a writer whose buffer starts at `initialCapacity` bytes. */
  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written since the last reset. */
  get length(): number {
    return this.#pos;
  }

  /** Forgets everything written; keeps the buffer. */
  reset(): void {
    this.#pos = 0;
  }

  /** A copy of the bytes written so far. */
  toBytes(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#pos);
  }

  /** The bytes written so far, without copying; valid until the next write or reset. */
  view(): Uint8Array<ArrayBuffer> {
    return this.#buf.subarray(0, this.#pos);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends bytes that already are MessagePack (e.g. a cached encoding). */
  writeRaw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Writes nil. */
  writeNil(): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = 0xc0;
  }

  /** Writes a boolean. */
  writeBoolean(b: boolean): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = b ? 0xc3 : 0xc2;
  }

  /** Writes a number: the smallest integer form for safe integers, else a float64. */
  writeNumber(n: number): void {
    this.#ensure(9);
    const buf = this.#buf;
    let p = this.#pos;
    if (!Number.isSafeInteger(n)) {
      buf[p] = 0xcb;
      if (n !== n) {
        buf[p + 1] = 0x7f;
        buf[p + 2] = 0xf8;
        buf.fill(0, p + 3, p + 9);
      } else this.#view.setFloat64(p + 1, n);
      this.#pos = p + 9;
      return;
    }
    if (n >= 0) {
      if (n < 0x80) buf[p++] = n;
      else if (n < 0x100) {
        buf[p++] = 0xcc;
        buf[p++] = n;
      } else if (n < 0x10000) {
        buf[p++] = 0xcd;
        buf[p++] = n >>> 8;
        buf[p++] = n;
      } else if (n < TWO_32) {
        buf[p++] = 0xce;
        p = put32(buf, p, n);
      } else {
        buf[p++] = 0xcf;
        p = put32(buf, put32(buf, p, Math.floor(n / TWO_32)), n >>> 0);
      }
    } else if (n >= -32) buf[p++] = n & 0xff;
    else if (n >= -0x80) {
      buf[p++] = 0xd0;
      buf[p++] = n & 0xff;
    } else if (n >= -0x8000) {
      buf[p++] = 0xd1;
      buf[p++] = (n >> 8) & 0xff;
      buf[p++] = n & 0xff;
    } else if (n >= -0x8000_0000) {
      buf[p++] = 0xd2;
      p = put32(buf, p, n);
    } else {
      const hi = Math.floor(n / TWO_32);
      buf[p++] = 0xd3;
      p = put32(buf, put32(buf, p, hi), n - hi * TWO_32);
    }
    this.#pos = p;
  }

  #header(
    len: number,
    fix: number,
    fixMax: number,
    c8: number,
    c16: number,
  ): void {
    if (!(len >= 0 && len <= MAX_LENGTH && Number.isInteger(len))) {
      throw new RangeError(
        `Cannot write MessagePack length ${len}: must be 0..${MAX_LENGTH}`,
      );
    }
    this.#ensure(5);
    const buf = this.#buf;
    let p = this.#pos;
    if (len <= fixMax) buf[p++] = fix | len;
    else if (len < 0x100 && c8 !== 0) {
      buf[p++] = c8;
      buf[p++] = len;
    } else if (len < 0x10000) {
      buf[p++] = c16;
      buf[p++] = len >>> 8;
      buf[p++] = len;
    } else {
      buf[p++] = c16 + 1;
      p = put32(buf, p, len);
    }
    this.#pos = p;
  }

  /** Writes the header of an array of `n` elements; the elements must follow. */
  writeArrayHeader(n: number): void {
    this.#header(n, 0x90, 15, 0, 0xdc);
  }

  /** Writes the header of a map of `n` entries; `n` key/value pairs must follow. */
  writeMapHeader(n: number): void {
    this.#header(n, 0x80, 15, 0, 0xde);
  }

  /** Writes binary data (bin8/16/32). */
  writeBinary(bytes: Uint8Array): void {
    this.#header(bytes.length, 0xc4, -1, 0xc4, 0xc5);
    this.writeRaw(bytes);
  }

  /** Writes a string as UTF-8 with the smallest header. Throws TypeError on lone surrogates. */
  writeString(s: string): void {
    const n = s.length;
    if (n > SHORT_STRING) return this.#writeLongString(s);
    this.#ensure(2 + 3 * n);
    const buf = this.#buf;
    const start = this.#pos + (n < 32 ? 1 : 2);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i === n) {
      // ASCII: byte length equals n, so the header was reserved at the right size.
      if (n < 32) buf[this.#pos] = 0xa0 | n;
      else {
        buf[this.#pos] = 0xd9;
        buf[this.#pos + 1] = n;
      }
      this.#pos = start + n;
      return;
    }
    this.#header(utf8Length(s), 0xa0, 31, 0xd9, 0xda);
    this.#pos = encodeUtf8Into(s, this.#buf, this.#pos);
  }

  #writeLongString(s: string): void {
    if (!s.isWellFormed()) utf8Length(s); // throws, naming the index
    const max = 3 * s.length;
    const reserve = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.#ensure(reserve + max);
    const at = this.#pos + reserve;
    const { written } = textEncoder.encodeInto(s, this.#buf.subarray(at));
    this.#header(written, 0xa0, 31, 0xd9, 0xda);
    if (this.#pos !== at) this.#buf.copyWithin(this.#pos, at, at + written);
    this.#pos += written;
  }

  /** Writes any {@linkcode Packable} canonically. Throws TypeError for anything else. */
  writeValue(v: Packable): void {
    this.#value(v, 0);
  }

  #value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.writeString(v);
      case "number":
        return this.writeNumber(v);
      case "boolean":
        return this.writeBoolean(v);
      case "object":
        break;
      default:
        throw new TypeError(`Cannot encode ${describe(v)} as MessagePack`);
    }
    if (v === null) return this.writeNil();
    if (depth >= MAX_DEPTH) {
      throw new RangeError(
        `Cannot encode value nested deeper than ${MAX_DEPTH} levels (or circular) as MessagePack`,
      );
    }
    if (Array.isArray(v)) {
      this.writeArrayHeader(v.length);
      for (let i = 0; i < v.length; i++) this.#value(v[i], depth + 1);
      return;
    }
    if (v instanceof Uint8Array) return this.writeBinary(v);
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(
        `Cannot encode ${
          describe(v)
        } as MessagePack; convert it to plain data first`,
      );
    }
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    sortKeys(keys);
    this.writeMapHeader(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const item = obj[key];
      if (item === undefined) {
        throw new TypeError(
          `Cannot encode undefined at object key ${
            JSON.stringify(key)
          } as MessagePack`,
        );
      }
      this.writeString(key);
      this.#value(item, depth + 1);
    }
  }
}

function put32(buf: Uint8Array, p: number, n: number): number {
  buf[p] = n >>> 24;
  buf[p + 1] = n >>> 16;
  buf[p + 2] = n >>> 8;
  buf[p + 3] = n;
  return p + 4;
}
