/**
 * Bad input to every route of the user system gets a clear 4xx error (status, code and
 * a message), and changes nothing: session requests with malformed `signIn`, passkey
 * options, invites, the account routes, the admin routes and the member routes.
 */
import assert from "node:assert/strict";
import { ServerSession } from "../mod.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import { SIGNED_HEADERS } from "../lib/sync/request_signing.ts";
import { clientDb, type TestServer } from "./_sync_server.ts";
import { freshKey } from "./_attack.ts";
import { signSessionRequest } from "../lib/sync/session_request.ts";
import { signedIn, userServer } from "./_users.ts";

const PASSWORD = "correct horse battery";

async function answer(res: Response) {
  const j = await res.json();
  assert.equal(typeof j.message, "string", JSON.stringify(j));
  assert.ok(j.message.length > 10, j.message);
  return { status: res.status, code: j.code as string };
}

/** A signed request of `session` with a JSON (or raw) body. */
async function call(
  server: TestServer,
  session: ServerSession,
  method: string,
  path: string,
  json?: unknown,
  raw?: Uint8Array,
) {
  const body = raw ??
    (json === undefined
      ? new Uint8Array(0)
      : new TextEncoder().encode(JSON.stringify(json)));
  const fields = await session.sign(method, path.split("?")[0], body);
  return await answer(
    await server.app.request(path, {
      method,
      headers: fields,
      ...(body.length ? { body: body as Uint8Array<ArrayBuffer> } : {}),
    }),
  );
}

/** A session request for a fresh key with `extra` body fields. */
async function sessionWith(server: TestServer, extra: Record<string, unknown>) {
  const key = await freshKey();
  const { body, headers } = await signSessionRequest(key, { extra });
  return await answer(
    await server.app.request("/v1/sessions", {
      method: "POST",
      headers,
      body: body as Uint8Array<ArrayBuffer>,
    }),
  );
}

Deno.test("user system: malformed sign-ins are refused with clear errors", async () => {
  const server = await userServer();
  await signedIn(server, {
    method: "sign-up",
    name: "alice",
    password: PASSWORD,
  });
  const cases: [Record<string, unknown>, number, string][] = [
    [{ signIn: "alice" }, 400, "bad_request"],
    [{ signIn: [] }, 400, "bad_request"],
    [{ signIn: { method: "magic" } }, 400, "bad_request"],
    [
      { signIn: { method: "password", password: PASSWORD } },
      400,
      "bad_request",
    ],
    [{ signIn: { method: "password", name: "alice" } }, 400, "bad_request"],
    [
      { signIn: { method: "password", name: 7, password: "x" } },
      400,
      "bad_request",
    ],
    [
      { signIn: { method: "password", name: "ALICE!", password: "x" } },
      401,
      "bad_credentials",
    ],
    [
      { signIn: { method: "passkey", challengeId: "nope", response: {} } },
      401,
      "bad_challenge",
    ],
    [{ signIn: { method: "sign-up", name: "bob" } }, 400, "bad_request"],
    [
      { signIn: { method: "sign-up", name: "bob", password: "short" } },
      400,
      "bad_request",
    ],
    [
      { signIn: { method: "sign-up", name: "bob", password: 12345678 } },
      400,
      "bad_request",
    ],
    [
      { signIn: { method: "sign-up", name: "Bob Smith", password: PASSWORD } },
      400,
      "bad_request",
    ],
    [
      { signIn: { method: "sign-up", name: "alice", password: PASSWORD } },
      409,
      "name_taken",
    ],
    [
      {
        signIn: {
          method: "sign-up",
          invite: "x".repeat(43),
          password: PASSWORD,
        },
      },
      404,
      "bad_invite",
    ],
    [
      { signIn: { method: "sign-up", name: "bob", passkey: "yes" } },
      400,
      "bad_request",
    ],
    [
      {
        signIn: {
          method: "sign-up",
          name: "bob",
          passkey: { challengeId: "x", response: {} },
        },
      },
      401,
      "bad_challenge",
    ],
  ];
  for (const [extra, status, code] of cases) {
    assert.deepEqual(
      await sessionWith(server, extra),
      { status, code },
      JSON.stringify(extra),
    );
  }
  // Nothing was created by any of them.
  assert.deepEqual(
    (await server.users!.users.list()).map((u) => u.name),
    ["alice"],
  );
  await server.db.close();
});

Deno.test("user system: passkey options and invites refuse bad input", async () => {
  const server = await userServer();
  const key = await freshKey();
  const publicKey = encodeBase64Url(key.publicKey);
  const post = async (body: string) =>
    await answer(
      await server.app.request("/v1/auth/passkey/options", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
  const cases: [string, number, string][] = [
    ["not json", 400, "bad_request"],
    ["[1]", 400, "bad_request"],
    [JSON.stringify({ purpose: "sign-in" }), 400, "bad_request"],
    [
      JSON.stringify({ purpose: "sign-in", publicKey: "!!" }),
      400,
      "bad_request",
    ],
    [
      JSON.stringify({ purpose: "sign-in", publicKey: "AAAA" }),
      400,
      "bad_request",
    ],
    [JSON.stringify({ purpose: "login", publicKey }), 400, "bad_request"],
    [JSON.stringify({ purpose: "sign-up", publicKey }), 400, "bad_request"],
    [
      JSON.stringify({ purpose: "sign-up", publicKey, name: "A B" }),
      400,
      "bad_request",
    ],
    [
      JSON.stringify({ purpose: "sign-up", publicKey, invite: "nope" }),
      404,
      "bad_invite",
    ],
    [
      JSON.stringify({ purpose: "sign-in", publicKey, extra: 1 }),
      400,
      "bad_request",
    ],
    ["x".repeat(20_000), 413, "too_large"],
  ];
  for (const [body, status, code] of cases) {
    assert.deepEqual(await post(body), { status, code }, body.slice(0, 80));
  }
  const ok = await server.app.request("/v1/auth/passkey/options", {
    method: "POST",
    headers: { origin: "http://evil.test" },
    body: JSON.stringify({ purpose: "sign-in", publicKey }),
  });
  assert.deepEqual(await answer(ok), { status: 400, code: "bad_origin" });
  assert.deepEqual(
    await answer(await server.app.request("/v1/auth/invites/nope")),
    { status: 404, code: "bad_invite" },
  );
  await server.db.close();
});

Deno.test("user system: account, admin and member routes refuse bad input", async () => {
  const server = await userServer({ admins: ["root-admin"] });
  const alice = await signedIn(server, {
    method: "sign-up",
    name: "alice",
    password: PASSWORD,
  });
  const bob = await signedIn(server, {
    method: "sign-up",
    name: "bob",
    password: PASSWORD,
  });
  const anonDb = await clientDb();
  const anon = await ServerSession.create(anonDb, "http://capra.test", {
    fetch: server.fetch,
  });
  const a = alice.session, b = bob.session;
  const bobDevice = (await bob.account.devices())[0].id;
  const expect = async (
    got: Promise<{ status: number; code: string }>,
    status: number,
    code: string,
    what: string,
  ) => assert.deepEqual(await got, { status, code }, what);
  // Unsigned, and a body that does not match its signed hash.
  await expect(
    answer(await server.app.request("/v1/auth/me")),
    401,
    "unsigned",
    "unsigned me",
  );
  const fields = await a.sign("POST", "/v1/auth/sign-out", new Uint8Array(0));
  await expect(
    answer(
      await server.app.request("/v1/auth/sign-out", {
        method: "POST",
        headers: fields,
        body: '{"everywhere":true}',
      }),
    ),
    401,
    "bad_signature",
    "tampered body",
  );
  const h = { ...fields, [SIGNED_HEADERS.signature]: "A".repeat(86) };
  await expect(
    answer(await server.app.request("/v1/auth/me", { headers: h })),
    401,
    "bad_signature",
    "forged signature",
  );
  await expect(
    call(server, anon, "GET", "/v1/auth/devices"),
    403,
    "not_signed_in",
    "anonymous devices",
  );
  await expect(
    call(server, a, "GET", "/v1/auth/devices?user=bob"),
    403,
    "forbidden",
    "others' devices",
  );
  await expect(
    call(server, a, "DELETE", `/v1/auth/devices/${bobDevice}`),
    403,
    "forbidden",
    "others' device",
  );
  await expect(
    call(server, a, "DELETE", "/v1/auth/devices/nope"),
    404,
    "not_found",
    "unknown device",
  );
  await expect(
    call(server, a, "POST", "/v1/auth/sign-out", { everywhere: "yes" }),
    400,
    "bad_request",
    "everywhere",
  );
  await expect(
    call(server, a, "POST", "/v1/auth/sign-out", { all: true }),
    400,
    "bad_request",
    "unknown key",
  );
  await expect(
    call(server, a, "POST", "/v1/auth/sign-out", { user: "bob" }),
    403,
    "forbidden",
    "sign out bob",
  );
  await expect(
    call(
      server,
      a,
      "POST",
      "/v1/auth/sign-out",
      undefined,
      new TextEncoder().encode("{"),
    ),
    400,
    "bad_request",
    "not json",
  );
  await expect(
    call(server, a, "POST", "/v1/auth/password", { password: "short" }),
    400,
    "bad_request",
    "short password",
  );
  await expect(
    call(server, a, "POST", "/v1/auth/password", { password: 5 }),
    400,
    "bad_request",
    "number password",
  );
  // Admin routes: not for users; bad names, roles and taken names.
  await expect(
    call(server, a, "GET", "/v1/admin/users"),
    403,
    "forbidden",
    "list as user",
  );
  await expect(
    call(server, a, "POST", "/v1/admin/invites", { name: "carol" }),
    403,
    "forbidden",
    "invite as user",
  );
  await expect(
    call(server, a, "DELETE", "/v1/admin/users/bob"),
    403,
    "forbidden",
    "remove as user",
  );
  await expect(
    call(server, anon, "GET", "/v1/admin/users"),
    403,
    "not_signed_in",
    "list as anonymous",
  );
  // The root (what the CLI signs with) may, and still gets clear errors.
  const root = rootSession(server);
  await expect(
    call(server, root, "POST", "/v1/admin/invites", { name: "Carol!" }),
    400,
    "bad_request",
    "bad name",
  );
  await expect(
    call(server, root, "POST", "/v1/admin/invites", {
      name: "carol",
      role: "god",
    }),
    400,
    "bad_request",
    "bad role",
  );
  await expect(
    call(server, root, "POST", "/v1/admin/invites", { name: "bob" }),
    409,
    "name_taken",
    "taken",
  );
  await expect(
    call(server, root, "POST", "/v1/admin/invites", { name: "carol", x: 1 }),
    400,
    "bad_request",
    "unknown key",
  );
  await expect(
    call(server, root, "DELETE", "/v1/admin/users/nobody"),
    404,
    "no_such_user",
    "remove unknown",
  );
  await expect(
    call(server, root, "DELETE", "/v1/admin/users/BAD"),
    400,
    "bad_request",
    "remove bad",
  );
  // Members.
  await expect(
    call(server, a, "PUT", "/v1/members/todo/x"),
    400,
    "not_shared",
    "not shared",
  );
  await expect(
    call(server, a, "PUT", "/v1/members/list/Bad"),
    400,
    "bad_request",
    "bad path",
  );
  await expect(
    call(server, anon, "PUT", "/v1/members/list/x"),
    403,
    "not_signed_in",
    "anonymous claim",
  );
  await expect(
    call(server, a, "GET", "/v1/members/list/x"),
    404,
    "not_found",
    "unowned",
  );
  await alice.account.claim("/list/x");
  await expect(
    call(server, b, "GET", "/v1/members/list/x"),
    404,
    "not_found",
    "not a member",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", {
      add: "bob",
      remove: "bob",
    }),
    400,
    "bad_request",
    "both",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", {}),
    400,
    "bad_request",
    "neither",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", { add: ["bob"] }),
    400,
    "bad_request",
    "array",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", { add: "alice" }),
    400,
    "bad_request",
    "owner",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", { add: "ghost" }),
    404,
    "no_such_user",
    "unknown user",
  );
  await expect(
    call(server, b, "POST", "/v1/members/list/x", { add: "bob" }),
    403,
    "forbidden",
    "not owner",
  );
  await expect(
    call(server, a, "POST", "/v1/members/list/x", { add: "bob", x: 1 }),
    400,
    "bad_request",
    "unknown key",
  );
  // Nothing changed: bob is no member, alice's devices all live.
  assert.deepEqual((await server.users!.members.get("/list/x"))?.members, []);
  assert.equal((await alice.account.devices()).length, 1);
  for (const d of [alice.db, bob.db, anonDb, server.db]) await d.close();
});

/** A session that signs as the server's root (what `capra user` uses). */
function rootSession(server: TestServer): ServerSession {
  return {
    sign: async (method: string, path: string, body: Uint8Array) => {
      const { signRequest } = await import("../lib/sync/request_signing.ts");
      const { encodeSessionRecord } = await import("../testing.ts");
      return await signRequest(
        server.root,
        encodeSessionRecord({
          id: server.root.sessionId,
          publicKey: server.root.publicKey,
        }),
        method,
        path,
        body,
      );
    },
  } as unknown as ServerSession;
}
