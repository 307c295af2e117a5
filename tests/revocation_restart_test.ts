/**
 * A revocation survives a restart from the first request on: the restarted server loads
 * `/sys/sessions` before it judges any signed request, HTTP or WebSocket, so a revoked
 * session is refused even when nothing else touched the session service yet.
 */

import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { clientDb, secureServer } from "./_sync_server.ts";
import { statusOf } from "./_attack.ts";
import { tempDir } from "./_helpers.ts";

const BASE = "http://capra.test";
const SHARED = "/all/shared";

Deno.test("a session revoked before a restart is refused by the restarted server's first request", async () => {
  await using dir = await tempDir();
  let server = await secureServer({ dir: dir.path });
  const root = server.root;
  const db = await clientDb();
  let current = server;
  const session = await ServerSession.create(db, BASE, {
    fetch: (url, init) => current.fetch(url, init),
  });
  const path = `/v1/sessions/${session.record.id}`;
  const revoked = await server.app.request(path, {
    method: "DELETE",
    headers: await session.sign("DELETE", path, new Uint8Array(0)),
  });
  assert.equal(revoked.status, 200, await revoked.text());
  await server.db.close();

  current = server = await secureServer({ dir: dir.path, root });
  const body = encodeSyncMessage({ repo: SHARED as never });
  const sync = await server.app.request(`/v1/sync${SHARED}`, {
    method: "POST",
    headers: await session.sign("POST", `/v1/sync${SHARED}`, body),
    body: body as Uint8Array<ArrayBuffer>,
  });
  assert.deepEqual(await statusOf(sync), {
    status: 401,
    code: "session_revoked",
  });
  await db.close();
  await server.db.close();
});
