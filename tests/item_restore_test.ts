/**
 * `item.valueAt(commit)` and `item.restore(commit)`: the values an earlier commit left,
 * and bringing them back as a new commit on top of the current heads (also the losing
 * side of concurrent edits, and a deleted item), checked against what was written.
 */

import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";

const SCHEMA = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    note: { type: "string" },
    tags: { type: "set" },
  },
} as const;

Deno.test("valueAt gives each commit's values; restore writes one as a new commit", async () => {
  const db = await openDatabase({ memory: true, schemas: [SCHEMA] });
  try {
    await db.open("/todo/r");
    const it = db.create("/todo/r/a", "todo", { text: "milk" });
    await db.flush();
    it.update({ text: "oat milk", note: "2 l", tags: ["shop"] });
    await db.flush();
    it.set("done", true);
    await db.flush();
    const [first, second, third] = it.history().map((c) => c.id);
    assert.deepEqual(it.valueAt(first), {
      data: { text: "milk", done: false },
      deleted: false,
    });
    assert.deepEqual(it.valueAt(second)?.data, {
      text: "oat milk",
      done: false,
      note: "2 l",
      tags: new Set(["shop"]),
    });
    assert.equal(it.valueAt("nope"), undefined);

    it.restore(first);
    await db.flush();
    assert.deepEqual(it.toObject(), { text: "milk", done: false });
    const h = it.history();
    assert.equal(h.length, 4, "restore is a new commit");
    assert.deepEqual(h[3].parents, [third], "on top of the current head");
    assert.deepEqual(it.valueAt(second)?.data.note, "2 l", "history kept");

    it.delete();
    await db.flush();
    it.restore(second);
    assert.equal(it.isDeleted, false, "a deleted item comes back");
    assert.equal(it.get("note"), "2 l");
    assert.throws(
      () => it.restore("not-a-commit"),
      (e) => e instanceof RangeError && /not in its history/.test(e.message),
    );
  } finally {
    await db.close();
  }
});

Deno.test("restore brings back the losing side of concurrent edits", async () => {
  const [a, b] = [
    await openDatabase({ memory: true, schemas: [SCHEMA] }),
    await openDatabase({ memory: true, schemas: [SCHEMA] }),
  ];
  try {
    a.trustSession(b.session);
    b.trustSession(a.session);
    for (const db of [a, b]) await db.open("/todo/r");
    a.create("/todo/r/x", "todo", { text: "start" });
    await a.flush();
    const copy = async (from: typeof a, to: typeof a) => {
      const repo = from.repository("/todo/r");
      await to.repository("/todo/r").ingest(
        repo.commitIds().map((id) => repo.commitRecord(id)!).filter(Boolean),
      );
    };
    await copy(a, b);
    a.item("/todo/r/x")!.set("text", "from a");
    b.item("/todo/r/x")!.set("text", "from b");
    await a.flush();
    await b.flush();
    await copy(b, a);
    const it = a.item("/todo/r/x")!;
    const heads = it.history().filter((c) => c.head);
    assert.equal(heads.length, 2, "two concurrent heads");
    const won = it.get("text");
    const loser = heads.find((h) => it.valueAt(h.id)?.data.text !== won)!;
    it.restore(loser.id);
    await a.flush();
    assert.notEqual(it.get("text"), won);
    assert.equal(it.get("text"), it.valueAt(loser.id)?.data.text);
    assert.equal(it.history().filter((c) => c.head).length, 1, "merged");
  } finally {
    await a.close();
    await b.close();
  }
});
