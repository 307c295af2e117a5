/**
 * Character-level text diff, patch and deterministic three-way merge.
 *
 * Positions are UTF-16 code units of the base text, as with `String.prototype.slice`,
 * but no edit produced here ever starts or ends inside a surrogate pair: the diff runs
 * on code points. Only Web-standard APIs are used.
 *
 * @module
 */

/** Replaces `base.slice(start, end)` with `insert`. `start === end` is a pure insertion. */
export type TextEdit = {
  readonly start: number;
  readonly end: number;
  readonly insert: string;
};

/** A single splice: `deleteCount` code units removed at `start`, `insert` put there. */
export interface TextSplice {
  readonly start: number;
  readonly deleteCount: number;
  readonly insert: string;
}

/** Largest edit distance (in code points) explored by one pass of Myers' algorithm. */
export const MAX_PASS_DISTANCE = 1000;
/** Work budget of one diff, per code point of the compared middles. */
export const DIFF_WORK_PER_CODE_POINT = 100;
/** Work budget every diff gets regardless of size, so small texts diff exactly. */
export const DIFF_MIN_WORK = 1_000_000;

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Length of the common prefix of `a` and `b`, never ending inside a surrogate pair. */
function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (
    i > 0 && isHigh(a.charCodeAt(i - 1)) &&
    (isLow(a.charCodeAt(i)) || isLow(b.charCodeAt(i)))
  ) i--;
  return i;
}

/** Length of the common suffix after `prefix`, never starting inside a surrogate pair. */
function commonSuffix(a: string, b: string, prefix: number): number {
  const max = Math.min(a.length, b.length) - prefix;
  let j = 0;
  while (
    j < max && a.charCodeAt(a.length - 1 - j) === b.charCodeAt(b.length - 1 - j)
  ) j++;
  if (
    j > 0 && isLow(a.charCodeAt(a.length - j)) &&
    (isHigh(a.charCodeAt(a.length - j - 1)) ||
      isHigh(b.charCodeAt(b.length - j - 1)))
  ) j--;
  return j;
}

/**
 * The single splice turning `base` into `target`, found by trimming their common
 * prefix and suffix (never inside a surrogate pair). Used for compact deltas.
 *
 * @example
 * ```ts
 * import { spliceOf } from "./text.ts";
 * spliceOf("hello world", "hello brave world");
 * // { start: 6, deleteCount: 0, insert: "brave " }
 * ```
 */
export function spliceOf(base: string, target: string): TextSplice {
  const p = commonPrefix(base, target);
  const s = commonSuffix(base, target, p);
  return {
    start: p,
    deleteCount: base.length - p - s,
    insert: target.slice(p, target.length - s),
  };
}

function splitsPair(text: string, pos: number): boolean {
  return isHigh(text.charCodeAt(pos - 1)) && isLow(text.charCodeAt(pos));
}

/**
 * Applies a splice. Throws a RangeError when it falls outside `base` or cuts a
 * surrogate pair.
 *
 * @example
 * ```ts
 * import { applySplice } from "./text.ts";
 * applySplice("hello world", { start: 6, deleteCount: 0, insert: "brave " });
 * // "hello brave world"
 * ```
 */
export function applySplice(base: string, splice: TextSplice): string {
  const { start, deleteCount, insert } = splice;
  const end = start + deleteCount;
  if (
    !Number.isInteger(start) || !Number.isInteger(deleteCount) || start < 0 ||
    deleteCount < 0 || end > base.length
  ) {
    throw new RangeError(
      `Invalid splice (${start}, ${deleteCount}) for a text of length ${base.length}`,
    );
  }
  if (splitsPair(base, start) || splitsPair(base, end)) {
    throw new RangeError(
      `Invalid splice (${start}, ${deleteCount}): it cuts a surrogate pair`,
    );
  }
  return base.slice(0, start) + insert + base.slice(end);
}

/**
 * Applies sorted, non-overlapping edits (adjacent ones are allowed) to `base`.
 * Throws a RangeError when an edit is out of range, out of order, overlaps the
 * previous one or cuts a surrogate pair.
 *
 * @example
 * ```ts
 * import { applyTextEdits } from "./text.ts";
 * applyTextEdits("abc", [{ start: 1, end: 2, insert: "XY" }]); // "aXYc"
 * ```
 */
export function applyTextEdits(
  base: string,
  edits: readonly TextEdit[],
): string {
  const parts: string[] = [];
  let pos = 0;
  for (const e of edits) {
    if (
      !Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < pos ||
      e.end < e.start || e.end > base.length
    ) {
      throw new RangeError(
        `Invalid text edit [${e.start}, ${e.end}) after position ${pos} in a text of length ${base.length}`,
      );
    }
    if (splitsPair(base, e.start) || splitsPair(base, e.end)) {
      throw new RangeError(
        `Invalid text edit [${e.start}, ${e.end}): it cuts a surrogate pair`,
      );
    }
    parts.push(base.slice(pos, e.start), e.insert);
    pos = e.end;
  }
  parts.push(base.slice(pos));
  return parts.join("");
}

/** Code points of `s.slice(from, to)`; `offsets[i]` is the code unit of the i-th. */
interface CodePoints {
  readonly cps: Int32Array;
  /** Undefined when the slice has no surrogate pair (offsets are the identity). */
  readonly offsets: Int32Array | undefined;
}

function toCodePoints(s: string, from: number, to: number): CodePoints {
  const cps = new Int32Array(to - from);
  let offsets: Int32Array | undefined;
  let n = 0;
  for (let i = from; i < to; n++) {
    const c = s.charCodeAt(i);
    if (isHigh(c) && i + 1 < to && isLow(s.charCodeAt(i + 1))) {
      if (!offsets) {
        offsets = new Int32Array(to - from + 1);
        for (let k = 0; k < n; k++) offsets[k] = k;
      }
      offsets[n] = i - from;
      cps[n] = ((c - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00) + 0x10000;
      i += 2;
    } else {
      if (offsets) offsets[n] = i - from;
      cps[n] = c;
      i++;
    }
  }
  if (offsets) offsets[n] = to - from;
  return { cps: cps.subarray(0, n), offsets };
}

/** Shared state of one diff: inputs, hunks found so far and the work spent. */
interface DiffState {
  readonly a: Int32Array;
  readonly b: Int32Array;
  /** Flat `[aStart, aEnd, bStart, bEnd, ...]`, in order, contiguous ones merged. */
  readonly hunks: number[];
  /** Furthest x per (d, k), at index d(d+1)/2 + (k+d)/2; grown on demand. */
  trace: Int32Array;
  work: number;
  readonly budget: number;
}

function pushHunk(
  st: DiffState,
  aS: number,
  aE: number,
  bS: number,
  bE: number,
) {
  const h = st.hunks, n = h.length;
  if (n > 0 && h[n - 3] === aS && h[n - 1] === bS) {
    h[n - 3] = aE;
    h[n - 1] = bE;
  } else h.push(aS, aE, bS, bE);
}

/**
 * One pass of Myers' greedy O(ND) algorithm from (x0, y0), exploring at most
 * MAX_PASS_DISTANCE edits or until the work budget runs out. Pushes the hunks of the
 * path found and returns where it ends: (n, m), or the furthest point reached.
 */
function diffPass(st: DiffState, x0: number, y0: number): [number, number] {
  const { a, b } = st;
  const n = a.length - x0, m = b.length - y0;
  const maxD = Math.min(n + m, MAX_PASS_DISTANCE);
  const off = maxD + 1;
  const v = new Int32Array(2 * maxD + 3);
  let endD = -1, endK = 0, lastD = 0;
  for (let d = 0; d <= maxD && endD < 0; d++) {
    const row = (d * (d + 1)) >> 1;
    if (st.trace.length < row + d + 1) {
      const grown = new Int32Array(Math.max(2 * st.trace.length, row + d + 1));
      grown.set(st.trace);
      st.trace = grown;
    }
    const trace = st.trace;
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])
        ? v[off + k + 1]
        : v[off + k - 1] + 1;
      let y = x - k;
      const sx = x;
      while (x < n && y < m && a[x0 + x] === b[y0 + y]) {
        x++;
        y++;
      }
      st.work += 1 + x - sx;
      v[off + k] = x;
      trace[row + ((k + d) >> 1)] = x;
      if (x >= n && y >= m) {
        endD = d;
        endK = k;
        break;
      }
    }
    lastD = d;
    if (st.work > st.budget) break;
  }
  const at = (d: number, k: number) =>
    st.trace[((d * (d + 1)) >> 1) + ((k + d) >> 1)];
  let d = endD, k = endK;
  if (d < 0) {
    // Out of distance or budget: stop at the furthest point inside the grid.
    d = lastD;
    let best = 0;
    for (let kk = -d; kk <= d; kk += 2) {
      const xx = at(d, kk), yy = xx - kk;
      if (xx <= n && yy <= m && xx + yy > best) {
        best = xx + yy;
        k = kk;
      }
    }
    if (best === 0) return [x0, y0];
  }
  let x = at(d, k), y = x - k;
  const endX = x, endY = y;
  const rev: number[] = []; // hunks, last first
  let open = false, aS = 0, aE = 0, bS = 0, bE = 0;
  for (; d > 0; d--) {
    const down = k === -d || (k !== d && at(d - 1, k - 1) < at(d - 1, k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = at(d - 1, pk), py = px - pk;
    const mx = down ? px : px + 1, my = down ? py + 1 : py;
    if (open && x > mx) {
      rev.push(aS, aE, bS, bE);
      open = false;
    }
    if (!open) {
      open = true;
      aE = mx;
      bE = my;
    }
    aS = px;
    bS = py;
    x = px;
    y = py;
    k = pk;
  }
  if (open) rev.push(aS, aE, bS, bE);
  for (let i = rev.length - 4; i >= 0; i -= 4) {
    pushHunk(
      st,
      x0 + rev[i],
      x0 + rev[i + 1],
      y0 + rev[i + 2],
      y0 + rev[i + 3],
    );
  }
  return [x0 + endX, y0 + endY];
}

/** Hunks turning `a` into `b`; minimal unless the work budget runs out. */
function diffCodePoints(a: Int32Array, b: Int32Array): number[] {
  const st: DiffState = {
    a,
    b,
    hunks: [],
    trace: new Int32Array(64),
    work: 0,
    budget: DIFF_MIN_WORK + DIFF_WORK_PER_CODE_POINT * (a.length + b.length),
  };
  let x = 0, y = 0;
  while (x < a.length || y < b.length) {
    const [nx, ny] = st.work > st.budget ? [x, y] : diffPass(st, x, y);
    if (nx === x && ny === y) {
      // No budget left: one coarse replace for the rest.
      pushHunk(st, x, a.length, y, b.length);
      break;
    }
    x = nx;
    y = ny;
  }
  return st.hunks;
}

/**
 * A minimal character diff: sorted, non-overlapping, non-adjacent edits with
 * `applyTextEdits(base, diffText(base, target)) === target`. The common prefix and
 * suffix are trimmed, then Myers' O(ND) algorithm runs on code points, so no edit cuts
 * a surrogate pair. The diff is minimal in code points unless the work budget
 * (`DIFF_MIN_WORK + DIFF_WORK_PER_CODE_POINT·(N+M)` steps) runs out; it then stays
 * valid but ends with one coarse replace of the remaining middle.
 *
 * @example
 * ```ts
 * import { diffText } from "./text.ts";
 * diffText("the cat sat", "the cat spat");
 * // [{ start: 9, end: 9, insert: "p" }]
 * ```
 */
export function diffText(base: string, target: string): TextEdit[] {
  const p = commonPrefix(base, target);
  const s = commonSuffix(base, target, p);
  const aEnd = base.length - s, bEnd = target.length - s;
  if (p === aEnd && p === bEnd) return [];
  if (p === aEnd || p === bEnd) {
    return [{ start: p, end: aEnd, insert: target.slice(p, bEnd) }];
  }
  const a = toCodePoints(base, p, aEnd);
  const b = toCodePoints(target, p, bEnd);
  const hunks = diffCodePoints(a.cps, b.cps);
  const au = (i: number) => p + (a.offsets ? a.offsets[i] : i);
  const bu = (i: number) => p + (b.offsets ? b.offsets[i] : i);
  const edits: TextEdit[] = [];
  for (let i = 0; i < hunks.length; i += 4) {
    edits.push({
      start: au(hunks[i]),
      end: au(hunks[i + 1]),
      insert: target.slice(bu(hunks[i + 2]), bu(hunks[i + 3])),
    });
  }
  return edits;
}

/** Validates edits and coalesces adjacent ones; drops edits that change nothing. */
function normalizeEdits(edits: readonly TextEdit[], side: string): TextEdit[] {
  const out: TextEdit[] = [];
  let pos = 0;
  for (const e of edits) {
    if (
      !Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < pos ||
      e.end < e.start
    ) {
      throw new RangeError(
        `Invalid ${side} text edit [${e.start}, ${e.end}) after position ${pos}: edits must be sorted and non-overlapping`,
      );
    }
    pos = e.end;
    if (e.start === e.end && e.insert === "") continue;
    const last = out[out.length - 1];
    if (last && last.end === e.start) {
      out[out.length - 1] = {
        start: last.start,
        end: e.end,
        insert: last.insert + e.insert,
      };
    } else out.push(e);
  }
  return out;
}

/**
 * True when edit `e` collides with the base range [start, end): they delete a common
 * code unit, one inserts strictly inside the other's deleted range, or both insert at
 * the same position.
 */
function collides(start: number, end: number, e: TextEdit): boolean {
  if (start === end) {
    return e.start === e.end
      ? e.start === start
      : e.start < start && start < e.end;
  }
  if (e.start === e.end) return start < e.start && e.start < end;
  return e.start < end && start < e.end;
}

const sameEdit = (a: TextEdit, b: TextEdit) =>
  a.start === b.start && a.end === b.end && a.insert === b.insert;

/**
 * Merges two edit lists against the same base (see {@link mergeText} for the rules).
 * Each list must be sorted and non-overlapping; adjacent edits of one side are
 * coalesced first. Returns sorted, non-overlapping edits of the base.
 *
 * @example
 * ```ts
 * import { mergeTextEdits } from "./text.ts";
 * mergeTextEdits(
 *   [{ start: 3, end: 3, insert: "X" }],
 *   [{ start: 3, end: 3, insert: "Y" }],
 * ); // [{ start: 3, end: 3, insert: "XY" }]
 * ```
 */
export function mergeTextEdits(
  ours: readonly TextEdit[],
  theirs: readonly TextEdit[],
): TextEdit[] {
  const o = normalizeEdits(ours, "ours"), t = normalizeEdits(theirs, "theirs");
  const out: TextEdit[] = [];
  let i = 0, j = 0;
  while (i < o.length && j < t.length) {
    const a = o[i], b = t[j];
    if (sameEdit(a, b)) {
      out.push(a);
      i++;
      j++;
    } else if (!collides(a.start, a.end, b)) {
      // Disjoint: the earlier one goes first (an insertion at a range's edge is
      // outside it, so positions alone order them).
      if (a.end <= b.start) out.push(o[i++]);
      else out.push(t[j++]);
    } else {
      // A cluster of colliding edits: delete the union, keep every inserted text.
      const start = Math.min(a.start, b.start);
      let end = Math.max(a.end, b.end);
      const oursText = [a.insert], theirsText = [b.insert];
      i++;
      j++;
      for (;;) {
        if (i < o.length && collides(start, end, o[i])) {
          oursText.push(o[i].insert);
          end = Math.max(end, o[i++].end);
        } else if (j < t.length && collides(start, end, t[j])) {
          theirsText.push(t[j].insert);
          end = Math.max(end, t[j++].end);
        } else break;
      }
      out.push({ start, end, insert: oursText.join("") + theirsText.join("") });
    }
  }
  while (i < o.length) out.push(o[i++]);
  while (j < t.length) out.push(t[j++]);
  return out;
}

/**
 * Deterministic character-wise three-way merge of `ours` and `theirs` against their
 * common `base`. With O = diffText(base, ours) and T = diffText(base, theirs):
 *
 * 1. An edit of one side that collides with no edit of the other applies as it is.
 *    Edits collide when they delete a common character, when one inserts strictly
 *    inside the range the other deletes, or when both insert at the same position;
 *    an insertion at the edge of the other side's deleted range does not collide.
 * 2. An edit made identically by both sides applies once.
 * 3. Two different insertions at the same position: ours' text, then theirs'.
 * 4. Colliding edits form a cluster (transitively): the union of their deleted ranges
 *    is deleted and replaced by all of ours' inserted texts, then all of theirs', each
 *    in base order.
 *
 * Guarantees: a base character survives if and only if neither side deleted it, once
 * and in base order; every inserted text of O and T survives whole, exactly once
 * (identical edits count once), each side's in its own order, between the same
 * surviving base characters as in that side; the result has no lone surrogate unless
 * an input has one; `mergeText(b, x, b) === x`, `mergeText(b, b, x) === x` and
 * `mergeText(b, x, x) === x`. Swapping the sides changes only rules 3 and 4.
 *
 * @example
 * ```ts
 * import { mergeText } from "./text.ts";
 * mergeText("the quick fox", "the fox", "the quick red fox"); // "the red fox"
 * ```
 */
export function mergeText(base: string, ours: string, theirs: string): string {
  if (ours === theirs || theirs === base) return ours;
  if (ours === base) return theirs;
  const edits = mergeTextEdits(diffText(base, ours), diffText(base, theirs));
  return applyTextEdits(base, edits);
}
