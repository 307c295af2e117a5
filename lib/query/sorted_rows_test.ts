import assert from "node:assert/strict";
import type { Item } from "../core/item.ts";
import type { ItemPath } from "../path.ts";
import { SortedRows } from "./sorted_rows.ts";

const fake = (path: string) => ({ path: path as ItemPath }) as Item;

Deno.test("sorted rows: binary insert/remove, ties by path, copy on write", () => {
  const rows = new SortedRows(true);
  rows.insert(fake("/t/r/b"), 1);
  rows.insert(fake("/t/r/a"), 1);
  rows.insert(fake("/t/r/c"), 5);
  const snapshot = rows.items();
  assert.deepEqual(snapshot.map((i) => i.path), ["/t/r/c", "/t/r/a", "/t/r/b"]);
  assert.equal(rows.remove("/t/r/a" as ItemPath), 1);
  assert.equal(rows.remove("/t/r/zz" as ItemPath), -1);
  assert.equal(snapshot.length, 3, "a handed-out array never changes");
  assert.deepEqual(rows.items().map((i) => i.path), ["/t/r/c", "/t/r/b"]);
  assert.equal(rows.indexOf("/t/r/b" as ItemPath), 1);
});

Deno.test("sorted rows: runs sort and merge", () => {
  const rows = new SortedRows(false);
  const run = (keys: number[]) =>
    rows.sortRun({
      items: keys.map((k) => fake(`/t/r/k${k}`)),
      keys,
      paths: keys.map((k) => `/t/r/k${k}` as ItemPath),
    });
  const merged = rows.mergeRuns(run([5, 1, 3]), run([4, 2, 6, 0]));
  assert.deepEqual(merged.keys, [0, 1, 2, 3, 4, 5, 6]);
  rows.reset(merged);
  assert.equal(rows.size, 7);
  assert.ok(rows.has("/t/r/k4" as ItemPath));
});
