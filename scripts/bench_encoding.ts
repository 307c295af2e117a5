/**
 * Encoding benchmarks on real stored commits: Capra's MessagePack reader against
 * `@msgpack/msgpack` (generic decode of a whole commit), and its base64url encoder against
 * `Uint8Array.prototype.toBase64` (session ids, commit ids, 64 bytes as a signature).
 * Medians of several runs whose chunks alternate between the two sides, so both see the
 * same machine load and neither always pays the cache misses.
 *
 * @module
 */

import { decode as libraryDecode } from "@msgpack/msgpack";
import { decode } from "../lib/encoding/msgpack.ts";
import { decodeBase64Url, encodeBase64Url } from "../lib/encoding/base64url.ts";
import { commitIdBytes, decodeCommit } from "../lib/commit/commit.ts";
import { sha256 as sha } from "../lib/crypto/sha256.ts";

/** One benchmark row: Capra and its baseline, ms per operation. */
export interface EncodingRow {
  readonly name: string;
  readonly capraMs: number;
  readonly baselineMs: number;
  readonly target?: string;
}

const RUNS = 9;
/** Both sides run on each chunk in turn, so they see the same machine load. */
const CHUNK = 500;

/** Median ms per item of `f` and of `g` over `items` (`RUNS` runs, chunks interleaved). */
function race<T>(
  items: readonly T[],
  f: (x: T) => unknown,
  g: (x: T) => unknown,
): [number, number] {
  const a: number[] = [], b: number[] = [];
  let sink = 0;
  for (let run = 0; run < RUNS; run++) {
    let ta = 0, tb = 0;
    for (let i = 0; i < items.length; i += CHUNK) {
      const chunk = items.slice(i, i + CHUNK);
      // The side that reads a chunk first pays its cache misses: alternate.
      const fFirst = (i / CHUNK) % 2 === 0;
      for (const side of fFirst ? [f, g] : [g, f]) {
        const t = performance.now();
        for (const x of chunk) if (side(x) === sink) sink++;
        if (side === f) ta += performance.now() - t;
        else tb += performance.now() - t;
      }
    }
    a.push(ta / items.length);
    b.push(tb / items.length);
  }
  const median = (xs: number[]) =>
    xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return [median(a), median(b)];
}

/** Runs the encoding benchmarks on the stored bytes of `commits` (no record header). */
export function benchEncoding(commits: readonly Uint8Array[]): EncodingRow[] {
  const rows: EncodingRow[] = [];
  for (const c of commits.slice(0, 100)) {
    // Both decoders read the same values (the library returns plain objects).
    const ours = JSON.stringify(decode(c, { views: true }), bin);
    const theirs = JSON.stringify(libraryDecode(c), bin);
    if (ours !== theirs) throw new Error("the decoders disagree on a commit");
  }
  const [views, libViews] = race(
    commits,
    (c) => decode(c, { views: true }),
    (c) => libraryDecode(c),
  );
  rows.push({
    name:
      "MessagePack decode of a stored commit, binaries as views (baseline: @msgpack/msgpack)",
    capraMs: views,
    baselineMs: libViews,
    target: "≤ 1×",
  });
  const [copied, libCopied] = race(
    commits,
    (c) => decode(c),
    (c) => libraryDecode(c),
  );
  rows.push({
    name:
      "same, binaries copied (decode's default; baseline: @msgpack/msgpack, views)",
    capraMs: copied,
    baselineMs: libCopied,
  });
  const ids = commits.map((c) => commitIdBytes(decodeCommit(c).id));
  const sessions = commits.map((c) => decodeBase64Url(decodeCommit(c).session));
  const native = (b: Uint8Array) =>
    (b as unknown as { toBase64(o: object): string }).toBase64(B64_OPTIONS);
  const [id32, id32Native] = race(ids, encodeBase64Url, native);
  rows.push({
    name: "base64url of a 32-byte commit id (baseline: Uint8Array.toBase64)",
    capraMs: id32,
    baselineMs: id32Native,
    target: "≤ 1×",
  });
  const signatures = commits.map((c) => {
    const sig = new Uint8Array(64);
    sig.set(commitIdBytes(decodeCommit(c).id));
    sig.set(sha(c), 32);
    return sig;
  });
  const [sig64, sig64Native] = race(signatures, encodeBase64Url, native);
  rows.push({
    name: "base64url of 64 bytes, a signature (baseline: Uint8Array.toBase64)",
    capraMs: sig64,
    baselineMs: sig64Native,
    target: "≤ 1×",
  });
  const [id16, id16Native] = race(sessions, encodeBase64Url, native);
  rows.push({
    name: "base64url of a 16-byte session id (baseline: Uint8Array.toBase64)",
    capraMs: id16,
    baselineMs: id16Native,
    target: "≤ 1×",
  });
  return rows;
}

const B64_OPTIONS = { alphabet: "base64url", omitPadding: true } as const;

/** JSON of decoded values with binaries as arrays of numbers. */
function bin(_: string, v: unknown): unknown {
  return v instanceof Uint8Array ? [...v] : v;
}
