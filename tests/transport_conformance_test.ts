/**
 * One acceptance suite for every sync transport: in-memory pair, signed HTTP rounds
 * (in-process) and WebSocket (real server on 127.0.0.1).
 */
import assert from "node:assert/strict";
import { type Database, ServerSession, SyncClient } from "../mod.ts";
import type { SyncHooks, SyncTransport } from "../lib/sync/sync_round.ts";
import { answerSyncBytes } from "../lib/sync/sync_round.ts";
import { snapshot, tempDir } from "./_helpers.ts";
import { clientDb, listen, secureServer } from "./_sync_server.ts";
import { addUser, bearerAuthenticator } from "../server/users.ts";

const REPO = "/all/conf";

/** A way for a client database to reach `server`. */
interface Link {
  readonly server: Database;
  connect(db: Database): Promise<{
    transport: SyncTransport;
    hooks?: SyncHooks;
    close(): void;
  }>;
  close(): Promise<void>;
}

async function memoryLink(): Promise<Link> {
  const server = await clientDb();
  const all: Database[] = [server];
  return {
    server,
    connect: (db) => {
      for (const other of all) {
        other.trustSession(db.session);
        db.trustSession(other.session);
      }
      all.push(db);
      return Promise.resolve({
        transport: {
          request: (bytes) => answerSyncBytes((r) => server.open(r), bytes),
        },
        close: () => {},
      });
    },
    close: () => server.close(),
  };
}

async function httpLink(): Promise<Link> {
  const s = await secureServer();
  return {
    server: s.db,
    connect: async (db) => {
      const session = await ServerSession.create(db, "http://capra.test", {
        fetch: s.fetch,
      });
      return {
        transport: session.httpTransport(REPO),
        hooks: session.hooks,
        close: () => {},
      };
    },
    close: () => s.db.close(),
  };
}

async function wsLink(): Promise<Link> {
  const s = await secureServer();
  const net = await listen(s);
  return {
    server: s.db,
    connect: async (db) => {
      const client = await SyncClient.connect(db, net.url, { repos: [REPO] });
      await client.connection.ready();
      return {
        transport: client.connection.transport(),
        hooks: client.session.hooks,
        close: () => client.close(),
      };
    },
    close: async () => {
      await net.close();
      await s.db.close();
    },
  };
}

for (
  const [name, make] of [
    ["in-memory", memoryLink],
    ["HTTP", httpLink],
    ["WebSocket", wsLink],
  ] as const
) {
  Deno.test(`transport conformance (${name}): concurrent edits converge, in-sync is one round`, async () => {
    const link = await make();
    const a = await clientDb(), b = await clientDb();
    const la = await link.connect(a), lb = await link.connect(b);
    const sync = (db: Database, l: typeof la) =>
      db.syncWith(REPO, l.transport, l.hooks);
    try {
      await a.open(REPO);
      await b.open(REPO);
      for (let i = 0; i < 20; i++) a.create(`${REPO}/k${i}`, "all", { n: i });
      await sync(a, la);
      await sync(b, lb);
      assert.equal(b.count(REPO), 20);
      a.item(`${REPO}/k1`)!.update({ s: "a", body: "x" });
      b.item(`${REPO}/k1`)!.update({ n: 100, body: "y" });
      await sync(a, la);
      await sync(b, lb);
      await sync(a, la);
      assert.equal(
        snapshot(a.item(`${REPO}/k1`)!),
        snapshot(b.item(`${REPO}/k1`)!),
      );
      await link.server.open(REPO);
      assert.equal(
        snapshot(a.item(`${REPO}/k1`)!),
        snapshot(link.server.item(`${REPO}/k1`)!),
      );
      const again = await sync(a, la);
      assert.equal(again.rounds, 1);
      assert.ok(again.bytesSent + again.bytesReceived < 1024);
    } finally {
      la.close();
      lb.close();
      for (const d of [a, b]) await d.close();
      await link.close();
    }
  });
}

Deno.test("bearer tokens from `capra user add` bind sessions to users; unknown tokens get 401", async () => {
  await using dir = await tempDir();
  const token = await addUser(dir.path, "carol");
  const stored = await Deno.readTextFile(`${dir.path}/capra-users.json`);
  assert.ok(!stored.includes(token), "token stored hashed");
  const s = await secureServer({ authenticate: bearerAuthenticator(dir.path) });
  const db = await clientDb();
  const session = await ServerSession.create(db, "http://capra.test", {
    fetch: s.fetch,
    token,
  });
  assert.equal(session.record.userId, "carol");
  await assert.rejects(
    ServerSession.create(db, "http://capra.test", {
      fetch: s.fetch,
      token: "not-a-real-token",
    }),
    /Unknown bearer token/,
  );
  // The key belongs to carol now: it is never re-issued without her credentials.
  await assert.rejects(
    ServerSession.create(db, "http://capra.test", { fetch: s.fetch }),
    /belongs to user "carol"/,
  );
  const other = await clientDb();
  const anon = await ServerSession.create(other, "http://capra.test", {
    fetch: s.fetch,
  });
  assert.equal(anon.record.userId, undefined);
  for (const d of [db, other, s.db]) await d.close();
});
