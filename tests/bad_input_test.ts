import assert from "node:assert/strict";
import { MemoryStorage, openDatabase, type Schema } from "../mod.ts";
import { TODO } from "./_helpers.ts";

const LIMITED: Schema = {
  ns: "lim",
  version: 1,
  fields: {
    name: {
      type: "string",
      required: true,
      validate: (v: string) => v.length <= 5 || "too long",
    },
    qty: { type: "number", validate: (v: number) => v >= 0 },
    tags: { type: "set" },
    attrs: { type: "map" },
    when: { type: "date" },
  },
};

async function setup() {
  const storage = new MemoryStorage();
  const db = await openDatabase({ storage, schemas: [TODO, LIMITED] });
  await db.open("/todo/bad");
  await db.open("/lim/bad");
  const ok = db.create("/lim/bad/ok", "lim", { name: "ok" });
  await db.flush();
  const before = storage.bytesOf("/lim/bad" as never).length;
  return { storage, db, ok, before };
}

Deno.test("invalid paths are refused with the path in the message", async () => {
  const { db } = await setup();
  for (
    const bad of [
      "",
      "todo/x",
      "/Todo/x/y",
      "/todo",
      "/todo/x/y/z",
      "/todo/a b/c",
      "/todo//c",
      `/todo/${"a".repeat(65)}`,
    ]
  ) {
    assert.throws(() => db.create(bad, "todo", { text: "t" }), (e: Error) => {
      assert.ok(e instanceof TypeError, `${bad}: ${e}`);
      assert.ok(
        e.message.includes(JSON.stringify(bad).slice(1, -1)) || bad === "",
        e.message,
      );
      return true;
    });
  }
  await assert.rejects(db.open("/todo/bad/item"), /expected "\/type\/repo"/);
  await db.close();
});

Deno.test("unknown and mismatched schemas are refused", async () => {
  const { db, storage } = await setup();
  assert.throws(
    () => db.create("/todo/bad/a", "nope", { text: "t" }),
    /Unknown schema "nope"/,
  );
  assert.throws(
    () => db.create("/todo/bad/a", "todo/9", { text: "t" }),
    /Unknown schema "todo\/9"/,
  );
  assert.throws(
    () => db.create("/todo/bad/a", "todo", { name: "x", text: "t" }),
    /Cannot set field "name" of \/todo\/bad\/a: schema "todo\/1" has no such field/,
  );
  assert.throws(
    () => db.registerSchema({ ns: "Bad NS", version: 1, fields: {} }),
    /Invalid schema ns "Bad NS"/,
  );
  assert.throws(
    () => db.registerSchema({ ns: "x", version: 0, fields: {} }),
    /version must be a positive integer/,
  );
  assert.throws(
    () =>
      db.registerSchema({
        ns: "x",
        version: 1,
        fields: { f: { type: "float" as never } },
      }),
    /field "f" has unknown type "float"/,
  );
  await db.flush();
  assert.equal(
    storage.bytesOf("/todo/bad" as never).length,
    0,
    "nothing written",
  );
  await db.close();
});

Deno.test("wrong field types, missing required fields and validate failures write nothing", async () => {
  const { db, storage, ok, before } = await setup();
  const cases: [() => unknown, RegExp][] = [
    [
      () => db.create("/lim/bad/a", "lim", {}),
      /required field "name" of schema "lim\/1" is missing/,
    ],
    [
      () => db.create("/lim/bad/a", "lim", { name: 5 }),
      /field "name" of \/lim\/bad\/a: expected string, got number 5/,
    ],
    [
      () => db.create("/lim/bad/a", "lim", { name: "toolong" }),
      /value "toolong" refused by validate: too long/,
    ],
    [
      () => ok.set("qty", -1),
      /field "qty" of \/lim\/bad\/ok: value -1 refused by validate/,
    ],
    [() => ok.set("qty", "3"), /expected number, got string "3"/],
    [() => ok.set("qty", NaN), /expected number, got number NaN/],
    [
      () => ok.set("tags", new Set([{}])),
      /set element an object is not a string or finite number/,
    ],
    [
      () => ok.set("attrs", new Map([["k", [1]]])),
      /map value an array at key "k"/,
    ],
    [() => ok.set("when", new Date("nope")), /expected date/],
    [
      () => ok.set("name", undefined),
      /Cannot remove field "name" of \/lim\/bad\/ok: it is required/,
    ],
    [() => ok.update({ qty: 1, name: 42 }), /field "name"/],
    [
      () => db.create("/lim/bad/ok", "lim", { name: "dup" }),
      /Cannot create \/lim\/bad\/ok: it already exists/,
    ],
  ];
  for (const [fn, re] of cases) assert.throws(fn, re);
  assert.equal(
    ok.get("qty"),
    undefined,
    "a refused update changes nothing, not even valid fields",
  );
  assert.deepEqual(db.keys("/lim/bad"), ["ok"]);
  await db.flush();
  assert.equal(
    storage.bytesOf("/lim/bad" as never).length,
    before,
    "nothing written",
  );
  await db.close();
});

Deno.test("writes after close are refused", async () => {
  const { db, ok } = await setup();
  await db.close();
  assert.throws(() => ok.set("name", "x"), /closed/);
  assert.throws(
    () => db.create("/lim/bad/z", "lim", { name: "x" }),
    /Database is closed/,
  );
  await assert.rejects(db.open("/lim/bad"), /Database is closed/);
  await assert.rejects(db.flush(), /Database is closed/);
});

Deno.test("openDatabase without a location is a clear error", async () => {
  await assert.rejects(
    openDatabase({} as never),
    /needs \{ dir \}, \{ memory: true \} or \{ storage \}/,
  );
});
