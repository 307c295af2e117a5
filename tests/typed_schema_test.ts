/**
 * Typed schemas. This file is also the type test: `deno task test` type-checks tests/,
 * and every `@ts-expect-error` line below must be a compile error (an unused directive
 * fails the check), while the lines without one must compile. At run time the same
 * wrong calls are refused by the database's own checks.
 */

import assert from "node:assert/strict";
import {
  defineSchema,
  type FieldsOf,
  type Item,
  openDatabase,
  orderField,
  type SetElement,
} from "../mod.ts";

const todo = defineSchema(
  {
    ns: "todo",
    version: 1,
    fields: {
      text: { type: "string", required: true },
      done: { type: "boolean", default: false },
      due: { type: "date" },
      tags: { type: "set" },
      order: orderField(),
    },
  } as const,
);

const note = defineSchema(
  {
    ns: "note",
    version: 1,
    fields: { title: { type: "string", required: true } },
  } as const,
);

Deno.test("typed schemas: reads, writes, creates and queries are typed", async () => {
  const db = await openDatabase({ memory: true, schemas: [todo, note] });
  try {
    await db.open("/todo/t");
    const item = db.create("/todo/t/a", todo, { text: "milk" });

    // Reads: a default or a required field is never undefined.
    const done: boolean = item.get("done");
    const text: string = item.get("text");
    const due: Date | undefined = item.get("due");
    const tags: ReadonlySet<SetElement> | undefined = item.get("tags");
    assert.deepEqual([done, text, due, tags], [
      false,
      "milk",
      undefined,
      undefined,
    ]);
    // @ts-expect-error: done is a boolean, not a string
    const wrong: string = item.get("done");
    assert.equal(typeof wrong, "boolean");
    // @ts-expect-error: no such field
    assert.equal(item.get("colour"), undefined);
    // @ts-expect-error: due may be undefined
    const sure: Date = item.get("due");
    assert.equal(sure, undefined);

    // Writes: the field's type; a set also takes an array; optional fields clear.
    item.set("done", true);
    item.set("tags", ["shop"]);
    item.update({ text: "oat milk", due: new Date(0), tags: undefined });
    assert.throws(() => {
      // @ts-expect-error: done takes a boolean
      item.set("done", "yes");
    }, TypeError);
    assert.throws(() => {
      // @ts-expect-error: a required field cannot be removed
      item.update({ text: undefined });
    }, TypeError);
    assert.equal(item.get("text"), "oat milk");

    // Creates: required fields must be given, unknown ones are refused.
    assert.throws(() => {
      // @ts-expect-error: text is required
      db.create("/todo/t/b", todo, { done: true });
    }, TypeError);
    assert.throws(() => {
      // @ts-expect-error: colour is not a field of todo
      db.create("/todo/t/c", todo, { text: "x", colour: "red" });
    }, TypeError);
    assert.throws(() => {
      // @ts-expect-error: text is a string
      db.create("/todo/t/d", todo, { text: 5 });
    }, TypeError);

    // Queries over a defined schema hand typed items to predicates and keys.
    db.create("/todo/t/e", todo, { text: "eggs", done: true });
    const open = db.query({
      source: "/todo/t",
      schema: todo,
      predicate: (i) => i.get("done") === false,
      sortBy: (i) => i.get("text"),
    });
    await open.ready;
    const first: string | undefined = open.results[0]?.get("text");
    assert.equal(first, undefined, "a is done, e is done: none open");
    const all = db.query({
      source: "/todo/t",
      schema: todo,
      // @ts-expect-error: done is a boolean: comparing it to a string is an error
      predicate: (i) => i.get("done") === "no",
    });
    await all.ready;
    assert.equal(all.count, 0);
    open.close();
    all.close();

    // Untyped access stays open-ended; a schema argument types it.
    const loose = db.item("/todo/t/a")!;
    const anyValue = loose.get("whatever"); // FieldValue | undefined
    assert.equal(anyValue, undefined);
    const typed = db.item("/todo/t/a", todo)!;
    const t: FieldsOf<typeof todo>["text"] = typed.get("text");
    assert.equal(t, "oat milk");
    assert.throws(
      () => db.item("/todo/t/a", note),
      (e) => e instanceof TypeError && /not "note"/.test(e.message),
    );
    const asItem: Item = typed; // a typed item is an Item
    assert.equal(asItem.path, "/todo/t/a");
  } finally {
    await db.close();
  }
});
