import assert from "node:assert/strict";
import { compareSortKeys, normalizeSortKey, type SortKey } from "./sort_key.ts";

Deno.test("sort keys: missing < boolean < number < string, values in order", () => {
  const ordered: SortKey[] = [
    undefined,
    false,
    true,
    -1,
    0,
    2n,
    3,
    "",
    "B",
    "a",
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      const c = compareSortKeys(ordered[i], ordered[j]);
      assert.equal(
        Math.sign(c),
        Math.sign(i - j),
        `${ordered[i]} vs ${ordered[j]}`,
      );
    }
  }
  assert.equal(compareSortKeys(null, undefined), 0);
  assert.equal(compareSortKeys(NaN, undefined), 0);
  assert.ok(compareSortKeys(new Date(1), new Date(2)) < 0);
});

Deno.test("sort keys: normalization of field values", () => {
  assert.equal(normalizeSortKey(new Date(5)), 5);
  assert.equal(normalizeSortKey(new Date(NaN)), undefined);
  assert.equal(normalizeSortKey(new Set([1])), undefined);
  assert.equal(normalizeSortKey(NaN), undefined);
  assert.equal(normalizeSortKey("x"), "x");
});
