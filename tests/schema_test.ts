import assert from "node:assert/strict";
import { MemoryStorage, openDatabase, type Schema } from "../mod.ts";

const V1: Schema = {
  ns: "person",
  version: 1,
  fields: { name: { type: "string", required: true } },
};
const V2: Schema = {
  ns: "person",
  version: 2,
  fields: {
    first: { type: "string", required: true },
    last: { type: "string" },
    tags: { type: "set", merge: (_b, ours, theirs) => ours ?? theirs },
  },
  upgrade: (data, from) => {
    assert.equal(from, 1);
    const [first, ...rest] = String(data.name).split(" ");
    return { first, last: rest.join(" ") };
  },
};

Deno.test("old data is upgraded lazily on read and written under the new version", async () => {
  const storage = new MemoryStorage();
  {
    const db = await openDatabase({ storage, schemas: [V1] });
    await db.open("/person/p");
    db.create("/person/p/ada", "person", { name: "Ada Lovelace" });
    await db.close();
  }
  const db = await openDatabase({ storage, schemas: [V1, V2] });
  const ada = (await db.load("/person/p/ada"))!;
  assert.equal(ada.schema.version, 2);
  assert.deepEqual(ada.toObject(), { first: "Ada", last: "Lovelace" });
  ada.set("last", "King");
  await db.flush();
  const h = ada.history();
  assert.equal(h[0].schema, "person/1");
  assert.equal(h[1].schema, "person/2");
  assert.equal(
    h[1].kind,
    "full",
    "a new schema version always starts with a full snapshot",
  );
  await db.close();
});

Deno.test("an item of an unregistered schema is listed and readable raw; its fields are a clear error", async () => {
  const storage = new MemoryStorage();
  {
    const db = await openDatabase({ storage, schemas: [V1, V2] });
    await db.open("/person/p");
    db.create("/person/p/x", "person", { first: "X" });
    db.create("/person/p/y", "person/1", { name: "Y Z" });
    await db.close();
  }
  for (const schemas of [[V1], []]) {
    const db = await openDatabase({ storage, schemas });
    await db.open("/person/p");
    assert.deepEqual(db.keys("/person/p"), ["x", "y"]);
    assert.equal(db.count("/person/p"), 2);
    const x = db.item("/person/p/x")!;
    assert.equal(x.isReadable, false);
    assert.equal(x.schemaId, "person/2");
    assert.deepEqual(x.raw().data, { first: "X" });
    assert.throws(
      () => x.get("first"),
      /Cannot read \/person\/p\/x: it is written under schema "person\/2", which is not registered here/,
    );
    assert.equal(db.item("/person/p/y")!.isReadable, schemas.length > 0);
    await db.close();
  }
});

Deno.test("a custom merge decides concurrent set edits", async () => {
  const a = await openDatabase({ memory: true, schemas: [V1, V2] });
  const b = await openDatabase({ memory: true, schemas: [V1, V2] });
  a.trustSession(b.session);
  b.trustSession(a.session);
  await a.open("/person/q");
  await b.open("/person/q");
  a.create("/person/q/z", "person", { first: "Z", tags: new Set(["base"]) });
  const move = async (from: typeof a, to: typeof a) => {
    const r = from.repository("/person/q");
    await r.flush();
    await to.repository("/person/q").ingest(
      r.commitIds().map((id) => r.commitRecord(id)!),
    );
  };
  await move(a, b);
  a.item("/person/q/z")!.set("tags", new Set(["from-a"]));
  b.item("/person/q/z")!.set("tags", new Set(["from-b"]));
  await move(a, b);
  await move(b, a);
  const ta = a.item("/person/q/z")!.get("tags") as Set<string>;
  const tb = b.item("/person/q/z")!.get("tags") as Set<string>;
  assert.deepEqual(ta, tb);
  assert.equal(
    ta.size,
    1,
    "custom merge keeps one side, unlike the built-in union",
  );
  await a.close();
  await b.close();
});
