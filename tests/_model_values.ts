/** Item states and values as the model oracle (tests/_model.ts) compares and prints them. */

/** An item's data as the public API shows it (Date, Set and Map objects). */
export type ModelData = Readonly<Record<string, unknown>>;

/** An item state: its data and whether it is deleted. */
export interface ModelState {
  readonly deleted: boolean;
  readonly data: ModelData;
}

/** Value equality by field type (dates by time, sets and maps by content). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) {
    return a.getTime() === b.getTime();
  }
  if (a instanceof Set && b instanceof Set) {
    return a.size === b.size && [...a].every((e) => b.has(e));
  }
  if (a instanceof Map && b instanceof Map) {
    return a.size === b.size &&
      [...a].every(([k, v]) => b.has(k) && b.get(k) === v);
  }
  return false;
}

/** A readable, order-independent rendering of a value (for messages and digests). */
export function showValue(v: unknown): string {
  if (v instanceof Date) return `Date(${v.getTime()})`;
  if (v instanceof Set) return `Set(${[...v].map(showValue).sort().join(",")})`;
  if (v instanceof Map) {
    return `Map(${
      [...v].map(([k, x]) => `${k}=${showValue(x)}`).sort().join(",")
    })`;
  }
  return JSON.stringify(v) ?? "undefined";
}

/** A readable rendering of a state. */
export function showState(s: ModelState | undefined): string {
  if (!s) return "absent";
  const fields = Object.keys(s.data).sort().map((k) =>
    `${k}: ${showValue(s.data[k])}`
  );
  return `${s.deleted ? "deleted " : ""}{ ${fields.join(", ")} }`;
}
