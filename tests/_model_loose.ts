/**
 * What any correct merge of several heads satisfies, whatever base it picks: the model
 * oracle (tests/_model.ts) checks only this where the merge base is not clean (heads
 * share commits the base does not hold), because there the single-base rule is known to
 * lose edits (see tests/merge_base_bug_test.ts) and a fixed rule
 * would give another exact value.
 *
 * - What every head agrees on is the result: a scalar all heads hold, a set element
 *   all heads (with the field) hold or none holds, a map entry (or its absence) all
 *   heads with the field agree on, deleted when every head is, live when none is.
 * - Nothing comes from nowhere: a scalar, map entry or set element is one that the base
 *   or some head holds; text is checked as in tests/_model_text.ts (weak rules).
 * - Custom merges are not checked (the user's function decides, with the base given).
 *
 * @module
 */

import { type ModelData, sameValue, showValue } from "./_model_values.ts";
import type { ModelState } from "./_model_values.ts";
import { weakTextProblems } from "./_model_text.ts";
import type { Schema } from "../mod.ts";

/** The inputs of a merge the loose rules judge. */
export interface LooseMerge {
  readonly schema: Schema;
  readonly base: ModelData;
  readonly heads: readonly ModelState[];
}

function setProblems(
  field: string,
  base: unknown,
  heads: readonly unknown[],
  got: unknown,
): string[] {
  const sets = heads.filter((h) => h !== undefined) as Set<unknown>[];
  if (sets.length === 0) return [];
  const result = (got ?? new Set()) as Set<unknown>;
  const problems: string[] = [];
  const all = new Set([
    ...(base as Set<unknown> ?? []),
    ...sets.flatMap((s) => [...s]),
  ]);
  for (const e of all) {
    const held = sets.filter((s) => s.has(e)).length;
    if (held === sets.length && !result.has(e)) {
      problems.push(`${field}: ${showValue(e)}, in every head, is missing`);
    }
    if (held === 0 && result.has(e)) {
      problems.push(`${field}: ${showValue(e)}, in no head, is present`);
    }
  }
  for (const e of result) {
    if (!all.has(e)) {
      problems.push(`${field}: ${showValue(e)} comes from nowhere`);
    }
  }
  return problems;
}

const ABSENT = Symbol("absent");

function mapProblems(
  field: string,
  base: unknown,
  heads: readonly unknown[],
  got: unknown,
): string[] {
  const maps = heads.filter((h) => h !== undefined) as Map<string, unknown>[];
  if (maps.length === 0) return [];
  const b = (base ?? new Map()) as Map<string, unknown>;
  const result = (got ?? new Map()) as Map<string, unknown>;
  const entry = (m: Map<string, unknown>, k: string) =>
    m.has(k) ? m.get(k) : ABSENT;
  const keys = new Set([...b.keys(), ...result.keys()]);
  for (const m of maps) for (const k of m.keys()) keys.add(k);
  const problems: string[] = [];
  for (const k of keys) {
    const values = maps.map((m) => entry(m, k));
    const r = entry(result, k);
    const show = (v: unknown) => v === ABSENT ? "absent" : showValue(v);
    if (values.every((v) => v === values[0]) && r !== values[0]) {
      problems.push(
        `${field}.${k}: every head has ${show(values[0])}, got ${show(r)}`,
      );
    }
    if (!values.includes(r) && r !== entry(b, k)) {
      problems.push(`${field}.${k}: ${show(r)} comes from nowhere`);
    }
  }
  return problems;
}

function scalarProblems(
  field: string,
  base: unknown,
  heads: readonly unknown[],
  got: unknown,
): string[] {
  if (heads.every((h) => sameValue(h, heads[0])) && !sameValue(got, heads[0])) {
    return [
      `${field}: every head has ${showValue(heads[0])}, got ${showValue(got)}`,
    ];
  }
  if (!sameValue(got, base) && !heads.some((h) => sameValue(h, got))) {
    return [`${field}: ${showValue(got)} comes from nowhere`];
  }
  return [];
}

/** Problems of `observed` as a merge of `m` under the loose rules (none: ok). */
export function looseProblems(m: LooseMerge, observed: ModelState): string[] {
  const problems: string[] = [];
  if (m.heads.every((h) => h.deleted) && !observed.deleted) {
    problems.push("every head is deleted, the merge is live");
  }
  if (m.heads.every((h) => !h.deleted) && observed.deleted) {
    problems.push("no head is deleted, the merge is");
  }
  if (m.schema.merge) return problems;
  for (const [name, def] of Object.entries(m.schema.fields)) {
    if (def.merge) continue;
    const heads = m.heads.map((h) => h.data[name]);
    const base = m.base[name];
    const got = observed.data[name];
    switch (def.type) {
      case "set":
        problems.push(...setProblems(name, base, heads, got));
        break;
      case "map":
        problems.push(...mapProblems(name, base, heads, got));
        break;
      case "text": {
        const changed = heads.filter((h): h is string => typeof h === "string");
        if (typeof got !== "string") {
          if (changed.length) problems.push(`${name}: the text is missing`);
          break;
        }
        const merge = { base: (base as string | undefined) ?? "", changed };
        problems.push(
          ...weakTextProblems(merge, got).map((p) => `${name}: ${p}`),
        );
        break;
      }
      default:
        problems.push(...scalarProblems(name, base, heads, got));
    }
  }
  return problems;
}
