/**
 * Repository logs hold no file descriptor while idle: 10,000 open repositories are
 * created, written, flushed, read, closed and reopened (concurrently) by a process
 * limited to 1,024 descriptors (`ulimit -n 1024`). Without the handle pool the child
 * runs out of descriptors after about 1,000 repositories.
 */

import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

const fixture = new URL("./fixtures/many_repos.ts", import.meta.url).pathname;
const REPOSITORIES = 10_000;
const DESCRIPTOR_LIMIT = 1024;

Deno.test(`${REPOSITORIES} open repositories under a limit of ${DESCRIPTOR_LIMIT} descriptors`, async () => {
  await using dir = await tempDir();
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${DESCRIPTOR_LIMIT} && exec ${quote(Deno.execPath())} run -A ${
        quote(fixture)
      } ${quote(dir.path)} ${REPOSITORIES}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `the child failed:\n${stderr.slice(-2000)}`);
  const result = JSON.parse(stdout.trim().split("\n").pop()!);
  assert.equal(result.repositories, REPOSITORIES);
  assert.equal(result.descriptorLimit, DESCRIPTOR_LIMIT, "the limit is seen");
  assert.equal(result.maxOpenFiles, DESCRIPTOR_LIMIT / 4, "a quarter of it");
  console.log(
    `peak descriptors: ${result.peakDescriptors} (pool of ${result.maxOpenFiles})`,
  );
  assert.ok(result.peakDescriptors < DESCRIPTOR_LIMIT);
  const files = [...Deno.readDirSync(dir.path)].filter((e) =>
    e.name.endsWith(".capra")
  );
  assert.equal(files.length, REPOSITORIES, "one file per repository");
});
