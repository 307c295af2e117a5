/**
 * Prints `N passed, N failed` from a Deno JUnit report; exits 1 when the report is
 * missing or records a failure. Used by .ci/run.
 *
 * @module
 */

const path = Deno.args[0] ?? ".test-report.xml";
let xml: string;
try {
  xml = await Deno.readTextFile(path);
} catch {
  console.log("0 passed, 1 failed");
  console.error(
    `No JUnit report at ${path}: the test command failed before running tests`,
  );
  Deno.exit(1);
}
let passed = 0, failed = 0, skipped = 0;
for (
  const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)
) {
  const body = m[2] ?? "";
  if (/<(failure|error)\b/.test(body)) failed++;
  else if (/<skipped\b/.test(body)) skipped++;
  else passed++;
}
// Skipped tests are told on stderr, so stdout keeps the exact `N passed, N failed`.
if (skipped) console.error(`${skipped} skipped (see the test output for why)`);
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0 || passed === 0) Deno.exit(1);
