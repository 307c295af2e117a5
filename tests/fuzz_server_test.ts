/** Fuzz: at least 10,000 random inputs per endpoint; never a 5xx, nothing stored. */
import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { encodeWsFrame } from "../lib/sync/ws_protocol.ts";
import { Rng, testSeed } from "./_helpers.ts";
import { clientDb, secureServer } from "./_sync_server.ts";

const INPUTS_PER_ENDPOINT = 10_000;
const REPO = "/all/fuzz";

function randomBytes(rng: Rng, max: number): Uint8Array {
  const out = new Uint8Array(rng.int(max));
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

/** Random bytes, or a valid message with a few bytes flipped. */
function fuzzBody(rng: Rng, valid: Uint8Array): Uint8Array {
  if (rng.bool(0.5)) return randomBytes(rng, 200);
  const b = valid.slice();
  for (let k = 0; k <= rng.int(4); k++) b[rng.int(b.length)] = rng.int(256);
  return b;
}

Deno.test("fuzz every HTTP endpoint and the WebSocket frames (seeded)", async () => {
  const seed = testSeed("server fuzz");
  const rng = new Rng(seed);
  const server = await secureServer();
  const db = await clientDb();
  const session = await ServerSession.create(db, "http://capra.test", {
    fetch: server.fetch,
  });
  const statuses = new Map<number, number>();
  const check = async (res: Response, what: string) => {
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${what}: ${res.status} (seed ${seed})`);
    await res.body?.cancel();
  };
  const valid = encodeSyncMessage({ repo: REPO as never });
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    const body = fuzzBody(rng, valid);
    // Unsigned, and signed by a valid session (the body is what is fuzzed).
    await check(
      await server.app.request(`/v1/sync${REPO}`, {
        method: "POST",
        body: body as Uint8Array<ArrayBuffer>,
      }),
      "unsigned sync",
    );
    await check(
      await server.app.request(`/v1/sync${REPO}`, {
        method: "POST",
        headers: await session.sign("POST", `/v1/sync${REPO}`, body),
        body: body as Uint8Array<ArrayBuffer>,
      }),
      "signed sync",
    );
    const json = rng.bool(0.5)
      ? JSON.stringify({
        publicKey: new TextDecoder().decode(randomBytes(rng, 60)),
      })
      : new TextDecoder().decode(randomBytes(rng, 100));
    await check(
      await server.app.request("/v1/sessions", { method: "POST", body: json }),
      "sessions",
    );
    const id = encodeURIComponent(
      new TextDecoder().decode(randomBytes(rng, 30)),
    );
    await check(
      await server.app.request(`/v1/sessions/${id}`, { method: "DELETE" }),
      "delete session",
    );
  }
  // WebSocket frames: each fake socket gets a random (or mutated) frame before or
  // after a valid hello; the hub must answer with an error or ignore, never crash.
  const hello = encodeWsFrame({
    t: "hello",
    fields: await session.sign("GET", "/v1/ws", new Uint8Array(0)),
  });
  let closed = 0;
  for (let i = 0; i < INPUTS_PER_ENDPOINT; i++) {
    const sent: Uint8Array[] = [];
    const done = Promise.withResolvers<void>();
    const socket = {
      readyState: 1,
      bufferedAmount: 0,
      binaryType: "arraybuffer",
      send: (b: Uint8Array) => void sent.push(b),
      close: () => {
        closed++;
        done.resolve();
      },
    } as unknown as WebSocket;
    server.hub!.attach(socket);
    const frame = rng.bool(0.3)
      ? encodeWsFrame({ t: "req", id: rng.int(9), msg: fuzzBody(rng, valid) })
      : fuzzBody(rng, hello);
    socket.onmessage!(
      new MessageEvent("message", { data: frame.slice().buffer }),
    );
    // Either refused (closed) or answered/ignored: let the hub's queue run.
    await Promise.race([
      done.promise,
      new Promise((r) => setTimeout(r, 0)),
    ]);
    socket.onclose!(new CloseEvent("close"));
  }
  assert.ok(closed > INPUTS_PER_ENDPOINT / 2, `${closed} refused`);
  assert.equal((await server.db.open(REPO)).count(), 0);
  assert.equal(server.hub!.connected, 0);
  // Still serving.
  const health = await server.app.request("/healthz");
  assert.equal(health.status, 200);
  await health.body?.cancel();
  console.log("statuses", Object.fromEntries(statuses));
  for (const d of [db, server.db]) await d.close();
});
