/**
 * What a character-wise three-way text merge must satisfy, for the model oracle
 * (tests/_model.ts). An exact model would have to repeat the engine's choice among
 * equally short diffs, so the model states the result's properties instead:
 *
 * - strict (every code point of the base and of each head is unique, as when the
 *   generator never inserts a character twice, and every head holds the base
 *   characters it kept in the base's order, so which character is which needs no
 *   diff): the result holds exactly the base characters that no changed head deleted
 *   plus every character some head inserted, each once; and for every head, the
 *   result's characters that head holds appear in that head's order (so each head's
 *   insertions stay whole, in order, between the same surviving base characters);
 * - otherwise (repeated characters, or a head that moved base characters: a text
 *   diff can only say "deleted here, inserted there", and which of the moved
 *   characters count as re-inserted is a choice among equally short diffs): the result is well-formed and every code point
 *   in it comes from the base or from a head.
 *
 * @module
 */

/** The inputs of one text merge the model does not compute exactly. */
export interface TextMerge {
  readonly base: string;
  /** The heads' texts that differ from the base, in (ts, id) order (≥ 2 distinct). */
  readonly changed: readonly string[];
}

const codePoints = (s: string): string[] => Array.from(s);

/** True when no code point repeats in the base or in any head. */
export function hasUniqueCharacters(m: TextMerge): boolean {
  return [m.base, ...m.changed].every((s) => {
    const cps = codePoints(s);
    return new Set(cps).size === cps.length;
  });
}

/**
 * True when every head holds the base characters it shares with the base in the
 * base's order: no head moved a base character (with unique characters, the only
 * longest common subsequence of base and head is then their shared characters).
 */
export function keepsBaseOrder(m: TextMerge): boolean {
  const rank = new Map(codePoints(m.base).map((c, i) => [c, i]));
  return m.changed.every((h) => {
    let last = -1;
    for (const c of codePoints(h)) {
      const r = rank.get(c);
      if (r === undefined) continue;
      if (r < last) return false;
      last = r;
    }
    return true;
  });
}

/** True when the strict rules apply: unique characters and no head moved one. */
export function identifiesCharacters(m: TextMerge): boolean {
  return hasUniqueCharacters(m) && keepsBaseOrder(m);
}

const show = (c: string) => JSON.stringify(c);

/** Problems of `result` as the merge of `m` under the strict rules (none: ok). */
export function strictTextProblems(m: TextMerge, result: string): string[] {
  const problems: string[] = [];
  const base = codePoints(m.base);
  const heads = m.changed.map((h) => new Set(codePoints(h)));
  const inBase = new Set(base);
  const expected = new Set<string>();
  for (const c of base) if (heads.every((h) => h.has(c))) expected.add(c);
  for (const h of heads) for (const c of h) if (!inBase.has(c)) expected.add(c);
  const got = codePoints(result);
  const seen = new Set<string>();
  for (const c of got) {
    if (seen.has(c)) problems.push(`character ${show(c)} appears twice`);
    seen.add(c);
    if (!expected.has(c)) {
      problems.push(
        inBase.has(c)
          ? `base character ${show(c)} survives although a head deleted it`
          : `character ${show(c)} comes from no head`,
      );
    }
  }
  for (const c of expected) {
    if (!seen.has(c)) {
      problems.push(
        inBase.has(c)
          ? `base character ${show(c)} kept by every head is missing`
          : `character ${show(c)} inserted by a head is missing`,
      );
    }
  }
  m.changed.forEach((text, i) => {
    const own = heads[i];
    const inResult = got.filter((c) => own.has(c));
    const inHead = codePoints(text).filter((c) => seen.has(c));
    if (inResult.join("") !== inHead.join("")) {
      problems.push(
        `head ${i + 1}'s characters are out of its order: ${
          show(inResult.join(""))
        } instead of ${show(inHead.join(""))}`,
      );
    }
  });
  return problems;
}

/** Problems of `result` as the merge of `m` under the rules that hold for any text. */
export function weakTextProblems(m: TextMerge, result: string): string[] {
  if (!result.isWellFormed()) return ["the result has a lone surrogate"];
  const known = new Set(codePoints(m.base));
  for (const h of m.changed) for (const c of codePoints(h)) known.add(c);
  return codePoints(result).filter((c) => !known.has(c)).map((c) =>
    `character ${show(c)} comes from neither the base nor a head`
  );
}
