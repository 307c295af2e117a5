/**
 * Field types: how a value of each type is checked, copied, compared and encoded into the
 * canonical MessagePack form (dates as integer ms, sets as sorted arrays, maps as
 * objects whose keys the encoder sorts).
 *
 * @module
 */

import type { Packable } from "../encoding/msgpack.ts";
import { loneSurrogateAt } from "../encoding/utf8.ts";

/** The field types a schema may use. */
export const FIELD_TYPES = [
  "string",
  "number",
  "boolean",
  "date",
  "set",
  "map",
  "text",
] as const;

/** One of {@link FIELD_TYPES}. */
export type FieldType = typeof FIELD_TYPES[number];

/** Elements a `set` field may hold. */
export type SetElement = string | number;

/** Values a `map` field may hold. */
export type MapValue = string | number | boolean | null;

/** Any field value. */
export type FieldValue =
  | string
  | number
  | boolean
  | Date
  | ReadonlySet<SetElement>
  | ReadonlyMap<string, MapValue>;

/** True when `t` names a field type. */
export function isFieldType(t: unknown): t is FieldType {
  return typeof t === "string" &&
    (FIELD_TYPES as readonly string[]).includes(t);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Date) return `Date(${v.getTime()})`;
  if (v instanceof Set) return "a Set";
  if (v instanceof Map) return "a Map";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

/**
 * Why a string cannot be stored (it has a lone surrogate, which has no UTF-8 form), or
 * undefined when it can. `what` names the string in the message.
 */
function surrogateProblem(what: string, v: string): string | undefined {
  const at = loneSurrogateAt(v);
  if (at < 0) return undefined;
  return `${what} ${
    JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)
  } has a lone surrogate at index ${at} (UTF-16 code unit 0x${
    v.charCodeAt(at).toString(16)
  } without its pair has no UTF-8 form, so it cannot be stored)`;
}

function isSetElement(v: unknown): v is SetElement {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

function isMapValue(v: unknown): v is MapValue {
  return v === null || typeof v === "string" || typeof v === "boolean" ||
    (typeof v === "number" && Number.isFinite(v));
}

/**
 * Checks `value` against `type` and returns a private copy (sets, maps and dates are
 * copied so later mutation by the caller cannot change stored data). Returns a string
 * describing the problem instead when the value does not fit.
 */
export function checkFieldValue(
  type: FieldType,
  value: unknown,
): { ok: true; value: FieldValue } | { ok: false; problem: string } {
  switch (type) {
    case "string":
    case "text":
      if (typeof value === "string") {
        const problem = surrogateProblem("string", value);
        return problem ? { ok: false, problem } : { ok: true, value };
      }
      break;
    case "number":
      if (typeof value === "number" && Number.isFinite(value)) {
        return { ok: true, value };
      }
      break;
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      break;
    case "date":
      if (value instanceof Date && Number.isFinite(value.getTime())) {
        return { ok: true, value: new Date(value.getTime()) };
      }
      break;
    case "set":
      if (value instanceof Set || Array.isArray(value)) {
        const out = new Set<SetElement>();
        for (const e of value) {
          if (!isSetElement(e)) {
            return {
              ok: false,
              problem: `set element ${
                describe(e)
              } is not a string or finite number`,
            };
          }
          const problem = typeof e === "string"
            ? surrogateProblem("set element", e)
            : undefined;
          if (problem) return { ok: false, problem };
          out.add(e);
        }
        return { ok: true, value: out };
      }
      break;
    case "map":
      if (value instanceof Map) {
        const out = new Map<string, MapValue>();
        for (const [k, v] of value) {
          if (typeof k !== "string") {
            return {
              ok: false,
              problem: `map key ${describe(k)} is not a string`,
            };
          }
          if (!isMapValue(v)) {
            return {
              ok: false,
              problem: `map value ${
                describe(v)
              } at key "${k}" is not a string, finite number, boolean or null`,
            };
          }
          const problem = surrogateProblem("map key", k) ??
            (typeof v === "string"
              ? surrogateProblem(`map value at key "${k}":`, v)
              : undefined);
          if (problem) return { ok: false, problem };
          out.set(k, v);
        }
        return { ok: true, value: out };
      }
      break;
  }
  return { ok: false, problem: `expected ${type}, got ${describe(value)}` };
}

function compareElements(a: SetElement, b: SetElement): number {
  if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Encodes a checked value into its canonical packable form. */
export function encodeFieldValue(type: FieldType, value: FieldValue): Packable {
  switch (type) {
    case "date":
      return (value as Date).getTime();
    case "set":
      return [...(value as ReadonlySet<SetElement>)].sort(compareElements);
    case "map": {
      const out: Record<string, MapValue> = {};
      for (const [k, v] of value as ReadonlyMap<string, MapValue>) out[k] = v;
      return out;
    }
    default:
      return value as Packable;
  }
}

/**
 * Decodes a packable value of `type`. Throws a TypeError when stored or received data
 * does not have the declared type.
 */
export function decodeFieldValue(type: FieldType, raw: Packable): FieldValue {
  switch (type) {
    case "date":
      if (typeof raw === "number" && Number.isFinite(raw)) return new Date(raw);
      break;
    case "set":
      if (Array.isArray(raw) && raw.every(isSetElement)) {
        return new Set(raw as SetElement[]);
      }
      break;
    case "map":
      if (
        raw !== null && typeof raw === "object" && !Array.isArray(raw) &&
        !(raw instanceof Uint8Array)
      ) {
        const out = new Map<string, MapValue>();
        for (const [k, v] of Object.entries(raw)) {
          if (!isMapValue(v)) break;
          out.set(k, v);
        }
        if (out.size === Object.keys(raw).length) return out;
      }
      break;
    case "string":
    case "text":
      // Decoded from UTF-8: always well formed.
      if (typeof raw === "string") return raw;
      break;
    default: {
      const checked = checkFieldValue(type, raw);
      if (checked.ok) return checked.value;
    }
  }
  throw new TypeError(`Stored value ${describe(raw)} is not a valid ${type}`);
}

/** Structural equality of two values of one type. */
export function fieldValuesEqual(
  type: FieldType,
  a: FieldValue | undefined,
  b: FieldValue | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  switch (type) {
    case "date":
      return (a as Date).getTime() === (b as Date).getTime();
    case "set": {
      const sa = a as ReadonlySet<SetElement>,
        sb = b as ReadonlySet<SetElement>;
      if (sa.size !== sb.size) return false;
      for (const e of sa) if (!sb.has(e)) return false;
      return true;
    }
    case "map": {
      const ma = a as ReadonlyMap<string, MapValue>;
      const mb = b as ReadonlyMap<string, MapValue>;
      if (ma.size !== mb.size) return false;
      for (const [k, v] of ma) {
        if (!mb.has(k) || mb.get(k) !== v) return false;
      }
      return true;
    }
    default:
      return a === b;
  }
}

/** A copy of a value that the caller may mutate freely. */
export function copyFieldValue(type: FieldType, value: FieldValue): FieldValue {
  switch (type) {
    case "date":
      return new Date((value as Date).getTime());
    case "set":
      return new Set(value as ReadonlySet<SetElement>);
    case "map":
      return new Map(value as ReadonlyMap<string, MapValue>);
    default:
      return value;
  }
}

/** At most this many bytes encode a string: the longest header and 3 bytes per unit. */
function stringSizeBound(s: string): number {
  return 5 + 3 * s.length;
}

/**
 * An upper bound of the encoded (canonical MessagePack) size of a checked value of
 * `type`, computed without encoding it: at most 3 UTF-8 bytes per UTF-16 code unit, 9
 * bytes per number. Write checks compare it with their limits and encode only values that
 * come close.
 */
export function encodedSizeBound(type: FieldType, value: FieldValue): number {
  switch (type) {
    case "string":
    case "text":
      return stringSizeBound(value as string);
    case "number":
    case "date":
      return 9;
    case "boolean":
      return 1;
    case "set": {
      let n = 5;
      for (const e of value as ReadonlySet<SetElement>) {
        n += typeof e === "string" ? stringSizeBound(e) : 9;
      }
      return n;
    }
    case "map": {
      let n = 5;
      for (const [k, v] of value as ReadonlyMap<string, MapValue>) {
        n += stringSizeBound(k) +
          (typeof v === "string" ? stringSizeBound(v) : 9);
      }
      return n;
    }
  }
}

/** An upper bound of the encoded size of a raw (already encoded-form) value. */
export function packedSizeBound(raw: Packable): number {
  if (typeof raw === "string") return stringSizeBound(raw);
  if (raw === null || typeof raw === "boolean") return 1;
  if (typeof raw === "number") return 9;
  if (raw instanceof Uint8Array) return 5 + raw.length;
  let n = 5;
  if (Array.isArray(raw)) {
    for (const x of raw as readonly Packable[]) n += packedSizeBound(x);
    return n;
  }
  for (const [k, v] of Object.entries(raw)) {
    n += stringSizeBound(k) + packedSizeBound(v);
  }
  return n;
}
