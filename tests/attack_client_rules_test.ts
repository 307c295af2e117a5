/**
 * Clients check write rules on what servers send (issue 11, finding 10): a server (or
 * whoever wrote into its storage) hands out commits that break the built-in rules or the
 * rules the server published, and the client refuses them instead of storing them.
 */

import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { answerSync } from "../lib/sync/sync_round.ts";
import { compileRules } from "../lib/sync/declared_rules.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";

const BASE = "http://capra.test";
const byName = (req: Request) =>
  req.headers.get("authorization")?.replace(/^Bearer /, "") ?? null;

async function replica(server: TestServer, token?: string) {
  const db = await clientDb();
  const session = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
    ...(token ? { token } : {}),
  });
  return { db, session };
}

/** Writes `key` as `who` and stores it on the server without any rule (a bad server). */
async function smuggle(
  server: TestServer,
  who: Awaited<ReturnType<typeof replica>>,
  repo: string,
  key: string,
) {
  const r = await who.db.open(repo);
  who.db.create(`${repo}/${key}`, "all", { n: 666 });
  await who.db.flush();
  const id = who.db.history(`${repo}/${key}`)[0].id;
  const { accepted } = await answerSync(
    await server.db.open(repo),
    {
      repo: r.path,
      commits: [r.commitRecord(id)!],
      sessions: [who.session.encoded],
    },
    { admitSessions: async (s) => void await server.trust.admit(s) },
  );
  assert.equal(accepted.length, 1, "the server stored it without checking");
}

Deno.test("finding 10: a client refuses received commits that break the built-in rules", async () => {
  const server = await secureServer({ authenticate: byName });
  const alice = await replica(server, "alice");
  const bob = await replica(server, "bob");
  // Bob's commit in alice's repository, and a non-root commit in /sys.
  await smuggle(server, bob, "/user/alice", "evil");
  await alice.db.open("/user/alice");
  alice.db.create("/user/alice/mine", "all", { n: 1 });
  const stats = await alice.db.syncWith(
    "/user/alice",
    alice.session.httpTransport("/user/alice"),
    alice.session.hooks,
  );
  assert.equal(stats.rejected.length, 1);
  assert.match(stats.rejected[0].reason, /may not write \/user\/alice\/evil/);
  assert.equal(alice.db.item("/user/alice/evil"), undefined);
  assert.deepEqual(alice.db.keys("/user/alice"), ["mine"]);
  for (const d of [alice.db, bob.db, server.db]) await d.close();
});

Deno.test("finding 10: a client applies the write rules the server published", async () => {
  const server = await secureServer({
    rules: [
      ...compileRules([{ pattern: "/ro/*", read: "session", write: "root" }]),
      // A function rule: only the server can evaluate it; clients accept what it matches.
      { pattern: "/fn/*", rule: (r) => r.op === "read" || r.isRoot },
    ],
  });
  const reader = await replica(server);
  const bob = await replica(server);
  assert.deepEqual(reader.session.rules.published(), [
    { pattern: "/ro/*", write: "root" },
    { pattern: "/fn/*", write: "server" },
  ]);
  await smuggle(server, bob, "/ro/news", "fake");
  await server.db.open("/ro/news");
  server.db.create("/ro/news/real", "all", { n: 1 }); // by the root: allowed
  await reader.db.open("/ro/news");
  const stats = await reader.db.syncWith(
    "/ro/news",
    reader.session.httpTransport("/ro/news"),
    reader.session.hooks,
  );
  assert.equal(stats.rejected.length, 1);
  assert.deepEqual(reader.db.keys("/ro/news"), ["real"]);
  // Commits the server's function rule would judge are accepted by the client.
  await smuggle(server, bob, "/fn/x", "judged-by-server");
  await reader.db.open("/fn/x");
  const fn = await reader.db.syncWith(
    "/fn/x",
    reader.session.httpTransport("/fn/x"),
    reader.session.hooks,
  );
  assert.deepEqual(fn.rejected, []);
  for (const d of [reader.db, bob.db, server.db]) await d.close();
});
