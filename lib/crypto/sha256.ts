/**
 * Synchronous SHA-256 (FIPS 180-4) in plain JavaScript. `crypto.subtle.digest` is
 * asynchronous, and commit ids are computed on hot synchronous paths, so Capra carries
 * its own. One message schedule and one state array are shared by all calls (JavaScript
 * is single-threaded per realm), so hashing allocates only the 32-byte result.
 *
 * @example
 * ```ts
 * import { sha256 } from "./sha256.ts";
 * sha256(new TextEncoder().encode("abc")); // ba 78 16 bf ... f2 00 15 ad
 * ```
 *
 * @module
 */

// deno-fmt-ignore
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// deno-fmt-ignore
const INITIAL = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The message schedule, reused by every block. */
const W = new Int32Array(64);
/** The running hash state. */
const H = new Int32Array(8);
/** Holds a partial block (between parts) and the final padding. */
const tail = new Uint8Array(128);

/** Σ0 of the compression function. */
function sigma0(a: number): number {
  return ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^
    ((a >>> 22) | (a << 10));
}

/** Σ1 of the compression function. */
function sigma1(e: number): number {
  return ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^
    ((e >>> 25) | (e << 7));
}

/** Processes the 64-byte blocks of `data[pos..end)`; returns where it stopped. */
function blocks(data: Uint8Array, pos: number, end: number): number {
  const w = W, k = K, h = H;
  let h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3];
  let h4 = h[4], h5 = h[5], h6 = h[6], h7 = h[7];
  while (end - pos >= 64) {
    for (let i = 0; i < 16; i++, pos += 4) {
      w[i] = (data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) |
        data[pos + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15], y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^
        (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7;
    // Eight rounds per iteration with the working variables renamed instead of shifted.
    for (let i = 0; i < 64; i += 8) {
      let t: number;
      t = (hh + sigma1(e) + (g ^ (e & (f ^ g))) + k[i + 0] + w[i + 0]) | 0;
      d = (d + t) | 0;
      hh = (t + sigma0(a) + ((a & b) ^ (c & (a ^ b)))) | 0;
      t = (g + sigma1(d) + (f ^ (d & (e ^ f))) + k[i + 1] + w[i + 1]) | 0;
      c = (c + t) | 0;
      g = (t + sigma0(hh) + ((hh & a) ^ (b & (hh ^ a)))) | 0;
      t = (f + sigma1(c) + (e ^ (c & (d ^ e))) + k[i + 2] + w[i + 2]) | 0;
      b = (b + t) | 0;
      f = (t + sigma0(g) + ((g & hh) ^ (a & (g ^ hh)))) | 0;
      t = (e + sigma1(b) + (d ^ (b & (c ^ d))) + k[i + 3] + w[i + 3]) | 0;
      a = (a + t) | 0;
      e = (t + sigma0(f) + ((f & g) ^ (hh & (f ^ g)))) | 0;
      t = (d + sigma1(a) + (c ^ (a & (b ^ c))) + k[i + 4] + w[i + 4]) | 0;
      hh = (hh + t) | 0;
      d = (t + sigma0(e) + ((e & f) ^ (g & (e ^ f)))) | 0;
      t = (c + sigma1(hh) + (b ^ (hh & (a ^ b))) + k[i + 5] + w[i + 5]) | 0;
      g = (g + t) | 0;
      c = (t + sigma0(d) + ((d & e) ^ (f & (d ^ e)))) | 0;
      t = (b + sigma1(g) + (a ^ (g & (hh ^ a))) + k[i + 6] + w[i + 6]) | 0;
      f = (f + t) | 0;
      b = (t + sigma0(c) + ((c & d) ^ (e & (c ^ d)))) | 0;
      t = (a + sigma1(f) + (hh ^ (f & (g ^ hh))) + k[i + 7] + w[i + 7]) | 0;
      e = (e + t) | 0;
      a = (t + sigma0(b) + ((b & c) ^ (d & (b ^ c)))) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + hh) | 0;
  }
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
  h[4] = h4;
  h[5] = h5;
  h[6] = h6;
  h[7] = h7;
  return pos;
}

/** Pads the `used` bytes already in `tail`, hashes them and returns the digest. */
function finish(used: number, totalLength: number): Uint8Array<ArrayBuffer> {
  tail[used++] = 0x80;
  const size = used <= 56 ? 64 : 128;
  tail.fill(0, used, size);
  // The message length in bits, as a 64-bit big-endian integer.
  const bitsHigh = Math.floor(totalLength / 0x2000_0000);
  const bitsLow = (totalLength << 3) >>> 0;
  writeU32(tail, size - 8, bitsHigh);
  writeU32(tail, size - 4, bitsLow);
  blocks(tail, 0, size);
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) writeU32(out, i * 4, H[i]);
  return out;
}

function writeU32(buf: Uint8Array, p: number, n: number): void {
  buf[p] = n >>> 24;
  buf[p + 1] = n >>> 16;
  buf[p + 2] = n >>> 8;
  buf[p + 3] = n;
}

/**
 * SHA-256 of `data`.
 *
 * @example
 * ```ts
 * sha256(new Uint8Array(0)); // e3 b0 c4 42 ... 78 52 b8 55
 * ```
 */
export function sha256(data: Uint8Array): Uint8Array<ArrayBuffer> {
  H.set(INITIAL);
  const pos = blocks(data, 0, data.length);
  const rest = data.length - pos;
  for (let i = 0; i < rest; i++) tail[i] = data[pos + i];
  return finish(rest, data.length);
}

/**
 * SHA-256 of the concatenation of `parts`, without concatenating them.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * sha256Parts([enc.encode("a"), enc.encode("bc")]); // equals sha256(enc.encode("abc"))
 * ```
 */
export function sha256Parts(
  parts: readonly Uint8Array[],
): Uint8Array<ArrayBuffer> {
  H.set(INITIAL);
  let used = 0; // bytes waiting in `tail`
  let total = 0;
  for (const part of parts) {
    total += part.length;
    let pos = 0;
    if (used > 0) {
      const take = Math.min(64 - used, part.length);
      for (let i = 0; i < take; i++) tail[used + i] = part[i];
      used += take;
      pos = take;
      if (used < 64) continue;
      blocks(tail, 0, 64);
      used = 0;
    }
    pos = blocks(part, pos, part.length);
    for (; pos < part.length; pos++) tail[used++] = part[pos];
  }
  return finish(used, total);
}
