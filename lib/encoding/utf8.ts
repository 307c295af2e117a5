/**
 * UTF-8 helpers for the MessagePack codec. Short strings are converted by hand because
 * `TextEncoder`/`TextDecoder` calls cost a few hundred nanoseconds each, which would
 * dominate encoding small records; long strings use the built-ins.
 *
 * @module
 */

/** Strings longer than this many bytes are decoded with `TextDecoder`. */
const SHORT_UTF8 = 64;

const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Scratch UTF-16 code units for {@linkcode decodeUtf8}; never longer than SHORT_UTF8. */
const units: number[] = [];

function loneSurrogate(s: string, i: number): TypeError {
  return new TypeError(
    `Cannot encode string ${JSON.stringify(s.slice(0, 40))} as UTF-8: ` +
      `lone surrogate at index ${i}`,
  );
}

/**
 * The index of the first lone surrogate in `s` (a UTF-16 code unit D800-DFFF that is not
 * half of a pair), or -1 when `s` is well formed. A lone surrogate has no UTF-8 form, so
 * such a string cannot be stored or sent: callers refuse it, naming the index.
 */
export function loneSurrogateAt(s: string): number {
  if (s.isWellFormed()) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c >= 0xe000) continue;
    if (
      c < 0xdc00 && i + 1 < s.length &&
      (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

/**
 * Counts the UTF-8 bytes of `s`. Throws TypeError on a lone surrogate, which has no
 * UTF-8 form (encoding it as U+FFFD would make two strings encode alike).
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c >= 0xe000) n += 3;
    else if (
      c < 0xdc00 && i + 1 < s.length &&
      (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      n += 4;
      i++;
    } else throw loneSurrogate(s, i);
  }
  return n;
}

/**
 * Writes `s` as UTF-8 into `buf` at `p` and returns the position after it. The string
 * must be well formed (check with {@linkcode utf8Length}) and `buf` large enough.
 */
export function encodeUtf8Into(s: string, buf: Uint8Array, p: number): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) buf[p++] = c;
    else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c >= 0xe000) {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    } else {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[p++] = 0xf0 | (c >> 18);
      buf[p++] = 0x80 | ((c >> 12) & 0x3f);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/**
 * Compares two well-formed strings by their UTF-8 bytes (that is, by code point), which
 * differs from JavaScript's `<` when characters above U+FFFF meet U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates stand for code points above U+FFFF: move them above U+E000..U+FFFF.
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Hand-decodes short UTF-8; null when the bytes are not valid UTF-8. */
function decodeShort(b: Uint8Array, i: number, end: number): string | null {
  let k = 0;
  while (i < end) {
    const b0 = b[i++];
    if (b0 < 0x80) {
      units[k++] = b0;
      continue;
    }
    let cp: number;
    if (b0 >= 0xc2 && b0 < 0xe0 && i < end) {
      const b1 = b[i++] ^ 0x80; // a continuation byte 10xxxxxx becomes 00xxxxxx
      if (b1 > 0x3f) return null;
      cp = ((b0 & 0x1f) << 6) | b1;
    } else if (b0 >= 0xe0 && b0 < 0xf0 && i + 1 < end) {
      const b1 = b[i++] ^ 0x80, b2 = b[i++] ^ 0x80;
      if ((b1 | b2) > 0x3f) return null;
      cp = ((b0 & 0x0f) << 12) | (b1 << 6) | b2;
      if (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)) return null;
    } else if (b0 >= 0xf0 && b0 < 0xf5 && i + 2 < end) {
      const b1 = b[i++] ^ 0x80, b2 = b[i++] ^ 0x80, b3 = b[i++] ^ 0x80;
      if ((b1 | b2 | b3) > 0x3f) return null;
      cp = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3;
      if (cp < 0x10000 || cp > 0x10ffff) return null;
      cp -= 0x10000;
      units[k++] = 0xd800 | (cp >> 10);
      cp = 0xdc00 | (cp & 0x3ff);
    } else return null;
    units[k++] = cp;
  }
  units.length = k;
  return String.fromCharCode.apply(null, units);
}

/**
 * Decodes `bytes[start..end)` as UTF-8; throws TypeError when it is not valid UTF-8, naming
 * the offending bytes (an encoded surrogate, the CESU-8 form of a lone surrogate, says so).
 */
export function decodeUtf8(
  bytes: Uint8Array,
  start: number,
  end: number,
): string {
  if (end - start <= SHORT_UTF8) {
    const s = decodeShort(bytes, start, end);
    if (s !== null) return s;
  }
  try {
    return textDecoder.decode(bytes.subarray(start, end));
  } catch {
    throw invalidUtf8(bytes, start, end);
  }
}

/** Length of the well-formed UTF-8 sequence at `i`, or 0 when it is malformed. */
function sequenceAt(b: Uint8Array, i: number, end: number): number {
  const b0 = b[i];
  if (b0 < 0x80) return 1;
  const n = b0 >= 0xc2 && b0 < 0xe0
    ? 2
    : b0 >= 0xe0 && b0 < 0xf0
    ? 3
    : b0 >= 0xf0 && b0 < 0xf5
    ? 4
    : 0;
  if (n === 0 || i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k] & 0xc0) !== 0x80) return 0;
  const b1 = b[i + 1];
  if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
  if (b0 === 0xed && b1 >= 0xa0) return 0; // a surrogate
  if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
  if (b0 === 0xf4 && b1 >= 0x90) return 0; // above U+10FFFF
  return n;
}

function invalidUtf8(b: Uint8Array, start: number, end: number): TypeError {
  let i = start;
  for (let n; i < end && (n = sequenceAt(b, i, end)) > 0;) i += n;
  const hex = Array.from(
    b.subarray(i, Math.min(i + 3, end)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join(" ");
  const surrogate = b[i] === 0xed && i + 2 < end && b[i + 1] >= 0xa0 &&
    (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80;
  return new TypeError(
    `invalid UTF-8 at byte ${i - start} of the string (${hex}${
      surrogate
        ? `: an encoded lone surrogate U+${
          (((b[i] & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f))
            .toString(16).toUpperCase()
        }; UTF-8 has no form for surrogates`
        : ""
    })`,
  );
}

const CACHE_SLOTS = 1024; // a power of two
const MAX_CACHED = 16; // bytes
const cachedStrings: (string | undefined)[] = new Array(CACHE_SLOTS).fill(
  undefined,
);
const cachedLengths = new Uint8Array(CACHE_SLOTS);
const cachedBytes = new Uint8Array(CACHE_SLOTS * MAX_CACHED);

/**
 * Like {@linkcode decodeUtf8}, but short strings go through a small direct-mapped cache,
 * so repeated map keys (field names) cost one hash and compare and share one string.
 */
export function decodeUtf8Cached(
  bytes: Uint8Array,
  start: number,
  end: number,
): string {
  const len = end - start;
  if (len > MAX_CACHED) return decodeUtf8(bytes, start, end);
  let h = len;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x9e3779b1);
  const slot = (h >>> 22) & (CACHE_SLOTS - 1);
  const base = slot * MAX_CACHED;
  const hit = cachedStrings[slot];
  if (hit !== undefined && cachedLengths[slot] === len) {
    let i = 0;
    while (i < len && cachedBytes[base + i] === bytes[start + i]) i++;
    if (i === len) return hit;
  }
  const s = decodeUtf8(bytes, start, end);
  cachedStrings[slot] = s;
  cachedLengths[slot] = len;
  cachedBytes.set(bytes.subarray(start, end), base);
  return s;
}
