/**
 * Merges of heads that share newer history than one common ancestor (issue 10, defect
 * 9, found by the model oracle): a criss-cross (two replicas each merged the same
 * concurrent heads and edited on) and three heads of which two share a newer edit. On
 * 572690f the value was a three-way merge over ONE base, the common ancestor of all heads
 * with the greatest (ts, id): shared changes counted as every sharing head's own change,
 * so a stale inherited value beat a later edit, inserted text doubled and a counter's
 * custom merge counted a shared increment twice (every replica computed the same wrong
 * value, so agreement tests could not see it). Now the heads are folded in (ts, id) order,
 * each step over its lowest common ancestors, several of them merged into a virtual base
 * (lib/core/head_merge.ts).
 *
 * The histories below are minimal and deterministic; the expected values follow from
 * the rules of DESIGN.md section 3.
 */
import assert from "node:assert/strict";
import type { Schema } from "../mod.ts";
import { EVERYTHING } from "./_helpers.ts";
import { OracleNet, type Replica, VirtualClock } from "./_replicas.ts";

const REPO = "/doc/bug";
const PATH = `${REPO}/x`;

/** EVERYTHING's fields and a counter. */
const DOC: Schema = {
  ns: "doc",
  version: 1,
  fields: {
    ...EVERYTHING.fields,
    count: {
      type: "number",
      merge:
        ((b: number | undefined, o: number | undefined, t?: number) =>
          (o ?? 0) + (t ?? 0) - (b ?? 0)) as never,
    },
  },
};

async function replicas(n: number) {
  const clock = new VirtualClock();
  const net = await OracleNet.open({
    seed: 1,
    repo: REPO,
    schemas: [DOC],
    schemaOf: () => DOC,
    clock,
    skewsMs: Array(n).fill(0),
  });
  const send = async (a: Replica, b: Replica) => {
    const repo = a.db.repository(REPO);
    await repo.flush();
    const ids = repo.commitIds();
    await net.ingest(b, ids, await net.records(a, ids));
  };
  const edit = (r: Replica, changes: Record<string, unknown>) => {
    clock.advance(10);
    net.write(r, "x", { kind: "update", changes });
  };
  return { net, send, edit };
}

Deno.test({
  name:
    "after a criss-cross merge a later edit wins, text is not doubled, a counter counts once",
  async fn() {
    const { net, send, edit } = await replicas(2);
    const [a, b] = net.replicas;
    try {
      net.write(a, "x", {
        kind: "create",
        schema: "doc",
        data: { s: "r", n: 0, body: "ab", count: 0 },
      });
      await send(a, b);
      edit(a, { s: "1", body: "a1b", count: 1 }); // X1
      edit(b, { n: 2, body: "ab2" }); // X2, concurrent
      await send(a, b);
      await send(b, a); // both hold X1 and X2: { s: "1", n: 2, body: "a1b2", count: 1 }
      edit(a, { s: "a", body: "a1xb2", count: 2 }); // merges X1, X2; edits s, body, count
      edit(b, { n: 3, body: "a1b2y" }); // merges X1, X2 too; edits n, body
      await send(a, b);
      await send(b, a);
      // Since the merged state both started from, a changed s, count and inserted
      // "x"; b changed n and appended "y".
      const want = { s: "a", n: 3, body: "a1xb2y", count: 2 };
      for (const r of [a, b]) {
        const got = r.db.item(PATH)!.toObject();
        assert.deepEqual(
          { s: got.s, n: got.n, body: got.body, count: got.count },
          want,
        );
      }
    } finally {
      await net.close();
    }
  },
});

Deno.test({
  name:
    "of three heads, two share a newer edit: the one that changed it again wins",
  async fn() {
    const { net, send, edit } = await replicas(3);
    const [a, b, d] = net.replicas;
    try {
      net.write(a, "x", { kind: "create", schema: "doc", data: { s: "r" } });
      await send(a, d); // d knows only the creation
      edit(a, { s: "x" });
      await send(a, b); // b knows s = "x"
      edit(a, { s: "a" }); // a changes s again
      edit(b, { n: 1 }); // b leaves s alone
      edit(d, { n: 2 }); // d too
      await send(a, d);
      await send(b, d);
      const item = d.db.item(PATH)!;
      assert.equal(item.heads.length, 3);
      // Only a changed s after "x": its "a" must win over the "x" b inherited.
      assert.deepEqual(
        { s: item.get("s"), n: item.get("n") },
        { s: "a", n: 2 },
      );
    } finally {
      await net.close();
    }
  },
});
