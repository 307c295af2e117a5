/**
 * Order keys for ordered lists (fractional indexing): strings whose plain code-unit
 * order is the list order, so an item is placed or moved by writing one short string
 * field, never by renumbering its neighbours. Between any two different keys there is
 * always another one, so a list never runs out of room.
 *
 * A key is an integer part followed by a fraction, both in base-62 digits
 * (`0-9A-Za-z`, in ASCII order). The integer part's first character gives its length:
 * `a`..`z` are non-negative integers of 1..26 digits, `Z`..`A` negative ones of
 * 1..26 digits, so appending at either end stays short (a list of a million appended
 * items has keys of 5 characters). The fraction never ends in `0`, which keeps every
 * key canonical (no two spellings of one position). Keys have no length limit: the
 * worst case, inserting again and again between the same two ever-closer neighbours
 * (three items moved in turn), adds about one character per six moves.
 *
 * Concurrent inserts at the same place on two replicas must not produce equal keys:
 * {@link orderKeyBetween} places its key at random in the middle half of the room, with
 * {@link ORDER_KEY_JITTER_DIGITS} more digits than the shortest key needs, so two keys
 * made at the same moment differ (equal with less than a one-in-400,000 chance, and
 * then still ordered), there is room between them later, and every replica orders them
 * the same way, because the keys themselves are the order (a query sorted by the key
 * breaks an exact tie by path).
 *
 * @example
 * ```ts
 * import { orderKeyBetween } from "./order_key.ts";
 *
 * const first = orderKeyBetween(null, null); // e.g. "a0V3x"
 * const second = orderKeyBetween(first, null); // after first
 * const middle = orderKeyBetween(first, second); // between them
 * console.log(first < middle && middle < second); // true
 * ```
 *
 * @module
 */

/** The base-62 digits of order keys, in code-unit (sort) order. */
export const ORDER_KEY_DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * Random digits of resolution each new key gets beyond the shortest one (see the module
 * doc); 0 gives the shortest, deterministic key.
 */
export const ORDER_KEY_JITTER_DIGITS = 3;

const BASE = ORDER_KEY_DIGITS.length;
const ZERO = ORDER_KEY_DIGITS[0];
/** The integer part of the key made for an empty list. */
const FIRST_INTEGER = "a0";
/** The smallest integer part: reserved, so there is always room before any key. */
const SMALLEST_INTEGER = "A" + ZERO.repeat(26);

/** Random bytes (tests inject a seeded source). */
export type RandomBytes = (bytes: Uint8Array) => void;

/** Options of {@link orderKeyBetween}. */
export interface OrderKeyOptions {
  /** Random source of the jitter digits (default `crypto.getRandomValues`). */
  readonly random?: RandomBytes;
  /** Random digits of resolution (default {@link ORDER_KEY_JITTER_DIGITS}). */
  readonly jitterDigits?: number;
}

function digitValue(c: string): number {
  const code = c.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 65 && code <= 90) return code - 55; // A-Z
  if (code >= 97 && code <= 122) return code - 61; // a-z
  return -1;
}

/** Length of the integer part announced by a key's first character (0: invalid). */
function integerLength(head: string): number {
  if (head >= "a" && head <= "z") return head.charCodeAt(0) - 97 + 2;
  if (head >= "A" && head <= "Z") return 90 - head.charCodeAt(0) + 2;
  return 0;
}

/** Why `key` is not a valid order key, or null when it is. */
export function orderKeyProblem(key: unknown): string | null {
  if (typeof key !== "string") return `expected a string, got ${typeof key}`;
  if (key.length === 0) return "empty string";
  const n = integerLength(key[0]);
  if (n === 0) return `first character "${key[0]}" is not a-z or A-Z`;
  if (key.length < n) return `integer part needs ${n} characters`;
  for (let i = 1; i < key.length; i++) {
    if (digitValue(key[i]) < 0) {
      return `character "${key[i]}" at ${i} is not a base-62 digit`;
    }
  }
  if (key === SMALLEST_INTEGER) {
    return "the smallest integer is reserved (it needs a fraction)";
  }
  if (key.length > n && key.endsWith(ZERO)) {
    return `fraction ends in "${ZERO}" (not canonical)`;
  }
  return null;
}

/** True when `key` is a valid order key. */
export function isOrderKey(key: unknown): key is string {
  return orderKeyProblem(key) === null;
}

function checkKey(key: string, role: string): void {
  const problem = orderKeyProblem(key);
  if (problem !== null) {
    throw new TypeError(
      `Invalid order key ${JSON.stringify(key)} (${role}): ${problem}`,
    );
  }
}

/**
 * Adds `delta` (+1 or -1) to an integer part; null when it would leave the range
 * (after "zzz…" or before the reserved smallest integer).
 */
function stepInteger(int: string, delta: 1 | -1): string | null {
  const head = int[0];
  const digits = int.slice(1).split("");
  let i = digits.length - 1;
  for (; i >= 0; i--) {
    const v = digitValue(digits[i]) + delta;
    if (v >= 0 && v < BASE) {
      digits[i] = ORDER_KEY_DIGITS[v];
      break;
    }
    digits[i] = delta === 1 ? ZERO : ORDER_KEY_DIGITS[BASE - 1];
  }
  if (i >= 0) {
    const out = head + digits.join("");
    return out === SMALLEST_INTEGER ? null : out;
  }
  // Every digit carried: the integer part changes length.
  if (delta === 1) {
    if (head === "z") return null;
    if (head === "Z") return FIRST_INTEGER; // -1 + 1 = 0
    const next = String.fromCharCode(head.charCodeAt(0) + 1);
    // The smallest value of the next length class: positive ones have one more
    // digit, negative ones one less.
    return next +
      ZERO.repeat(head >= "a" ? digits.length + 1 : digits.length - 1);
  }
  if (head === "a") return "Z" + ORDER_KEY_DIGITS[BASE - 1]; // 0 - 1 = -1
  if (head === "A") return null;
  // The largest value of the previous length class.
  const prev = String.fromCharCode(head.charCodeAt(0) - 1);
  return prev + ORDER_KEY_DIGITS[BASE - 1].repeat(
    head >= "a" ? digits.length - 1 : digits.length + 1,
  );
}

/**
 * A fraction strictly between fractions `lo` and `hi` (`hi` null: no upper bound), as
 * short as possible. Fractions are digit strings without a trailing zero; a missing
 * digit reads as zero.
 */
function fractionBetween(lo: string, hi: string | null): string {
  let prefix = "";
  for (let i = 0;; i++) {
    const a = i < lo.length ? digitValue(lo[i]) : 0;
    const b = hi === null ? BASE : i < hi.length ? digitValue(hi[i]) : 0;
    if (a === b) {
      prefix += ORDER_KEY_DIGITS[a];
      continue;
    }
    if (b - a > 1) return prefix + ORDER_KEY_DIGITS[(a + b + 1) >> 1];
    // Neighbouring digits: the upper one alone is shorter when hi goes on past it…
    if (hi !== null && i + 1 < hi.length) return prefix + hi[i];
    // …else keep lo's digit and find room after it, unbounded above.
    return prefix + ORDER_KEY_DIGITS[a] +
      fractionBetween(lo.slice(i + 1), null);
  }
}

function integerPart(key: string): string {
  return key.slice(0, integerLength(key[0]));
}

/** The shortest key strictly between `before` and `after` (null: the list's end). */
function plainKeyBetween(before: string | null, after: string | null): string {
  if (before === null && after === null) return FIRST_INTEGER;
  if (before === null) {
    const int = integerPart(after!);
    const frac = after!.slice(int.length);
    // The reserved smallest integer only ever carries a fraction.
    if (int === SMALLEST_INTEGER) return int + fractionBetween("", frac);
    if (frac !== "") return int; // the bare integer sorts before int + fraction
    return stepInteger(int, -1) ?? SMALLEST_INTEGER + fractionBetween("", null);
  }
  const int = integerPart(before);
  const frac = before.slice(int.length);
  if (after === null) {
    return stepInteger(int, 1) ?? int + fractionBetween(frac, null);
  }
  const hiInt = integerPart(after);
  if (hiInt === int) {
    return int + fractionBetween(frac, after.slice(int.length));
  }
  const next = stepInteger(int, 1);
  if (next !== null && next < after) return next;
  return int + fractionBetween(frac, null);
}

const BIG_BASE = BigInt(BASE);
/** Random bits that place a jittered key inside its gap. */
const JITTER_RANDOM_BYTES = 6;

/** The base-62 number formed by `digits` digits of `s` from `from` (missing: zero). */
function digitsValue(s: string, from: number, digits: number): bigint {
  let v = 0n;
  for (let i = from; i < from + digits; i++) {
    v = v * BIG_BASE + BigInt(i < s.length ? digitValue(s[i]) : 0);
  }
  return v;
}

/**
 * A fraction strictly between fractions `lo` and `hi` (`hi` null: 1), placed at random
 * in the middle half of the gap, with at least `digits` digits of resolution there:
 * keys made concurrently for one place differ, and the gap left on either side is at
 * least a quarter of the old one (the same growth as the shortest midpoint).
 */
function randomFractionBetween(
  lo: string,
  hi: string | null,
  digits: number,
  random: RandomBytes,
): string {
  const at = (s: string, i: number) => i < s.length ? digitValue(s[i]) : 0;
  let n = 0;
  if (hi !== null) { while (at(lo, n) === at(hi, n)) n++; }
  let prefix = "";
  for (let i = 0; i < n; i++) prefix += ORDER_KEY_DIGITS[at(lo, i)];
  const minGap = 4n * BIG_BASE ** BigInt(digits);
  for (let len = digits + 1;; len++) {
    const a = digitsValue(lo, n, len);
    const b = hi === null ? BIG_BASE ** BigInt(len) : digitsValue(hi, n, len);
    // Ends once len passes lo's digits: the gap then grows 62-fold per digit.
    if (b - a < minGap) continue;
    const bytes = new Uint8Array(JITTER_RANDOM_BYTES);
    random(bytes);
    let r = 0n;
    for (const x of bytes) r = (r << 8n) | BigInt(x);
    const half = (b - a) / 2n;
    let v = a + (b - a) / 4n + (r * half >> BigInt(8 * JITTER_RANDOM_BYTES));
    let out = "";
    for (let i = 0; i < len; i++) {
      out = ORDER_KEY_DIGITS[Number(v % BIG_BASE)] + out;
      v /= BIG_BASE;
    }
    // v > a >= 0: a non-zero digit remains once trailing zeros go.
    return prefix + out.replace(/0+$/, "");
  }
}

const defaultRandom: RandomBytes = (b) =>
  void crypto.getRandomValues(b as Uint8Array<ArrayBuffer>);

/**
 * A new order key strictly between `before` and `after` (either null for an end of the
 * list). Its integer part is the shortest key's; its fraction is placed at random in
 * the middle of the room left (see the module doc), so that keys made concurrently on
 * two replicas for the same place differ. Throws a TypeError for an invalid key and a
 * RangeError when `before` is not less than `after`.
 */
export function orderKeyBetween(
  before: string | null,
  after: string | null,
  options: OrderKeyOptions = {},
): string {
  if (before !== null) checkKey(before, "before");
  if (after !== null) checkKey(after, "after");
  if (before !== null && after !== null && !(before < after)) {
    throw new RangeError(
      `Cannot place between order keys ${JSON.stringify(before)} and ${
        JSON.stringify(after)
      }: the first must sort before the second`,
    );
  }
  const digits = options.jitterDigits ?? ORDER_KEY_JITTER_DIGITS;
  if (!Number.isSafeInteger(digits) || digits < 0 || digits > 16) {
    throw new RangeError(
      `Invalid jitterDigits ${digits}: expected an integer from 0 to 16`,
    );
  }
  const plain = plainKeyBetween(before, after);
  if (digits === 0) return plain;
  // Keep the shortest key's integer part; within it, the bounds' fractions (a bound
  // with another integer part leaves that side open).
  const int = integerPart(plain);
  const lo = before !== null && integerPart(before) === int
    ? before.slice(int.length)
    : "";
  const hi = after !== null && integerPart(after) === int
    ? after.slice(int.length)
    : null;
  return int +
    randomFractionBetween(lo, hi, digits, options.random ?? defaultRandom);
}

/**
 * `count` increasing keys strictly between `before` and `after`, spread evenly (a list
 * built or re-keyed at once gets short keys). Throws like {@link orderKeyBetween}.
 */
export function orderKeysBetween(
  before: string | null,
  after: string | null,
  count: number,
  options: OrderKeyOptions = {},
): string[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(
      `Invalid count ${count}: expected a non-negative integer`,
    );
  }
  if (count <= 1) {
    return count === 0 ? [] : [orderKeyBetween(before, after, options)];
  }
  if (before !== null && after !== null) {
    // Divide and conquer: the middle key first, then each half.
    const mid = count >> 1;
    const middle = orderKeyBetween(before, after, options);
    return [
      ...orderKeysBetween(before, middle, mid, options),
      middle,
      ...orderKeysBetween(middle, after, count - mid - 1, options),
    ];
  }
  // Towards an open end: consecutive integers (short keys), one key in each gap.
  const plain: string[] = [orderKeyBetween(before, after, { jitterDigits: 0 })];
  while (plain.length <= count) {
    plain.push(
      after === null
        ? plainKeyBetween(plain[plain.length - 1], null)
        : plainKeyBetween(null, plain[plain.length - 1]),
    );
  }
  if (after !== null) plain.reverse();
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(orderKeyBetween(plain[i], plain[i + 1], options));
  }
  return out;
}

/** Fraction digits {@link orderKeyOfNumber} keeps (enough for any double's fraction). */
const NUMBER_FRACTION_DIGITS = 9;

/** The integer part of the order key of a safe integer (order-preserving). */
function integerKeyOf(m: number): string {
  let v = BigInt(m);
  if (v >= 0n) {
    for (let c = 1; c <= 26; c++) {
      const size = BIG_BASE ** BigInt(c);
      if (v < size) return String.fromCharCode(96 + c) + baseDigits(v, c);
      v -= size;
    }
  } else {
    v = -v - 1n; // -1 → 0: the largest key of the first negative class
    for (let c = 1; c <= 26; c++) {
      const size = BIG_BASE ** BigInt(c);
      if (v < size) {
        return String.fromCharCode(91 - c) + baseDigits(size - 1n - v, c);
      }
      v -= size;
    }
  }
  throw new RangeError(`Number ${m} is out of the order key range`);
}

function baseDigits(v: bigint, count: number): string {
  let out = "";
  for (let i = 0; i < count; i++) {
    out = ORDER_KEY_DIGITS[Number(v % BIG_BASE)] + out;
    v /= BIG_BASE;
  }
  return out;
}

/**
 * An order key that sorts like the number `n` among other such keys (n < m gives a key
 * that is not greater): for migrating a numeric position field to order keys, e.g. in a
 * schema's `upgrade`. Throws a RangeError for a non-finite or unsafe number.
 */
export function orderKeyOfNumber(n: number): string {
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(
      `Cannot make an order key of ${n}: expected a finite safe number`,
    );
  }
  const int = Math.floor(n);
  let f = n - int;
  let frac = "";
  for (let i = 0; i < NUMBER_FRACTION_DIGITS && f > 0; i++) {
    f *= BASE;
    const d = Math.min(BASE - 1, Math.floor(f));
    frac += ORDER_KEY_DIGITS[d];
    f -= d;
  }
  return integerKeyOf(int) + frac.replace(/0+$/, "");
}
