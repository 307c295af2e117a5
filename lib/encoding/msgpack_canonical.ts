/**
 * Checks that bytes are the canonical MessagePack the writer produces (see `msgpack.ts`)
 * without decoding or re-encoding them: integers in their smallest form, every other
 * number a float64 that is no safe integer (NaN the quiet NaN), lengths in their
 * smallest header, no float32, and map keys strictly increasing by their UTF-8 bytes.
 * Meant for input that decoded already (a received commit): it walks the bytes once and
 * allocates nothing.
 *
 * @module
 */

const TWO_32 = 0x1_0000_0000;

/** Where and why bytes deviate from the canonical encoding. */
export interface CanonicalDeviation {
  /** Offset of the value (or header) that is not canonical. */
  readonly offset: number;
  readonly reason: string;
}

class Deviation extends Error {
  constructor(readonly offset: number, readonly reason: string) {
    super(reason);
  }
}

/**
 * The first place where `bytes` (one MessagePack value filling them) differ from the
 * canonical encoding of the value they hold, or null when they are canonical. Malformed
 * bytes (truncated, trailing, unknown lead bytes) are reported as deviations too.
 */
export function canonicalDeviation(
  bytes: Uint8Array,
): CanonicalDeviation | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const end = skipValue(bytes, view, 0, 0);
    if (end !== bytes.length) {
      return { offset: end, reason: "trailing bytes" };
    }
    return null;
  } catch (e) {
    if (e instanceof Deviation) return { offset: e.offset, reason: e.reason };
    if (e instanceof RangeError) {
      return { offset: bytes.length, reason: "truncated" };
    }
    throw e;
  }
}

const MAX_NESTING = 64;

function need(bytes: Uint8Array, at: number, n: number): void {
  if (at + n > bytes.length) throw new RangeError("truncated");
}

/** Length of a str/bin/array/map header's length field, checked for minimality. */
function sized(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  width: 1 | 2 | 4,
  min: number,
): number {
  need(bytes, at + 1, width);
  const len = width === 1
    ? bytes[at + 1]
    : width === 2
    ? view.getUint16(at + 1)
    : view.getUint32(at + 1);
  if (len < min) {
    throw new Deviation(at, `length ${len} in a longer header than needed`);
  }
  return len;
}

/** Compares `a[ai..ai+al)` with `a[bi..bi+bl)` bytewise (shorter first on a tie). */
function compareRanges(
  a: Uint8Array,
  ai: number,
  al: number,
  bi: number,
  bl: number,
): number {
  const n = al < bl ? al : bl;
  for (let i = 0; i < n; i++) {
    const d = a[ai + i] - a[bi + i];
    if (d !== 0) return d;
  }
  return al - bl;
}

/** Skips the string at `at`; returns [start of its bytes, its length, end]. */
function stringAt(
  bytes: Uint8Array,
  view: DataView,
  at: number,
): [number, number, number] {
  need(bytes, at, 1);
  const b = bytes[at];
  let start: number, len: number;
  if (b >= 0xa0 && b <= 0xbf) {
    start = at + 1;
    len = b & 0x1f;
  } else if (b === 0xd9) {
    len = sized(bytes, view, at, 1, 32);
    start = at + 2;
  } else if (b === 0xda) {
    len = sized(bytes, view, at, 2, 0x100);
    start = at + 3;
  } else if (b === 0xdb) {
    len = sized(bytes, view, at, 4, 0x10000);
    start = at + 5;
  } else throw new Deviation(at, "a map key that is not a string");
  need(bytes, start, len);
  return [start, len, start + len];
}

function skipValue(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  depth: number,
): number {
  if (depth > MAX_NESTING) throw new Deviation(at, "nested too deep");
  need(bytes, at, 1);
  const b = bytes[at];
  if (b < 0x80 || b >= 0xe0) return at + 1; // fixint
  if (b <= 0x8f) return skipMap(bytes, view, at + 1, b & 0x0f, depth);
  if (b <= 0x9f) return skipArray(bytes, view, at + 1, b & 0x0f, depth);
  if (b <= 0xbf) {
    const end = at + 1 + (b & 0x1f);
    need(bytes, at, end - at);
    return end;
  }
  switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return at + 1;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      const width = b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4;
      const min = b === 0xc4 ? 0 : b === 0xc5 ? 0x100 : 0x10000;
      const len = sized(bytes, view, at, width, min);
      need(bytes, at + 1 + width, len);
      return at + 1 + width + len;
    }
    case 0xca:
      throw new Deviation(at, "a float32 (the writer writes float64 only)");
    case 0xcb: {
      need(bytes, at, 9);
      const f = view.getFloat64(at + 1);
      if (f !== f) {
        if (view.getUint32(at + 1) !== 0x7ff8_0000 || view.getUint32(at + 5)) {
          throw new Deviation(at, "a NaN other than the quiet NaN");
        }
      } else if (Number.isSafeInteger(f) || Object.is(f, -0)) {
        throw new Deviation(at, `a float64 holding the integer ${f}`);
      }
      return at + 9;
    }
    case 0xcc:
      need(bytes, at, 2);
      return minimal(at, bytes[at + 1] >= 0x80, 2);
    case 0xcd:
      need(bytes, at, 3);
      return minimal(at, view.getUint16(at + 1) >= 0x100, 3);
    case 0xce:
      need(bytes, at, 5);
      return minimal(at, view.getUint32(at + 1) >= 0x10000, 5);
    case 0xcf: {
      need(bytes, at, 9);
      const n = view.getUint32(at + 1) * TWO_32 + view.getUint32(at + 5);
      return minimal(
        at,
        view.getUint32(at + 1) > 0 && Number.isSafeInteger(n),
        9,
      );
    }
    case 0xd0:
      need(bytes, at, 2);
      return minimal(at, view.getInt8(at + 1) < -32, 2);
    case 0xd1:
      need(bytes, at, 3);
      return minimal(at, view.getInt16(at + 1) < -0x80, 3);
    case 0xd2:
      need(bytes, at, 5);
      return minimal(at, view.getInt32(at + 1) < -0x8000, 5);
    case 0xd3: {
      need(bytes, at, 9);
      const n = view.getInt32(at + 1) * TWO_32 + view.getUint32(at + 5);
      return minimal(at, n < -0x8000_0000 && Number.isSafeInteger(n), 9);
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
      return stringAt(bytes, view, at)[2];
    case 0xdc:
      return skipArray(
        bytes,
        view,
        at + 3,
        sized(bytes, view, at, 2, 16),
        depth,
      );
    case 0xdd:
      return skipArray(
        bytes,
        view,
        at + 5,
        sized(bytes, view, at, 4, 0x10000),
        depth,
      );
    case 0xde:
      return skipMap(bytes, view, at + 3, sized(bytes, view, at, 2, 16), depth);
    case 0xdf:
      return skipMap(
        bytes,
        view,
        at + 5,
        sized(bytes, view, at, 4, 0x10000),
        depth,
      );
    default:
      throw new Deviation(at, `lead byte 0x${b.toString(16)}`);
  }
}

function minimal(at: number, ok: boolean, size: number): number {
  if (!ok) throw new Deviation(at, "an integer in a longer form than needed");
  return at + size;
}

function skipArray(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  n: number,
  depth: number,
): number {
  for (let i = 0; i < n; i++) at = skipValue(bytes, view, at, depth + 1);
  return at;
}

function skipMap(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  n: number,
  depth: number,
): number {
  let prevStart = -1, prevLen = 0;
  for (let i = 0; i < n; i++) {
    const [start, len, end] = stringAt(bytes, view, at);
    if (
      prevStart >= 0 &&
      compareRanges(bytes, prevStart, prevLen, start, len) >= 0
    ) {
      throw new Deviation(
        at,
        "map keys not in increasing order of their UTF-8 bytes",
      );
    }
    prevStart = start;
    prevLen = len;
    at = skipValue(bytes, view, end, depth + 1);
  }
  return at;
}
