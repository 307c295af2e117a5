/**
 * Character-level text diff, patch and deterministic three-way merge.
 *
 * Positions are UTF-16 code units of the base text, as with `String.prototype.slice`,
 * but no edit produced here starts or ends inside a surrogate pair: the diff runs on
 * code points. Only Web-standard APIs are used.
 *
 * @module
 */

/** Replaces `base.slice(start, end)` with `insert`; `start === end` is an insertion. */
export type TextEdit = {
  readonly start: number;
  readonly end: number;
  readonly insert: string;
};

/** One splice: `deleteCount` code units removed at `start`, `insert` put there. */
export interface TextSplice {
  readonly start: number;
  readonly deleteCount: number;
  readonly insert: string;
}

// Diff limits. The first Myers pass explores up to FIRST_PASS_DISTANCE edits (code
// points), so it is exact up to there; later passes resume from the furthest point
// reached with NEXT_PASS_DISTANCE each. A diff may spend MIN_WORK + WORK_PER_CODE_POINT
// per code point of the compared middles (diagonal and snake steps), then the rest
// becomes one coarse replace.
const FIRST_PASS_DISTANCE = 1000;
const NEXT_PASS_DISTANCE = 100;
const WORK_PER_CODE_POINT = 100;
const MIN_WORK = 1_000_000;

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
/** True when position `pos` of `s` falls between the halves of a surrogate pair. */
const cutsPair = (s: string, pos: number) =>
  isHigh(s.charCodeAt(pos - 1)) && isLow(s.charCodeAt(pos));

/** Length of the common prefix, never ending inside a surrogate pair. */
function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i > 0 && (cutsPair(a, i) || cutsPair(b, i)) ? i - 1 : i;
}

/** Length of the common suffix not overlapping `prefix`, never cutting a pair. */
function commonSuffix(a: string, b: string, prefix: number): number {
  const max = Math.min(a.length, b.length) - prefix;
  let j = 0;
  const ea = a.length - 1, eb = b.length - 1;
  while (j < max && a.charCodeAt(ea - j) === b.charCodeAt(eb - j)) j++;
  const cut = cutsPair(a, a.length - j) || cutsPair(b, b.length - j);
  return j > 0 && cut ? j - 1 : j;
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
  const insert = target.slice(p, target.length - s);
  return { start: p, deleteCount: base.length - p - s, insert };
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
  return applyTextEdits(base, [{ start, end: start + deleteCount, insert }]);
}

/** Throws unless `e` is an integer range starting at or after `pos`. */
function checkOrder(e: TextEdit, pos: number, what: string): void {
  if (
    !Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < pos ||
    e.end < e.start
  ) {
    throw new RangeError(
      `Invalid ${what} [${e.start}, ${e.end}) after position ${pos}: edits must be sorted, non-overlapping integer ranges`,
    );
  }
}

/**
 * Applies sorted, non-overlapping edits (adjacent ones are allowed) to `base`.
 * Throws a RangeError when an edit is out of order or range, or cuts a surrogate pair.
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
    checkOrder(e, pos, "text edit");
    if (
      e.end > base.length || cutsPair(base, e.start) || cutsPair(base, e.end)
    ) {
      throw new RangeError(
        `Invalid text edit [${e.start}, ${e.end}) of a text of length ${base.length}: out of range or cuts a surrogate pair`,
      );
    }
    parts.push(base.slice(pos, e.start), e.insert);
    pos = e.end;
  }
  parts.push(base.slice(pos));
  return parts.join("");
}

/** Code points of `s.slice(from, to)`, with the code unit offset of each (and end). */
function toCodePoints(s: string, from: number, to: number) {
  const cps = new Int32Array(to - from),
    offsets = new Int32Array(to - from + 1);
  let n = 0;
  for (let i = from; i < to; n++) {
    const c = s.charCodeAt(i);
    offsets[n] = i - from;
    if (isHigh(c) && i + 1 < to && isLow(s.charCodeAt(i + 1))) {
      cps[n] = ((c - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00) + 0x10000;
      i += 2;
    } else {
      cps[n] = c;
      i++;
    }
  }
  offsets[n] = to - from;
  return { cps: cps.subarray(0, n), offsets };
}

/** One diff in progress: inputs, hunks found so far, work spent and allowed. */
interface DiffState {
  readonly a: Int32Array;
  readonly b: Int32Array;
  /** Flat `[aStart, aEnd, bStart, bEnd, ...]`, in order, contiguous ones merged. */
  readonly hunks: number[];
  /** Furthest x on diagonal k after step d, at d(d+1)/2 + (k+d)/2; grows on demand. */
  trace: Int32Array;
  work: number;
  readonly budget: number;
}

/** Appends hunk [a0, a1) → [b0, b1), merging it into the last one if contiguous. */
function pushHunk(h: number[], a0: number, a1: number, b0: number, b1: number) {
  const n = h.length;
  if (n > 0 && h[n - 3] === a0 && h[n - 1] === b0) {
    h[n - 3] = a1;
    h[n - 1] = b1;
  } else h.push(a0, a1, b0, b1);
}

/**
 * One pass of Myers' greedy O(ND) algorithm from (x0, y0), exploring at most `limit`
 * edits while the work budget lasts. Pushes the hunks of the path found and returns
 * where it ends: the end of both inputs, or the furthest point reached.
 */
function diffPass(st: DiffState, x0: number, y0: number, limit: number) {
  const { a, b } = st;
  const n = a.length - x0, m = b.length - y0;
  const maxD = Math.min(n + m, limit), off = maxD + 1;
  const v = new Int32Array(2 * maxD + 3);
  let d = 0, k = 0, done = false, spent = false;
  for (; d <= maxD; d++) {
    const row = (d * (d + 1)) >> 1;
    if (st.trace.length < row + d + 1) {
      const grown = new Int32Array(Math.max(2 * st.trace.length, row + d + 1));
      grown.set(st.trace);
      st.trace = grown;
    }
    const trace = st.trace;
    for (k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])
        ? v[off + k + 1]
        : v[off + k - 1] + 1;
      const sx = x;
      while (x < n && x - k < m && a[x0 + x] === b[y0 + x - k]) x++;
      st.work += 1 + x - sx;
      v[off + k] = trace[row + ((k + d) >> 1)] = x;
      if (x >= n && x - k >= m) {
        done = true;
        break;
      }
      if (st.work > st.budget) {
        spent = true;
        break;
      }
    }
    if (done || spent) break;
  }
  d = done ? d : spent ? d - 1 : maxD; // the finishing or last complete step
  const at = (d: number, k: number) =>
    st.trace[((d * (d + 1)) >> 1) + ((k + d) >> 1)];
  if (!done) {
    // Out of distance or budget: stop at the furthest point inside the grid.
    let best = 0;
    for (let kk = -d; kk <= d; kk += 2) {
      const x = at(d, kk);
      if (x <= n && x - kk <= m && 2 * x - kk > best) {
        [best, k] = [2 * x - kk, kk];
      }
    }
    if (best === 0) return [x0, y0];
  }
  let x = at(d, k);
  const end = [x0 + x, y0 + x - k];
  const rev: number[] = []; // hunks in absolute positions, last first
  let open = false, aS = 0, aE = 0, bS = 0, bE = 0;
  for (; d > 0; d--) {
    const down = k === -d || (k !== d && at(d - 1, k - 1) < at(d - 1, k + 1));
    const pk = down ? k + 1 : k - 1, px = at(d - 1, pk);
    const mx = down ? px : px + 1; // where the step lands, before its snake
    if (open && x > mx) {
      rev.push(x0 + aS, x0 + aE, y0 + bS, y0 + bE);
      open = false;
    }
    if (!open) [open, aE, bE] = [true, mx, mx - k];
    [aS, bS, x, k] = [px, px - pk, px, pk];
  }
  if (open) rev.push(x0 + aS, x0 + aE, y0 + bS, y0 + bE);
  for (let i = rev.length - 4; i >= 0; i -= 4) {
    pushHunk(st.hunks, rev[i], rev[i + 1], rev[i + 2], rev[i + 3]);
  }
  return end;
}

/** Hunks turning `a` into `b`, in passes; one coarse hunk once the budget is spent. */
function diffCodePoints(a: Int32Array, b: Int32Array): number[] {
  const st: DiffState = {
    a,
    b,
    hunks: [],
    trace: new Int32Array(256),
    work: 0,
    budget: MIN_WORK + WORK_PER_CODE_POINT * (a.length + b.length),
  };
  let x = 0, y = 0;
  while (x < a.length || y < b.length) {
    const limit = x + y === 0 ? FIRST_PASS_DISTANCE : NEXT_PASS_DISTANCE;
    const [nx, ny] = st.work > st.budget ? [x, y] : diffPass(st, x, y, limit);
    if (nx === x && ny === y) {
      pushHunk(st.hunks, x, a.length, y, b.length);
      break;
    }
    [x, y] = [nx, ny];
  }
  return st.hunks;
}

/**
 * A character diff: sorted, non-overlapping, non-adjacent edits with
 * `applyTextEdits(base, diffText(base, target)) === target`, none cutting a surrogate
 * pair. The common prefix and suffix are trimmed, then Myers' O(ND) algorithm runs on
 * the code points of the middle. The diff is minimal (fewest code points deleted plus
 * inserted) when that minimum is at most 1000 and the work budget holds. Beyond,
 * later passes of at most 100 each resume from the furthest point reached
 * (near-minimal); once the budget, 10^6 + 100·(N+M) steps, is spent, one coarse
 * replace covers the rest, so time stays O(N+M) for any input.
 *
 * @example
 * ```ts
 * import { diffText } from "./text.ts";
 * diffText("the cat sat", "the cat spat"); // [{ start: 9, end: 9, insert: "p" }]
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
  const a = toCodePoints(base, p, aEnd), b = toCodePoints(target, p, bEnd);
  const h = diffCodePoints(a.cps, b.cps);
  const edits: TextEdit[] = [];
  for (let i = 0; i < h.length; i += 4) {
    edits.push({
      start: p + a.offsets[h[i]],
      end: p + a.offsets[h[i + 1]],
      insert: target.slice(p + b.offsets[h[i + 2]], p + b.offsets[h[i + 3]]),
    });
  }
  return edits;
}

/** Validates edits, coalesces adjacent ones and drops those that change nothing. */
function normalizeEdits(edits: readonly TextEdit[], side: string): TextEdit[] {
  const out: TextEdit[] = [];
  let pos = 0;
  for (const e of edits) {
    checkOrder(e, pos, `${side} text edit`);
    pos = e.end;
    if (e.start === e.end && e.insert === "") continue;
    const l = out[out.length - 1];
    if (l?.end !== e.start) out.push(e);
    else {out[out.length - 1] = {
        ...l,
        end: e.end,
        insert: l.insert + e.insert,
      };}
  }
  return out;
}

/**
 * True when edit `e` collides with the base range [start, end): both delete a common
 * code unit, one inserts strictly inside the other's range, or both insert at the
 * same position.
 */
function collides(start: number, end: number, e: TextEdit): boolean {
  const point = start === end, ePoint = e.start === e.end;
  if (point && ePoint) return e.start === start;
  if (point) return e.start < start && start < e.end;
  if (ePoint) return start < e.start && e.start < end;
  return e.start < end && start < e.end;
}

/**
 * Merges two edit lists of the same base by the rules of {@link mergeText}. Each list
 * must be sorted and non-overlapping (adjacent edits of one side are coalesced first).
 * Returns sorted, non-overlapping edits of the base.
 *
 * @example
 * ```ts
 * import { mergeTextEdits } from "./text.ts";
 * const x = { start: 3, end: 3, insert: "X" }, y = { ...x, insert: "Y" };
 * mergeTextEdits([x], [y]); // [{ start: 3, end: 3, insert: "XY" }]
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
    if (a.start === b.start && a.end === b.end && a.insert === b.insert) {
      out.push(a);
      i++;
      j++;
    } else if (!collides(a.start, a.end, b)) {
      // Disjoint, so positions order them: an insertion at the edge of a range is
      // outside it.
      out.push(a.end <= b.start ? o[i++] : t[j++]);
    } else {
      // A cluster of colliding edits: delete their union, keep every inserted text.
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
  return out.concat(o.slice(i), t.slice(j));
}

/**
 * Deterministic character-wise three-way merge of `ours` and `theirs` against their
 * common `base`. With O = diffText(base, ours) and T = diffText(base, theirs):
 *
 * 1. An edit of one side colliding with no edit of the other applies as it is. Edits
 *    collide when they delete a common character, when one inserts strictly inside
 *    the range the other deletes, or when both insert at the same position; an
 *    insertion at the edge of the other side's deleted range does not collide.
 * 2. An edit made identically by both sides applies once.
 * 3. Two different insertions at the same position: ours' text, then theirs'.
 * 4. Colliding edits form a cluster (transitively): the union of their deleted ranges
 *    is deleted and replaced by all of ours' inserted texts, then all of theirs', each
 *    side's in base order.
 *
 * Guarantees: a base character survives if and only if neither O nor T deletes it,
 * exactly once and in base order; every inserted text of O and T survives whole and
 * exactly once (an identical edit of both sides counts once), each side's in its own
 * order, between the same surviving base characters as in that side; no lone
 * surrogate appears unless an input has one; `mergeText(b, x, b) === x`,
 * `mergeText(b, b, x) === x` and `mergeText(b, x, x) === x`. Swapping the sides only
 * changes the order of texts under rules 3 and 4.
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
