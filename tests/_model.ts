/**
 * A reference model of Capra's merge rules (DESIGN.md section 3), written from the rules
 * and not from lib/merge or lib/core, for oracle tests: the tests record every write
 * (its parents, its (ts, id) and the state it produced) and the model says what the value
 * of any set of heads must be. Agreement between replicas cannot catch a rule that is
 * wrong the same way everywhere (first writer wins, delete beats edit, a stale base);
 * this can.
 *
 * The rules, as the model states them:
 *
 * - One head: its state.
 * - Several heads whose shared history is clean (every commit two of them share is
 *   their common ancestor with the greatest (ts, id), or older): a three-way merge
 *   against that ancestor (none when they share no commit), heads taken in (ts, id)
 *   order, with the per-type rules below.
 * - Otherwise (criss-cross merges, or three heads of which two share newer history) the
 *   heads are folded in (ts, id) order: each next head is merged with the merge of those
 *   before it, against their lowest common ancestors (common ancestors that are no
 *   ancestor of another common ancestor). Several of those are merged first, by the
 *   same rules, into a virtual base. Consecutive heads over the same base are one N-way
 *   merge. (For a clean set of heads this is the three-way merge above; the model keeps
 *   both formulations, so the engine's fold is checked against the plain rule there.)
 * - Scalars (string, number, boolean, date): the last head, in (ts, id) order, whose
 *   value differs from the base's wins; the base's value if none changed it.
 * - Sets: an element is in the result if some head added it (not in the base, in the
 *   head) or if it was in the base and no head removed it. A head without the field
 *   has no say. Maps: key by key, like a scalar among the heads that have the field
 *   (a missing key is a value: removal); a key ends up removed if that value wins.
 * - Text: see tests/_model_text.ts (the result's properties, not its exact text). A
 *   virtual base or an intermediate merge whose text the model cannot compute takes the
 *   text a replica showed for that set of heads when there was one; otherwise the texts
 *   built on it are checked by the weak rules only.
 * - A field's own `merge(base, ours, theirs)` (or the schema's) is folded over the
 *   heads in (ts, id) order: merge(base, merge(base, h1, h2), h3)...
 * - Delete: the merge is deleted when some head is deleted and no live head changed a
 *   field (an edit beats a concurrent delete).
 *
 * Not modelled: removing a text field (the generators never do) and schema upgrades.
 *
 * @module
 */

import type { FieldDef, Schema } from "../mod.ts";
import {
  identifiesCharacters,
  strictTextProblems,
  type TextMerge,
  weakTextProblems,
} from "./_model_text.ts";
import {
  type ModelData,
  type ModelState,
  sameValue,
  showState,
  showValue,
} from "./_model_values.ts";

export {
  type ModelData,
  type ModelState,
  sameValue,
  showState,
  showValue,
} from "./_model_values.ts";

/** One commit as the model knows it. */
export interface ModelCommit {
  readonly id: string;
  /** Item key (last path segment). */
  readonly key: string;
  readonly parents: readonly string[];
  readonly ts: number;
  /** The state the write produced (the value its writer saw, with the change applied). */
  readonly state: ModelState;
}

/** Options of {@link ModelHistory}. */
export interface ModelOptions {
  /** The schema of every item (one per key; no upgrades). */
  readonly schemaOf: (key: string) => Schema;
  /**
   * True when the generator never inserts a code point twice, so text merges are
   * checked strictly (see tests/_model_text.ts).
   */
  readonly uniqueText?: boolean;
}

/** (ts, id) order, the documented tie-break. */
export function commitOrder(
  a: Pick<ModelCommit, "ts" | "id">,
  b: Pick<ModelCommit, "ts" | "id">,
): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const ABSENT = Symbol("absent");
/** A text the model cannot compute (an intermediate merge of two changed texts). */
const UNKNOWN = Symbol("unknown");

function mergeScalar(base: unknown, heads: readonly unknown[]): unknown {
  let winner = base;
  for (const v of heads) if (!sameValue(v, base)) winner = v;
  return winner;
}

function mergeSet(base: unknown, heads: readonly unknown[]): unknown {
  const b = (base ?? new Set()) as Set<unknown>;
  const sets = heads.filter((h) => h !== undefined) as Set<unknown>[];
  if (base === undefined && sets.length === 0) return undefined;
  const out = new Set<unknown>();
  for (const e of b) if (sets.every((s) => s.has(e))) out.add(e);
  for (const s of sets) for (const e of s) if (!b.has(e)) out.add(e);
  return out;
}

function mergeMap(base: unknown, heads: readonly unknown[]): unknown {
  const b = (base ?? new Map()) as Map<string, unknown>;
  const maps = heads.filter((h) => h !== undefined) as Map<string, unknown>[];
  if (base === undefined && maps.length === 0) return undefined;
  const keys = new Set([...b.keys(), ...maps.flatMap((m) => [...m.keys()])]);
  const out = new Map<string, unknown>();
  for (const k of keys) {
    const entry = (m: Map<string, unknown>) => m.has(k) ? m.get(k) : ABSENT;
    const v = mergeScalar(entry(b), maps.map(entry));
    if (v !== ABSENT) out.set(k, v);
  }
  return out;
}

function fold(
  merge: (b: unknown, o: unknown, t: unknown) => unknown,
  base: unknown,
  heads: readonly unknown[],
): unknown {
  return heads.slice(1).reduce((acc, v) => merge(base, acc, v), heads[0]);
}

/** What the model knows of the value of a set of heads. */
interface ModelValue {
  readonly data: Record<string, unknown>;
  readonly deleted: boolean;
  /** Text fields whose text the model cannot compute (weak checks only). */
  readonly unknown: ReadonlySet<string>;
  /** True when the deleted flag depends on such a text. */
  readonly deletedUnknown: boolean;
}

/** The value of a set of heads: a state, plus what is left to check loosely. */
export interface Expectation {
  /** False when heads share commits outside their greatest common ancestor's ancestry. */
  readonly clean: boolean;
  readonly schema: Schema;
  /** The state, exact except for the fields named in `text` and `unknown`. */
  readonly state: ModelState;
  /** Text fields whose merged text the model constrains instead of computing. */
  readonly text: ReadonlyMap<string, TextMerge>;
  /** Text fields built on texts the model could not compute (weak rules only). */
  readonly unknown: ReadonlySet<string>;
  /** False when the deleted flag depends on an unknown text. */
  readonly deletedKnown: boolean;
}

const NONE: ReadonlySet<string> = new Set();

/** The commits the tests recorded, and the value any set of heads must have. */
export class ModelHistory {
  readonly commits: Map<string, ModelCommit> = new Map();
  /** What the checks exercised (so tests can assert they test something). */
  readonly stats = {
    /** Values of several heads checked. */
    merges: 0,
    /** ... of which the base was clean and some head deleted, another live. */
    deleteAgainstLive: 0,
    /** ... of which the base was not clean (checked by the fold with virtual bases). */
    unclean: 0,
    /** ... of those, merges over a virtual base (several lowest common ancestors). */
    virtualBases: 0,
    /** Text merges checked strictly / with the weak rules. */
    strictText: 0,
    weakText: 0,
  };
  readonly #resolved = new Map<string, ModelState>();
  readonly #ancestry = new Map<string, Set<string>>();

  constructor(readonly options: ModelOptions) {}

  /** Records a commit. */
  add(c: ModelCommit): void {
    for (const p of c.parents) {
      if (!this.commits.has(p)) {
        throw new Error(`model: ${c.id} names unknown parent ${p}`);
      }
    }
    this.commits.set(c.id, c);
  }

  #commit(id: string): ModelCommit {
    const c = this.commits.get(id);
    if (!c) throw new Error(`model: unknown commit ${id}`);
    return c;
  }

  /** The commit and all its ancestors. */
  ancestry(id: string): Set<string> {
    const known = this.#ancestry.get(id);
    if (known) return known;
    const seen = new Set<string>([id]);
    for (const p of this.#commit(id).parents) {
      for (const a of this.ancestry(p)) seen.add(a);
    }
    this.#ancestry.set(id, seen);
    return seen;
  }

  /** The common ancestor of `heads` with the greatest (ts, id), if any. */
  mergeBase(heads: readonly string[]): ModelCommit | undefined {
    const [first, ...rest] = heads.map((h) => this.ancestry(h));
    const common = [...first].filter((id) => rest.every((a) => a.has(id)));
    return common.map((id) => this.#commit(id)).sort(commitOrder).at(-1);
  }

  /**
   * The lowest common ancestors of two sides (each the union of its commits'
   * ancestries): common ancestors that are no ancestor of another common ancestor.
   */
  lowestCommonAncestors(a: readonly string[], b: readonly string[]): string[] {
    const sideA = new Set(a.flatMap((id) => [...this.ancestry(id)]));
    const sideB = new Set(b.flatMap((id) => [...this.ancestry(id)]));
    const common = [...sideA].filter((id) => sideB.has(id));
    return common.filter((c) =>
      !common.some((d) => d !== c && this.ancestry(d).has(c))
    ).sort();
  }

  /** What the value of `heads` must be (undefined for no heads). */
  expect(headIds: readonly string[]): Expectation | undefined {
    if (headIds.length === 0) return undefined;
    const heads = headIds.map((id) => this.#commit(id)).sort(commitOrder);
    const schema = this.options.schemaOf(heads[0].key);
    if (heads.length === 1) {
      return {
        clean: true,
        schema,
        state: heads[0].state,
        text: new Map(),
        unknown: NONE,
        deletedKnown: true,
      };
    }
    const base = this.mergeBase(headIds);
    if (this.#isClean(headIds, base)) {
      const merged = this.#nWay(
        schema,
        base ? this.#exact(base.state) : undefined,
        heads.map((h) => this.#exact(h.state)),
        true,
      );
      return this.#expectation(true, schema, merged);
    }
    return this.#expectation(false, schema, this.#fold(schema, headIds, true));
  }

  #expectation(
    clean: boolean,
    schema: Schema,
    m: { value: ModelValue; text: Map<string, TextMerge> },
  ): Expectation {
    return {
      clean,
      schema,
      state: { deleted: m.value.deleted, data: m.value.data },
      text: m.text,
      unknown: m.value.unknown,
      deletedKnown: !m.value.deletedUnknown,
    };
  }

  #exact(state: ModelState): ModelValue {
    return {
      data: { ...state.data },
      deleted: state.deleted,
      unknown: NONE,
      deletedUnknown: false,
    };
  }

  /**
   * The value of a set of commits none of which descends from another, as a base or a
   * side of a merge: what a replica showed for it when one did, else computed.
   */
  #valueOfSet(schema: Schema, ids: readonly string[]): ModelValue | undefined {
    if (ids.length === 0) return undefined;
    const shown = this.#resolved.get([...ids].sort().join(" "));
    if (shown) return this.#exact(shown);
    if (ids.length === 1) return this.#exact(this.#commit(ids[0]).state);
    return this.#fold(schema, ids, false).value;
  }

  /** The fold of several heads (see the module doc). */
  #fold(
    schema: Schema,
    ids: readonly string[],
    final: boolean,
  ): { value: ModelValue; text: Map<string, TextMerge> } {
    const sorted = ids.map((id) => this.#commit(id)).sort(commitOrder);
    const tips = [sorted[0].id];
    let bases: string[] | null = null;
    let members: ModelValue[] = [this.#exact(sorted[0].state)];
    for (const next of sorted.slice(1)) {
      const lcas = this.lowestCommonAncestors(tips, [next.id]);
      if (bases === null) bases = lcas;
      else if (lcas.join() !== bases.join()) {
        const merged = this.#nWay(
          schema,
          this.#baseValue(schema, bases, final),
          members,
          false,
        );
        members = [merged.value];
        bases = lcas;
      }
      members.push(this.#exact(next.state));
      tips.push(next.id);
    }
    return this.#nWay(
      schema,
      this.#baseValue(schema, bases!, final),
      members,
      final,
    );
  }

  #baseValue(
    schema: Schema,
    bases: readonly string[],
    counted: boolean,
  ): ModelValue | undefined {
    if (counted && bases.length > 1) this.stats.virtualBases++;
    return this.#valueOfSet(schema, bases);
  }

  /** The N-way merge of `members` over `base` (final: the value being checked). */
  #nWay(
    schema: Schema,
    base: ModelValue | undefined,
    members: readonly ModelValue[],
    final: boolean,
  ): { value: ModelValue; text: Map<string, TextMerge> } {
    const baseData: ModelData = base?.data ?? {};
    const baseUnknown = base?.unknown ?? NONE;
    const text = new Map<string, TextMerge>();
    const unknown = new Set<string>();
    const unknownIn = (f: string) =>
      baseUnknown.has(f) || members.some((m) => m.unknown.has(f));
    let data: Record<string, unknown> = {};
    if (schema.merge) {
      const merge = schema.merge as (
        b: unknown,
        o: unknown,
        t: unknown,
      ) => unknown;
      data = { ...(fold(merge, baseData, members.map((s) => s.data)) ?? {}) };
    } else {
      for (const [name, def] of Object.entries(schema.fields)) {
        if (def.type === "text" && !def.merge && unknownIn(name)) {
          unknown.add(name);
          continue;
        }
        const values = members.map((s) => s.data[name]);
        const v = this.#mergeField(
          name,
          def,
          baseData[name],
          values,
          final ? text : null,
        );
        if (v === UNKNOWN) unknown.add(name);
        else if (v !== undefined) data[name] = v;
      }
    }
    // Whether a live member changed a field; unknown when only an unknown text can say.
    let liveEdit = false, undecided = false;
    for (const m of members) {
      if (m.deleted) continue;
      for (const f of Object.keys(schema.fields)) {
        if (m.unknown.has(f) || baseUnknown.has(f)) undecided = true;
        else if (!sameValue(m.data[f], baseData[f])) liveEdit = true;
      }
    }
    const anyDeleted = members.some((s) => s.deleted);
    const deleted = anyDeleted && !liveEdit;
    const deletedUnknown = members.some((m) => m.deletedUnknown) ||
      (anyDeleted && !liveEdit && undecided);
    return { value: { data, deleted, unknown, deletedUnknown }, text };
  }

  /** True when every commit two heads share is the base or one of its ancestors. */
  #isClean(heads: readonly string[], base: ModelCommit | undefined): boolean {
    const below = base ? this.ancestry(base.id) : new Set<string>();
    const seen = new Set<string>();
    for (const h of heads) {
      for (const id of this.ancestry(h)) {
        if (seen.has(id) && !below.has(id)) return false;
        seen.add(id);
      }
    }
    return true;
  }

  #mergeField(
    name: string,
    def: FieldDef,
    base: unknown,
    heads: readonly unknown[],
    text: Map<string, TextMerge> | null,
  ): unknown {
    if (def.merge) {
      return fold(
        def.merge as (b: unknown, o: unknown, t: unknown) => unknown,
        base,
        heads,
      );
    }
    switch (def.type) {
      case "set":
        return mergeSet(base, heads);
      case "map":
        return mergeMap(base, heads);
      case "text": {
        const changed = heads.filter((h) => h !== base);
        if (changed.some((h) => h === undefined)) {
          throw new Error(`model: removing text field ${name} is not modelled`);
        }
        const distinct = [...new Set(changed as string[])];
        if (distinct.length <= 1) return distinct[0] ?? base;
        if (!text) return UNKNOWN; // an intermediate merge: the engine's text decides
        text.set(name, {
          base: (base as string | undefined) ?? "",
          changed: changed as string[],
        });
        return undefined; // decided by resolve()
      }
      default:
        return mergeScalar(base, heads);
    }
  }

  /** Code points of field `field` in any commit the heads descend from. */
  #knownCharacters(heads: readonly string[], field: string): Set<string> {
    const out = new Set<string>();
    for (const h of heads) {
      for (const id of this.ancestry(h)) {
        const t = this.#commit(id).state.data[field];
        if (typeof t === "string") { for (const c of t) out.add(c); }
      }
    }
    return out;
  }

  /**
   * Checks an observed value against the model's for `heads` and returns the problems
   * (none: it matches) and the state the model adopts for these heads (the observed
   * text where the model only constrains it). The same heads must always resolve to
   * the same state: the value is a function of the heads.
   */
  resolve(
    heads: readonly string[],
    observed: ModelState | undefined,
  ): { problems: string[]; state: ModelState | undefined } {
    const exp = this.expect(heads);
    if (heads.length > 1) {
      this.stats.merges++;
      if (exp && !exp.clean) this.stats.unclean++;
      const deleted = heads.map((id) => this.#commit(id).state.deleted);
      if (exp?.clean && deleted.includes(true) && deleted.includes(false)) {
        this.stats.deleteAgainstLive++;
      }
    }
    if (!exp || !observed) {
      const problems = !exp === !observed ? [] : [
        `expected ${showState(exp?.state)}, got ${showState(observed)}`,
      ];
      return { problems, state: exp?.state };
    }
    const problems: string[] = [];
    const data: Record<string, unknown> = { ...exp.state.data };
    for (const [field, merge] of exp.text) {
      const got = observed.data[field];
      if (typeof got !== "string") {
        problems.push(`${field}: expected merged text, got ${showValue(got)}`);
        continue;
      }
      // Repeated characters (REPEATED_CHARACTERS, or an earlier merge that repeated
      // one) and heads that moved base characters leave only the weak rules.
      const strict = this.options.uniqueText === true &&
        identifiesCharacters(merge);
      this.stats[strict ? "strictText" : "weakText"]++;
      const why = strict
        ? strictTextProblems(merge, got)
        : weakTextProblems(merge, got);
      for (const p of why) {
        problems.push(
          `${field}: ${p} (base ${JSON.stringify(merge.base)}, heads ${
            merge.changed.map((t) => JSON.stringify(t)).join(", ")
          }, result ${JSON.stringify(got)})`,
        );
      }
      data[field] = got;
    }
    for (const field of exp.unknown) {
      const got = observed.data[field];
      this.stats.weakText++;
      if (typeof got !== "string") {
        problems.push(`${field}: expected merged text, got ${showValue(got)}`);
        continue;
      }
      const known = this.#knownCharacters(heads, field);
      for (const c of got) {
        if (!known.has(c)) {
          problems.push(
            `${field}: character ${
              JSON.stringify(c)
            } comes from no commit merged`,
          );
        }
      }
      if (!got.isWellFormed()) problems.push(`${field}: a lone surrogate`);
      data[field] = got;
    }
    const deleted = exp.deletedKnown ? exp.state.deleted : observed.deleted;
    const state: ModelState = { deleted, data };
    if (state.deleted !== observed.deleted) {
      problems.push(
        `expected ${state.deleted ? "deleted" : "live"}, got ${
          observed.deleted ? "deleted" : "live"
        }`,
      );
    }
    const fields = new Set([
      ...Object.keys(state.data),
      ...Object.keys(observed.data),
    ]);
    for (const f of fields) {
      if (!sameValue(state.data[f], observed.data[f])) {
        problems.push(
          `${f}: expected ${showValue(state.data[f])}, got ${
            showValue(observed.data[f])
          }`,
        );
      }
    }
    return this.#remember(heads, problems, state);
  }

  /** Adopts `state` for `heads` unless it differs from what they gave before. */
  #remember(
    heads: readonly string[],
    problems: string[],
    state: ModelState,
  ): { problems: string[]; state: ModelState } {
    const key = [...heads].sort().join(" ");
    const before = this.#resolved.get(key);
    if (before && showState(before) !== showState(state)) {
      problems.push(
        `the same heads gave ${showState(before)} before, ${
          showState(state)
        } now`,
      );
    }
    if (!problems.length) this.#resolved.set(key, state);
    return { problems, state };
  }
}
