/**
 * Values that cannot be stored are refused at the call, and nothing a write does later can
 * throw asynchronously or wedge the database: lone surrogates (no UTF-8 form) in every
 * place a string goes, values and commits over the size limits, a commit whose build fails
 * anyway, and signing that fails for a while.
 */
import assert from "node:assert/strict";
import {
  type ItemData,
  MAX_COMMIT_RECORD_BYTES,
  MAX_VALUE_BYTES,
  MemoryStorage,
  openDatabase,
  type Schema,
  type SigningKey,
} from "../mod.ts";
import { buildCommit } from "../lib/commit/commit.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { sha256 } from "../lib/crypto/sha256.ts";
import { EVERYTHING } from "./_helpers.ts";

const REPO = "/all/x";

async function setup(options: { signer?: SigningKey } = {}) {
  const storage = new MemoryStorage();
  const errors: unknown[] = [];
  const db = await openDatabase({
    storage,
    schemas: [EVERYTHING],
    onError: (e) => errors.push(e),
    ...options,
  });
  await db.open(REPO);
  db.create(`${REPO}/ok`, "all", { s: "fine", body: "text" });
  await db.flush();
  const bytes = () => storage.bytesOf(REPO as never).length;
  return { storage, db, errors, bytes, before: bytes() };
}

/** Lets every pending microtask and timer run (an async throw would surface here). */
const settle = () => new Promise((r) => setTimeout(r, 10));

Deno.test("a lone surrogate is refused at the call in every field type, naming path, field and index", async () => {
  const { db, errors, bytes, before } = await setup();
  const cases: [string, unknown, RegExp][] = [
    ["s", "a\uD800b", /string "a\\ud800b" has a lone surrogate at index 1/],
    ["body", "xy\uDC00", /lone surrogate at index 2/],
    [
      "tags",
      new Set(["ok", "\uD83D"]),
      /set element .* lone surrogate at index 0/,
    ],
    ["tags", ["x\uDFFFy"], /set element .* at index 1/],
    [
      "attrs",
      new Map([["k\uD800", 1]]),
      /map key .* lone surrogate at index 1/,
    ],
    ["attrs", new Map([["k", "v\uDBFF"]]), /map value at key "k".* at index 1/],
  ];
  for (const [field, value, pattern] of cases) {
    assert.throws(
      () => db.create(`${REPO}/k`, "all", { [field]: value }),
      (e: Error) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, new RegExp(`field "${field}" of ${REPO}/k`));
        assert.match(e.message, pattern);
        return true;
      },
    );
    assert.equal(db.item(`${REPO}/k`), undefined);
  }
  // A pair is fine: only lone halves are refused.
  db.create(`${REPO}/pair`, "all", { s: "\uD83D\uDE00" });
  const ok = db.item(`${REPO}/ok`)!;
  assert.throws(() => ok.set("s", "\uD800"), /"s" of \/all\/x\/ok: .*index 0/);
  // One bad value in an update: nothing of it is written.
  assert.throws(
    () => ok.update({ n: 2, body: "z\uDC00" }),
    /lone surrogate/,
  );
  assert.equal(ok.get("s"), "fine");
  assert.equal(ok.get("n"), undefined);
  // Keys and field names: refused by their own rules.
  assert.throws(
    () => db.create(`${REPO}/\uD800`, "all", {}),
    /Invalid path .* must be 1-64 characters/,
  );
  assert.throws(
    () => db.create(`${REPO}/f`, "all", { ["\uD800"]: 1 }),
    /has no such field/,
  );
  await settle();
  await db.flush();
  assert.equal(db.item(`${REPO}/pair`)!.get("s"), "\uD83D\uDE00");
  assert.deepEqual(db.keys(REPO).sort(), ["ok", "pair"]);
  assert.ok(bytes() > before);
  assert.deepEqual(errors, []);
  await db.close();
});

Deno.test("schema defaults with a lone surrogate are refused at registration and at create", async () => {
  const { db, errors } = await setup();
  assert.throws(
    () =>
      db.registerSchema({
        ns: "d",
        version: 1,
        fields: { s: { type: "string", default: "\uD800" } },
      }),
    /default of field "s": string .* lone surrogate at index 0/,
  );
  db.registerSchema({
    ns: "d",
    version: 2,
    fields: { s: { type: "string", default: () => "x\uDC00" } },
  });
  await db.open("/d/x");
  assert.throws(
    () => db.create("/d/x/k", "d", {}),
    /the default of field "s" of schema "d\/2" is invalid: .*index 1/,
  );
  await settle();
  assert.equal(db.count("/d/x"), 0);
  assert.deepEqual(errors, []);
  await db.close();
});

Deno.test("an upgrade that returns a lone surrogate or a wrong type is refused when read, never later", async () => {
  const storage = new MemoryStorage();
  const V1: Schema = {
    ns: "up",
    version: 1,
    fields: { s: { type: "string" } },
  };
  {
    const db = await openDatabase({ storage, schemas: [V1] });
    await db.open("/up/x");
    db.create("/up/x/a", "up", { s: "a" });
    db.create("/up/x/b", "up", { s: "b" });
    await db.close();
  }
  const errors: unknown[] = [];
  const db = await openDatabase({
    storage,
    onError: (e) => errors.push(e),
    schemas: [V1, {
      ns: "up",
      version: 2,
      fields: { s: { type: "string" }, n: { type: "number" } },
      upgrade: (d): ItemData =>
        d.s === "a" ? { s: "\uD800" } : { s: "b", n: "x" as never },
    }],
  });
  await db.open("/up/x");
  assert.deepEqual(db.keys("/up/x").sort(), ["a", "b"]);
  assert.equal(db.count("/up/x"), 2);
  const a = db.item("/up/x/a")!;
  assert.equal(a.isReadable, false);
  assert.throws(
    () => a.get("s"),
    /Cannot read \/up\/x\/a: upgrading it from "up\/1" failed: .*field "s": string .* lone surrogate at index 0/,
  );
  assert.throws(() => a.set("s", "ok"), /Cannot write \/up\/x\/a/);
  assert.deepEqual(a.raw().data, { s: "a" });
  assert.throws(
    () => db.item("/up/x/b")!.get("s"),
    /invalid field "n": expected number, got string "x"/,
  );
  await settle();
  await db.flush();
  // Reported once per distinct failure through onError.
  assert.equal(errors.length, 2, errors.map(String).join("\n"));
  assert.match(String(errors[0]), /upgrading it from "up\/1" failed/);
  await db.close();
});

/** A commit record like a peer's whose string bytes are replaced after encoding. */
async function forgedRecord(
  signer: SigningKey,
  key: string,
  text: string,
  patch?: (bytes: Uint8Array) => void,
): Promise<Uint8Array> {
  const c = buildCommit({
    key: key as never,
    parents: [],
    session: signer.sessionId,
    ts: Date.now() * 1024,
    schema: "all/1",
    body: { kind: "full", data: { s: text }, deleted: false },
  });
  const bytes = c.bytes.slice();
  patch?.(bytes);
  const id = sha256(bytes);
  const sig = await signer.sign(id);
  const record = new Uint8Array(65 + bytes.length);
  record[0] = 1;
  record.set(sig, 1);
  record.set(bytes, 65);
  return record;
}

Deno.test("a received commit with an encoded lone surrogate is refused with its reason; the rest of the batch is accepted", async () => {
  const { db } = await setup();
  const peer = (await generateSigningKey()).key;
  db.trustSession({ id: peer.sessionId, publicKey: peer.publicKey });
  const good = await forgedRecord(peer, `${REPO}/good`, "fine");
  const bad = await forgedRecord(peer, `${REPO}/bad`, "aXYZb", (b) => {
    // "XYZ" becomes ED A0 80: U+D800 encoded as if it were a character (CESU-8).
    // Found as the string's bytes: a lone 0x58 may also sit in the session id or ts.
    const at = b.findIndex((_, i) =>
      b[i] === 0x58 && b[i + 1] === 0x59 && b[i + 2] === 0x5a &&
      b[i - 1] === 0x61 && b[i + 3] === 0x62
    );
    b.set([0xed, 0xa0, 0x80], at);
  });
  const repo = db.repository(REPO);
  const result = await repo.ingest([bad, good]);
  assert.equal(result.accepted.length, 1);
  assert.equal(result.rejected.length, 1);
  assert.equal(result.rejected[0].index, 0);
  assert.match(
    result.rejected[0].reason,
    /Invalid UTF-8 .*an encoded lone surrogate U\+D800/,
  );
  assert.equal(db.item(`${REPO}/good`)!.get("s"), "fine");
  assert.equal(db.item(`${REPO}/bad`), undefined);
  await db.close();
});

Deno.test("a value over MAX_VALUE_BYTES is refused at the call, naming path, field and size; nothing is written and writes go on", async () => {
  const { storage, db, errors, bytes, before } = await setup();
  const big = "x".repeat(20 * 1024 * 1024);
  assert.throws(
    () => db.create(`${REPO}/big`, "all", { s: big }),
    (e: Error) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(
        e.message,
        /field "s" of \/all\/x\/big: its value takes 20,971,525 bytes encoded, more than MAX_VALUE_BYTES \(1,044,480 bytes\); nothing was written/,
      );
      return true;
    },
  );
  const ok = db.item(`${REPO}/ok`)!;
  assert.throws(() => ok.set("body", big), /MAX_VALUE_BYTES/);
  // Multi-byte characters count as their UTF-8 bytes: 400,000 "é" fit, 600,000 do not.
  assert.throws(
    () => ok.set("tags", new Set(["é".repeat(600_000)])),
    /field "tags" .* 1,200,00\d bytes/,
  );
  ok.set("s", "é".repeat(400_000));
  await settle();
  assert.equal(bytes(), before, "nothing written before the flush");
  db.create(`${REPO}/small`, "all", { s: "small" });
  await db.flush();
  await db.flush();
  assert.deepEqual(errors, []);
  await db.close();
  const again = await openDatabase({ storage, schemas: [EVERYTHING] });
  await again.open(REPO);
  assert.deepEqual(again.keys(REPO).sort(), ["ok", "small"]);
  assert.equal(again.item(`${REPO}/ok`)!.get("s"), "é".repeat(400_000));
  await again.close();
});

Deno.test("a commit over MAX_COMMIT_RECORD_BYTES is refused at the call, naming the largest field; one at the limit is stored and synced", async () => {
  const { db, errors } = await setup();
  const half = "y".repeat(600_000);
  assert.throws(
    () => db.create(`${REPO}/two`, "all", { s: half, body: half }),
    (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(
        e.message,
        /Cannot write \/all\/x\/two: its commit would take 1,200,\d{3} bytes, more than MAX_COMMIT_RECORD_BYTES \(1,048,576 bytes\); the largest field is "(s|body)" \(600,005 bytes\); nothing was written/,
      );
      return true;
    },
  );
  const ok = db.item(`${REPO}/ok`)!;
  ok.set("s", half);
  assert.throws(() => ok.set("body", half), /MAX_COMMIT_RECORD_BYTES/);
  assert.equal(ok.get("body"), "text");
  // A value of exactly MAX_VALUE_BYTES fits one commit record.
  const max = "m".repeat(MAX_VALUE_BYTES - 5);
  const m = db.create(`${REPO}/max`, "all", { body: max });
  await db.flush();
  const repo = db.repository(REPO);
  const record = repo.commitRecord(m.heads[0])!;
  assert.ok(record.length <= MAX_COMMIT_RECORD_BYTES, `${record.length}`);
  // …and a peer takes it through a sync.
  const peer = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  peer.trustSession(db.session);
  await peer.open(REPO);
  const result = await peer.repository(REPO).ingest(
    repo.commitIds().map((id) => repo.commitRecord(id)!),
  );
  assert.deepEqual(result.rejected, []);
  assert.equal(peer.item(`${REPO}/max`)!.get("body"), max);
  assert.deepEqual(errors, []);
  await peer.close();
  await db.close();
});

Deno.test("a received commit record over MAX_COMMIT_RECORD_BYTES is refused alone", async () => {
  const { db } = await setup();
  const peer = (await generateSigningKey()).key;
  db.trustSession({ id: peer.sessionId, publicKey: peer.publicKey });
  const huge = await forgedRecord(peer, `${REPO}/huge`, "h".repeat(1_100_000));
  const good = await forgedRecord(peer, `${REPO}/good`, "fine");
  const result = await db.repository(REPO).ingest([good, huge]);
  assert.equal(result.accepted.length, 1);
  assert.match(
    result.rejected[0].reason,
    /commit record of 1,?1\d{5} bytes exceeds MAX_COMMIT_RECORD_BYTES/,
  );
  await db.close();
});

Deno.test("a commit whose build fails after the call fails alone: reported, its item back to its last commit, later writes and close unaffected", async () => {
  const storage = new MemoryStorage();
  const errors: unknown[] = [];
  // A schema changed after registration (at run time, against its type) is the one way
  // left for a value to pass the call and fail when its commit is built.
  const fragile = {
    ns: "frag",
    version: 1,
    fields: { v: { type: "string" }, w: { type: "string" } },
  } as {
    ns: string;
    version: number;
    fields: Record<string, { type: string }>;
  };
  const db = await openDatabase({
    storage,
    onError: (e) => errors.push(e),
    schemas: [fragile as Schema],
  });
  await db.open("/frag/x");
  const a = db.create("/frag/x/a", "frag", { v: "first" });
  await db.flush();
  const changes: string[] = [];
  a.onChange(() => changes.push(String(a.get("v"))));
  a.set("v", "second");
  const b = db.create("/frag/x/b", "frag", { w: "kept" });
  fragile.fields.v = { type: "date" }; // "second".getTime() throws at commit time
  await settle();
  fragile.fields.v = { type: "string" };
  assert.equal(errors.length, 1);
  assert.match(
    String(errors[0]),
    /Write to \/frag\/x\/a was not committed: .*getTime/,
  );
  assert.equal(a.get("v"), "first", "back to its last commit");
  assert.deepEqual(changes, ["second", "first"]);
  assert.equal(b.get("w"), "kept");
  // The next flush reports the dropped write once; later ones succeed.
  await assert.rejects(db.flush(), /Write to \/frag\/x\/a was not committed/);
  a.set("v", "third");
  await db.flush();
  await db.close();
  const again = await openDatabase({ storage, schemas: [fragile as Schema] });
  await again.open("/frag/x");
  assert.equal(again.item("/frag/x/a")!.get("v"), "third");
  assert.equal(again.item("/frag/x/b")!.get("w"), "kept");
  assert.equal(again.item("/frag/x/a")!.history().length, 2);
  await again.close();
});

Deno.test("commits that cannot be signed for a while stay queued: flush throws, a later flush stores them, close works", async () => {
  const real = (await generateSigningKey()).key;
  let failing = false;
  const signer: SigningKey = {
    publicKey: real.publicKey,
    sessionId: real.sessionId,
    sign: (m) =>
      failing
        ? Promise.reject(new Error("signing device unplugged"))
        : real.sign(m),
  };
  const { storage, db, errors } = await setup({ signer });
  failing = true;
  db.create(`${REPO}/queued`, "all", { s: "q" });
  await assert.rejects(db.flush(), /signing device unplugged.*stay queued/);
  assert.ok(errors.length >= 1);
  assert.equal(db.item(`${REPO}/queued`)!.get("s"), "q", "still readable");
  await assert.rejects(db.flush(), /signing device unplugged/);
  failing = false;
  db.create(`${REPO}/later`, "all", { s: "l" });
  await db.flush();
  await db.close();
  const again = await openDatabase({ storage, schemas: [EVERYTHING], signer });
  await again.open(REPO);
  assert.deepEqual(again.keys(REPO).sort(), ["later", "ok", "queued"]);
  await again.close();
});
