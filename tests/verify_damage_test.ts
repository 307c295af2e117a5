/**
 * A repository "file" that is a directory is damage: `capra verify` reports it (exit 1)
 * and the API's error names the repository and the file, with the cause kept.
 */

import assert from "node:assert/strict";
import { openDatabase, StorageError } from "../mod.ts";
import { tempDir, TODO } from "./_helpers.ts";
import { capra } from "./_cli.ts";

Deno.test("verify reports a repository file that is a directory as damage (exit 1)", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/todo.x.capra`);
  const alone = await capra("verify", dir.path);
  assert.equal(alone.code, 1, alone.stdout);
  assert.match(
    alone.stdout,
    /\/todo\/x: .*todo\.x\.capra is a directory, not a repository file/,
  );
  assert.match(
    alone.stdout,
    /verify: FAILED: 1 problem\(s\) in 1 repositories/,
  );

  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  await db.open("/todo/a");
  db.create("/todo/a/k", "todo", { text: "intact" });
  await db.close();
  const all = await capra("verify", dir.path);
  assert.equal(all.code, 1);
  assert.match(all.stdout, /\/todo\/a: records \d+, commits 1, .*bad 0, ok/);
  assert.match(all.stdout, /in 2 repositories/);
  const one = await capra("verify", dir.path, "/todo/x");
  assert.equal(one.code, 1, one.stdout + one.stderr);
  assert.match(one.stdout, /is a directory/);
  assert.doesNotMatch(one.stdout, /\/todo\/a/);
  assert.equal((await capra("verify", dir.path, "/todo/a")).code, 0);
});

Deno.test("opening a repository whose file is a directory names the repository and the file", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/todo.x.capra`);
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  try {
    await assert.rejects(db.open("/todo/x"), (e) => {
      assert.ok(e instanceof StorageError, String(e));
      assert.equal(e.repo, "/todo/x");
      assert.equal(e.path, `${dir.path}/todo.x.capra`);
      assert.equal(e.code, "EISDIR");
      assert.ok(e.cause instanceof Error);
      assert.equal(
        e.message,
        `Cannot open repository /todo/x (file ${dir.path}/todo.x.capra): Is a directory (os error 21): read '${dir.path}/todo.x.capra'`,
      );
      return true;
    });
    await db.open("/todo/a"); // the others still work
    db.create("/todo/a/k", "todo", { text: "fine" });
    await db.flush();
  } finally {
    await db.close();
  }
});
