/** Seeds for randomized tests: CAPRA_SEED replays a run; the seed is always printed. */

/** The run's seed (CAPRA_SEED or random), printed with the test's name. */
export function seedFor(name: string): number {
  const env = Deno.env.get("CAPRA_SEED");
  const seed = env
    ? Number(env) >>> 0
    : crypto.getRandomValues(new Uint32Array(1))[0];
  console.log(`${name} seed: ${seed} (rerun with CAPRA_SEED=${seed})`);
  return seed;
}

/** A small seeded source of unsigned 32-bit integers (mulberry32). */
export function uint32Source(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
