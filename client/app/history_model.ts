/**
 * What the history panel shows about each commit of an item: the values it wrote (what
 * changed against its first parent), and, where concurrent edits met (a merge commit,
 * or heads not merged yet), each side's value of every field they disagree on and the
 * value that won.
 *
 * @module
 */

import type { Item } from "../../lib/core/item.ts";
import type { CommitInfo } from "../../lib/core/item_history.ts";
import type { FieldValue } from "../../lib/schema/field_types.ts";

/** A field a commit changed. */
export interface FieldChange {
  readonly field: string;
  readonly before: string | null;
  readonly after: string | null;
}

/** Concurrent values of one field and the one that won. */
export interface FieldConflict {
  readonly field: string;
  /** Each side: the commit (head or merge parent), its author session, its value. */
  readonly sides: readonly {
    readonly commit: string;
    readonly session: string;
    readonly value: string | null;
  }[];
  readonly winner: string | null;
}

/** One row of the panel. */
export interface CommitView {
  readonly info: CommitInfo;
  readonly changes: readonly FieldChange[];
  /** Set on merge commits: the concurrent edits they merged. */
  readonly merged: readonly FieldConflict[];
  readonly deleted: boolean;
}

/** A field value as the panel prints it (null: no value). */
export function formatValue(v: FieldValue | undefined): string | null {
  if (v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Set) return `{${[...v].sort().join(", ")}}`;
  if (v instanceof Map) return JSON.stringify(Object.fromEntries(v));
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

type Values = Record<string, string | null>;

function valuesOf(item: Item, id: string): Values | undefined {
  const v = item.valueAt(id);
  if (!v) return undefined;
  const out: Values = {};
  for (const [k, x] of Object.entries(v.data)) out[k] = formatValue(x);
  return out;
}

/** Fields on which `sides` disagree, with `result`'s value as the winner. */
export function conflictsOf(
  sides: readonly { id: string; session: string; values: Values }[],
  result: Values,
): FieldConflict[] {
  const fields = new Set<string>();
  for (const s of sides) for (const f of Object.keys(s.values)) fields.add(f);
  const out: FieldConflict[] = [];
  for (const field of [...fields].sort()) {
    const vals = sides.map((s) => s.values[field] ?? null);
    if (vals.every((v) => v === vals[0])) continue;
    out.push({
      field,
      sides: sides.map((s, i) => ({
        commit: s.id,
        session: s.session,
        value: vals[i],
      })),
      winner: result[field] ?? null,
    });
  }
  return out;
}

/** The panel's rows for `item`, newest first, plus conflicts among unmerged heads. */
export function historyView(item: Item): {
  rows: CommitView[];
  unmergedHeads: FieldConflict[];
} {
  const history = item.history();
  const byId = new Map(history.map((c) => [c.id as string, c]));
  const values = new Map<string, Values>();
  const valueOf = (id: string) => {
    let v = values.get(id);
    if (!v) values.set(id, v = valuesOf(item, id) ?? {});
    return v;
  };
  const rows = history.map((info): CommitView => {
    const after = valueOf(info.id);
    const first = info.parents[0];
    const before = first && byId.has(first) ? valueOf(first) : {};
    const changes: FieldChange[] = [];
    for (const f of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const b = before[f] ?? null, a = after[f] ?? null;
      if (b !== a) changes.push({ field: f, before: b, after: a });
    }
    const parents = info.parents.filter((p) => byId.has(p));
    const merged = parents.length > 1
      ? conflictsOf(
        parents.map((p) => ({
          id: p,
          session: byId.get(p)!.session,
          values: valueOf(p),
        })),
        after,
      )
      : [];
    return { info, changes, merged, deleted: info.deleted };
  });
  const heads = history.filter((c) => c.head);
  const current: Values = {};
  for (const [k, v] of Object.entries(item.toObject())) {
    current[k] = formatValue(v);
  }
  const unmergedHeads = heads.length > 1
    ? conflictsOf(
      heads.map((h) => ({
        id: h.id,
        session: h.session,
        values: valueOf(h.id),
      })),
      current,
    )
    : [];
  return { rows: rows.reverse(), unmergedHeads };
}
