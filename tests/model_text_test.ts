/**
 * The text oracle of the merge model (tests/_model_text.ts) judges only what it can
 * know: strict rules when characters identify themselves, weak rules otherwise.
 */
import assert from "node:assert/strict";
import {
  identifiesCharacters,
  strictTextProblems,
  weakTextProblems,
} from "./_model_text.ts";

Deno.test("text oracle: strict rules catch a deleted base character that survives", () => {
  const m = { base: "abcd", changed: ["abXcd", "acd"] };
  assert(identifiesCharacters(m));
  assert.deepEqual(strictTextProblems(m, "abXcd").length > 0, true);
  assert.deepEqual(strictTextProblems(m, "aXcd"), []);
});

Deno.test("text oracle: a head that moved base characters leaves the weak rules", () => {
  // "七丄丂🌀" moved "丂🌀" behind "七丄": a diff says "deleted there, inserted here",
  // so "丂🌀" may rightly come back as that head's insertion (seed 2921034151).
  const m = { base: "丂🌀七丄", changed: ["七丄丂🌀", "丅"] };
  assert.deepEqual(identifiesCharacters(m), false);
  assert.deepEqual(weakTextProblems(m, "丅丂🌀"), []);
  assert(weakTextProblems(m, "丅x").length > 0);
});
