/** Shared test helpers: a seeded PRNG, schemas, and temporary directories. */

import type { Item, Schema } from "../mod.ts";

/** A small, fast seeded PRNG (mulberry32). */
export class Rng {
  #s: number;
  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** A seed from CAPRA_SEED or the clock, printed so a failure can be replayed. */
export function testSeed(name: string): number {
  const env = Deno.env.get("CAPRA_SEED");
  const seed = env
    ? Number(env)
    : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
  console.log(`${name}: seed ${seed} (replay with CAPRA_SEED=${seed})`);
  return seed;
}

/** The schema used across tests. */
export const TODO: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    n: { type: "number" },
  },
};

/** A schema with every field type. */
export const EVERYTHING: Schema = {
  ns: "all",
  version: 1,
  fields: {
    s: { type: "string" },
    n: { type: "number" },
    b: { type: "boolean" },
    d: { type: "date" },
    tags: { type: "set" },
    attrs: { type: "map" },
    body: { type: "text" },
  },
};

/** Creates a temporary directory removed by the returned disposer. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "capra-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () =>
      Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A canonical, comparable view of an item. */
export function snapshot(item: Item): string {
  const o = item.toObject();
  const out: Record<string, unknown> = { deleted: item.isDeleted };
  for (const k of Object.keys(o).sort()) {
    const v = o[k];
    out[k] = v instanceof Set
      ? [...v].map(String).sort()
      : v instanceof Map
      ? [...v].sort(([a], [b]) => (a < b ? -1 : 1))
      : v instanceof Date
      ? v.getTime()
      : v;
  }
  return JSON.stringify(out);
}
