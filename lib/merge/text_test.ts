import assert from "node:assert/strict";
import {
  applySplice,
  applyTextEdits,
  diffText,
  mergeText,
  mergeTextEdits,
  spliceOf,
  type TextEdit,
} from "./text.ts";

// ---- helpers -------------------------------------------------------------------

/** Seed for the randomized tests: `CAPRA_SEED=123 deno test -A lib/merge` replays one. */
const SEED = Number(Deno.env.get("CAPRA_SEED") ?? 20240611);

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

type Rand = ReturnType<typeof rng>;

/** Runs `count` seeded cases, naming the seed and case in any failure. */
function cases(name: string, count: number, run: (r: Rand) => void) {
  console.log(`${name}: seed=${SEED}`);
  const r = rng(SEED);
  for (let i = 0; i < count; i++) {
    try {
      run(r);
    } catch (e) {
      throw new Error(`${name} failed (seed=${SEED}, case ${i})`, { cause: e });
    }
  }
}

// 😀 (D83D DE00) shares its high surrogate with 👍 and its low one with U+1F200.
const SMALL = ["a", "b", "c", " ", "😀", "👍", "\u{1F200}", "é"];

function randomText(
  r: Rand,
  alphabet: readonly string[],
  max: number,
): string[] {
  return Array.from({ length: r(max + 1) }, () => alphabet[r(alphabet.length)]);
}

/** Applies 0-3 random deletes, inserts or replaces to a list of code points. */
function mutate(r: Rand, chars: string[], fresh: () => string): string[] {
  const out = [...chars];
  for (let n = r(4); n > 0; n--) {
    const at = r(out.length + 1);
    const del = r(3) === 0 ? 0 : r(Math.min(4, out.length - at) + 1);
    const ins = r(3) === 0 ? [] : Array.from({ length: 1 + r(3) }, fresh);
    out.splice(at, del, ...ins);
  }
  return out;
}

const LONE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Checks the shape `diffText` promises. */
function assertWellFormed(base: string, edits: readonly TextEdit[]) {
  let pos = -1;
  for (const e of edits) {
    assert.ok(e.start > pos, "sorted, non-overlapping, non-adjacent");
    assert.ok(e.start <= e.end && e.end <= base.length, "in range");
    assert.ok(e.start < e.end || e.insert !== "", "no empty edit");
    assert.ok(!LONE.test(base.slice(e.start, e.end)), "no cut surrogate pair");
    pos = e.end;
  }
}

/** Edit distance in code points: insertions plus deletions, from an LCS table. */
function lcsDistance(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return a.length + b.length - 2 * row[b.length];
}

const cpLength = (s: string) => [...s].length;

function diffCost(base: string, edits: readonly TextEdit[]): number {
  return edits.reduce(
    (n, e) => n + cpLength(base.slice(e.start, e.end)) + cpLength(e.insert),
    0,
  );
}

/** True when `parts` occur in `text` in order, without overlapping. */
function occursInOrder(text: string, parts: readonly string[]): boolean {
  let from = 0;
  for (const p of parts) {
    const at = text.indexOf(p, from);
    if (at < 0) return false;
    from = at + p.length;
  }
  return true;
}

// ---- unit tests --------------------------------------------------------------

Deno.test("diffText finds small edits and round-trips", () => {
  assert.deepEqual(diffText("same", "same"), []);
  assert.deepEqual(diffText("", "new"), [{ start: 0, end: 0, insert: "new" }]);
  assert.deepEqual(diffText("old", ""), [{ start: 0, end: 3, insert: "" }]);
  assert.deepEqual(diffText("the cat sat", "the cat spat"), [
    { start: 9, end: 9, insert: "p" },
  ]);
  assert.deepEqual(diffText("a quick fox", "a quiet box"), [
    { start: 5, end: 7, insert: "et" },
    { start: 8, end: 9, insert: "b" },
  ]);
});

Deno.test("diffText never cuts a surrogate pair", () => {
  // 😀, 😁 and 😂 share their high surrogate.
  const table: [string, string, [number, number, string][]][] = [
    ["x😀y", "x😁y", [[1, 3, "😁"]]],
    ["😀😀", "😀😁😀", [[2, 2, "😁"]]],
    ["a😀b😀c", "a😁b😂c", [[1, 3, "😁"], [4, 6, "😂"]]],
  ];
  for (const [base, target, edits] of table) {
    const expected = edits.map(([start, end, insert]) => ({
      start,
      end,
      insert,
    }));
    assert.deepEqual(diffText(base, target), expected);
  }
});

Deno.test("applyTextEdits rejects malformed edits", () => {
  assert.equal(applyTextEdits("abc", []), "abc");
  assert.equal(
    applyTextEdits("abc", [
      { start: 0, end: 1, insert: "X" },
      { start: 1, end: 1, insert: "Y" },
    ]),
    "XYbc",
  );
  const bad: TextEdit[][] = [
    [{ start: 2, end: 1, insert: "" }],
    [{ start: 0, end: 4, insert: "" }],
    [{ start: 1, end: 2, insert: "" }, { start: 0, end: 1, insert: "" }],
    [{ start: 0, end: 2, insert: "" }, { start: 1, end: 3, insert: "" }],
    [{ start: 0.5, end: 1, insert: "" }],
  ];
  for (const edits of bad) {
    assert.throws(() => applyTextEdits("abc", edits), RangeError);
  }
  assert.throws(
    () => applyTextEdits("😀", [{ start: 1, end: 2, insert: "" }]),
    RangeError,
  );
});

Deno.test("spliceOf and applySplice", () => {
  const table: [string, string, number, number, string][] = [
    ["hello world", "hello brave world", 6, 0, "brave "],
    ["same", "same", 4, 0, ""],
    ["aaa", "aaaa", 3, 0, "a"],
    ["x😀y", "x😁y", 1, 2, "😁"], // common high surrogate stays with its pair
    ["😀", "😁", 0, 2, "😁"],
    ["\uD83D\uDE00", "\uD83C\uDE00", 0, 2, "\uD83C\uDE00"], // common low one too
  ];
  for (const [base, target, start, deleteCount, insert] of table) {
    assert.deepEqual(spliceOf(base, target), { start, deleteCount, insert });
    assert.equal(applySplice(base, { start, deleteCount, insert }), target);
  }
  const bad: [string, number, number][] = [["abc", 2, 2], ["abc", -1, 0], [
    "😀",
    1,
    0,
  ]];
  for (const [base, start, deleteCount] of bad) {
    const splice = { start, deleteCount, insert: "" };
    assert.throws(() => applySplice(base, splice), RangeError);
  }
});

Deno.test("spliceOf round-trips and is surrogate-safe (randomized)", () => {
  cases("spliceOf", 2000, (r) => {
    const base = randomText(r, SMALL, 12).join("");
    const target = mutate(r, [...base], () => SMALL[r(SMALL.length)]).join("");
    const s = spliceOf(base, target);
    assert.equal(applySplice(base, s), target);
    assert.ok(!LONE.test(s.insert));
    assert.ok(!LONE.test(base.slice(s.start, s.start + s.deleteCount)));
  });
});

Deno.test("mergeText: both append at the end", () => {
  assert.equal(mergeText("abc", "abcX", "abcY"), "abcXY");
  assert.equal(mergeText("abc", "abcY", "abcX"), "abcYX", "ours first");
  assert.equal(mergeText("abc", "abcX", "abcX"), "abcX", "identical once");
});

Deno.test("mergeText: both insert at the start", () => {
  assert.equal(mergeText("abc", "Xabc", "Yabc"), "XYabc");
  assert.equal(mergeText("abc", "XXabc", "XXabc"), "XXabc");
});

Deno.test("mergeText: a deleted word and a different edited word", () => {
  const base = "the quick brown fox";
  assert.equal(
    mergeText(base, "the brown fox", "the quick brown cat"),
    "the brown cat",
  );
  assert.equal(
    mergeText(base, "the quick brown cat", "the brown fox"),
    "the brown cat",
  );
});

Deno.test("mergeText: one deletes a range the other inserted into", () => {
  // ours deletes "bcde"; theirs inserts "XY" between c and d: the insertion survives.
  assert.equal(mergeText("abcdef", "af", "abcXYdef"), "aXYf");
  assert.equal(mergeText("abcdef", "abcXYdef", "af"), "aXYf");
  // Insertions at the edges of a replaced range stay on their side of it,
  // whichever side made them.
  assert.equal(mergeText("abcdef", "af", "aXbcdeYf"), "aXYf");
  for (const [x, y] of [["aXbcdef", "aRf"], ["abcdeXf", "aRf"]]) {
    const expected = x === "aXbcdef" ? "aXRf" : "aRXf";
    assert.equal(mergeText("abcdef", x, y), expected);
    assert.equal(mergeText("abcdef", y, x), expected);
  }
});

Deno.test("mergeText: overlapping replacements keep both texts, ours first", () => {
  // ours replaces "bcde" by "X", theirs replaces "cde" by "Y": union "bcde" goes.
  assert.equal(mergeText("abcdef", "aXf", "abYf"), "aXYf");
  assert.equal(mergeText("abcdef", "abYf", "aXf"), "aYXf");
  // A chain: ours deletes "bc" and "ef", theirs deletes "cde": union "bcdef".
  assert.equal(mergeText("abcdefg", "adg", "abfg"), "ag");
});

Deno.test("mergeText: emoji are merged whole", () => {
  assert.equal(mergeText("👍", "👎", "👍!"), "👎!");
  assert.equal(mergeText("😀", "😁", "😂"), "😁😂");
  assert.equal(mergeText("a😀b", "a😁b", "a😀c"), "a😁c");
});

Deno.test("mergeTextEdits coalesces adjacent edits and rejects unsorted ones", () => {
  assert.deepEqual(
    mergeTextEdits(
      [{ start: 1, end: 2, insert: "X" }, { start: 2, end: 3, insert: "Y" }],
      [],
    ),
    [{ start: 1, end: 3, insert: "XY" }],
  );
  assert.throws(
    () =>
      mergeTextEdits([], [
        { start: 2, end: 3, insert: "" },
        { start: 0, end: 1, insert: "" },
      ]),
    RangeError,
  );
});

// ---- properties ----------------------------------------------------------------

Deno.test("diffText is a minimal, well-formed, surrogate-safe diff (randomized)", () => {
  cases("diffText", 3000, (r) => {
    const base = randomText(r, SMALL, 14);
    const target = r(4) === 0
      ? randomText(r, SMALL, 14)
      : mutate(r, base, () => SMALL[r(SMALL.length)]);
    const b = base.join(""), t = target.join("");
    const edits = diffText(b, t);
    assertWellFormed(b, edits);
    assert.equal(applyTextEdits(b, edits), t);
    assert.equal(diffCost(b, edits), lcsDistance(base, target), "minimal");
  });
});

Deno.test("mergeText identities and accounting (randomized, small alphabet)", () => {
  cases("mergeText", 4000, (r) => {
    const base = randomText(r, SMALL, 12);
    const fresh = () => SMALL[r(SMALL.length)];
    const b = base.join("");
    const x = mutate(r, base, fresh).join(""),
      y = mutate(r, base, fresh).join("");
    // The identities, through the general edit merge (mergeText short-cuts them).
    const dx = diffText(b, x), dy = diffText(b, y);
    assert.equal(applyTextEdits(b, mergeTextEdits(dx, [])), x);
    assert.equal(applyTextEdits(b, mergeTextEdits([], dx)), x);
    assert.equal(applyTextEdits(b, mergeTextEdits(dx, dx)), x);
    assert.equal(mergeText(b, x, b), x);
    assert.equal(mergeText(b, b, x), x);
    assert.equal(mergeText(b, x, x), x);

    const out = mergeText(b, x, y);
    assert.equal(applyTextEdits(b, mergeTextEdits(dx, dy)), out);
    assert.ok(!LONE.test(out), "no lone surrogate");
    // Every inserted text survives whole, each side's in its own order.
    assert.ok(
      occursInOrder(out, dx.map((e) => e.insert)),
      "ours' insertions kept",
    );
    assert.ok(
      occursInOrder(out, dy.map((e) => e.insert)),
      "theirs' insertions kept",
    );
    // Exact length: base minus the union of deletions plus all insertions, with
    // identical edits counted once.
    const deleted = new Set<number>();
    for (const e of [...dx, ...dy]) {
      for (let i = e.start; i < e.end; i++) deleted.add(i);
    }
    const shared = dx.filter((e) =>
      dy.some((f) =>
        f.start === e.start && f.end === e.end && f.insert === e.insert
      )
    );
    const inserted = [...dx, ...dy].reduce((n, e) => n + e.insert.length, 0) -
      shared.reduce((n, e) => n + e.insert.length, 0);
    assert.equal(out.length, b.length - deleted.size + inserted);
  });
});

/** Unique code points from a range, BMP and astral alike. */
function pool(from: number): () => string {
  let next = from;
  return () => String.fromCodePoint(next++);
}

Deno.test("mergeText keeps every character in place (randomized, unique characters)", () => {
  // With all-distinct characters each output character has one origin, so the
  // guarantees can be checked exactly: survival, order and placement.
  cases("mergeText placement", 3000, (r) => {
    const baseChar = pool(r(2) ? 0x4e00 : 0x1d400);
    const base = Array.from({ length: r(10) }, baseChar);
    const ours = mutate(r, base, pool(r(2) ? 0x1f600 : 0x3041));
    const theirs = mutate(r, base, pool(r(2) ? 0x1f300 : 0x0410));
    const out = [...mergeText(base.join(""), ours.join(""), theirs.join(""))];
    const inOurs = new Set(ours), inTheirs = new Set(theirs);
    const survives = (c: string) => inOurs.has(c) && inTheirs.has(c);
    const baseSet = new Set(base);
    // Base characters: exactly those both sides kept, in base order.
    assert.deepEqual(out.filter((c) => baseSet.has(c)), base.filter(survives));
    // Inserted characters: all of them, each side's in its own order.
    const oursNew = ours.filter((c) => !baseSet.has(c));
    const theirsNew = theirs.filter((c) => !baseSet.has(c));
    assert.deepEqual(out.filter((c) => oursNew.includes(c)), oursNew);
    assert.deepEqual(out.filter((c) => theirsNew.includes(c)), theirsNew);
    assert.equal(
      out.length,
      base.filter(survives).length + oursNew.length + theirsNew.length,
    );
    // Placement: between the same surviving base characters as in its own side.
    const pos = new Map(out.map((c, i) => [c, i]));
    for (const side of [ours, theirs]) {
      side.forEach((c, i) => {
        if (baseSet.has(c)) return;
        // Inserted characters are on one side only, so `survives` means "base".
        const left = side.slice(0, i).findLast(survives);
        const right = side.slice(i + 1).find(survives);
        if (left) assert.ok(pos.get(left)! < pos.get(c)!, "after its left");
        if (right) assert.ok(pos.get(c)! < pos.get(right)!, "before its right");
      });
    }
  });
});

Deno.test("diffText stays valid on large inputs, past every limit", () => {
  const r = rng(3); // fixed: the last case must run out of budget
  const check = (a: string, b: string) => {
    const edits = diffText(a, b);
    assertWellFormed(a, edits);
    assert.equal(applyTextEdits(a, edits), b);
    return edits;
  };
  // Unrelated texts: many passes.
  const letters = ["a", "b", "c", "d", "😀"];
  check(
    randomText(r, letters, 40_000).join(""),
    randomText(r, letters, 40_000).join(""),
  );
  // 1,500 scattered edits: a first pass of 1,000 edits, then shorter ones.
  const base = randomText(r, ["x", "y", "z", "😀", " "], 30_000);
  const target = [...base];
  for (let i = 0; i < 1500; i++) {
    target.splice(r(target.length), r(3), "Q", "R");
  }
  check(base.join(""), target.join(""));
  // Periodic texts with sparse changes give long snakes on many diagonals, which
  // exhausts the work budget: the rest becomes one coarse replace.
  const periodic = () => {
    const a = [..."abc".repeat(10_000)];
    for (let i = 0; i < a.length; i += 1 + r(200)) a[i] = "abc"[r(3)];
    return a.join("");
  };
  const t0 = performance.now();
  const edits = check("X" + periodic(), "Y" + periodic());
  assert.ok(performance.now() - t0 < 2000, "bounded time");
  assert.ok(edits.some((e) => e.end - e.start > 1000), "coarse fallback used");
});
