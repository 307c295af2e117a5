/**
 * Test helpers for the sync module: a seeded random source and id generators. Used only
 * by the `*_test.ts` files next to it.
 *
 * @module
 */

import { compareIds, ID_BYTES, toHex } from "./id_bytes.ts";

/** A small deterministic random source (sfc32), seeded with a 32-bit integer. */
export class SeededRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.uint32();
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.uint32() / 0x1_0000_0000) * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.uint32() / 0x1_0000_0000 < p;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uint32() & 0xff;
    return out;
  }

  /** A random 32-byte id. */
  id(): Uint8Array {
    return this.bytes(ID_BYTES);
  }

  /** `n` distinct random ids. */
  ids(n: number): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    while (out.length < n) {
      const id = this.id();
      const key = String.fromCharCode(...id);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(id);
    }
    return out;
  }
}

/** A fresh seed, or the one given in the environment-provided string. */
export function pickSeed(fromEnv: string | undefined): number {
  if (fromEnv !== undefined && fromEnv !== "") return Number(fromEnv) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Sorted hex strings of some ids (for readable equality assertions). */
export function sortedHex(ids: Iterable<Uint8Array>): string[] {
  return Array.from(ids).sort(compareIds).map(toHex);
}

/** Ids of `a` that are not in `b`, as sorted hex. */
export function hexDifference(
  a: readonly Uint8Array[],
  b: readonly Uint8Array[],
): string[] {
  const other = new Set(b.map(toHex));
  return a.map(toHex).filter((h) => !other.has(h)).sort();
}
