/**
 * Passkey ceremonies without a browser (a software authenticator, tests/_soft_authenticator.ts):
 * sign-up and sign-in on a second device, a challenge used once, and, in a cluster, the
 * options given by one server and the answer taken by another holding the same root key
 * (a load balancer without sticky sessions); a tampered challenge id or a server with
 * another root key refuses it.
 */
import assert from "node:assert/strict";
import { type Database, ServerSession } from "../mod.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";
import { BASE, codeOf } from "./_users.ts";
import {
  type CeremonyOptions,
  SoftAuthenticator,
} from "./_soft_authenticator.ts";
import type { SigningKey } from "../lib/crypto/keys.ts";

function server(root?: SigningKey): Promise<TestServer> {
  return secureServer({
    ...(root ? { root } : {}),
    users: { signUp: "open", scryptLog2N: 10 },
  });
}

async function passkeyOptions(
  s: TestServer,
  body: Record<string, unknown>,
): Promise<{ challengeId: string; options: CeremonyOptions }> {
  const r = await s.app.request(`${BASE}/v1/auth/passkey/options`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return await r.json();
}

/** Signs `db` up as `name` on `answerTo`, with options asked from `askOf`. */
async function signUp(
  askOf: TestServer,
  answerTo: TestServer,
  db: Database,
  auth: SoftAuthenticator,
  name: string,
) {
  const { challengeId, options } = await passkeyOptions(askOf, {
    purpose: "sign-up",
    publicKey: encodeBase64Url(db.session.publicKey),
    name,
  });
  const response = await auth.register(options, BASE);
  const signIn = {
    method: "sign-up" as const,
    name,
    passkey: { challengeId, response },
  };
  return {
    signIn,
    session: () =>
      ServerSession.create(db, BASE, { fetch: answerTo.fetch, signIn }),
  };
}

async function signIn(
  askOf: TestServer,
  answerTo: TestServer,
  db: Database,
  auth: SoftAuthenticator,
) {
  const { challengeId, options } = await passkeyOptions(askOf, {
    purpose: "sign-in",
    publicKey: encodeBase64Url(db.session.publicKey),
  });
  const response = await auth.authenticate(options, BASE);
  return () =>
    ServerSession.create(db, BASE, {
      fetch: answerTo.fetch,
      signIn: { method: "passkey", challengeId, response },
    });
}

Deno.test("passkeys: sign-up, then sign-in on a second device; a challenge is used once", async () => {
  const s = await server();
  const auth = await SoftAuthenticator.create();
  const phone = await clientDb();
  const laptop = await clientDb();
  try {
    const up = await signUp(s, s, phone, auth, "alice");
    assert.equal((await up.session()).userId, "alice");
    assert.deepEqual(
      [...(await s.users!.users.get("alice"))!.passkeys.keys()],
      [encodeBase64Url(auth.credentialId)],
    );
    const login = await signIn(s, s, laptop, auth);
    assert.equal((await login()).userId, "alice");
    assert.equal(await codeOf(login()), "bad_challenge", "used once");
    // A wrong passkey (another authenticator's) fails like an unknown user.
    const other = await SoftAuthenticator.create();
    assert.equal(
      await codeOf((await signIn(s, s, laptop, other))()),
      "bad_credentials",
    );
  } finally {
    await phone.close();
    await laptop.close();
    await s.db.close();
  }
});

Deno.test("passkeys in a cluster: options from one server, the answer to another with the same root key", async () => {
  const { key: root } = await generateSigningKey();
  const a = await server(root);
  const b = await server(root);
  const stranger = await server();
  const auth = await SoftAuthenticator.create();
  const phone = await clientDb();
  const laptop = await clientDb();
  try {
    // Another root key cannot read the seal.
    const foreign = await signUp(a, stranger, phone, auth, "alice");
    assert.equal(await codeOf(foreign.session()), "bad_challenge");
    // A tampered challenge (another device key sealed in it) is refused.
    const tampered = await signUp(a, b, phone, auth, "alice");
    const [payload, seal] = tampered.signIn.passkey.challengeId.split(".");
    const json = JSON.parse(
      new TextDecoder().decode(
        Uint8Array.from(
          atob(payload.replace(/-/g, "+").replace(/_/g, "/")),
          (c) => c.charCodeAt(0),
        ),
      ),
    );
    json.expiresAt += 3_600_000;
    tampered.signIn.passkey.challengeId = `${
      encodeBase64Url(new TextEncoder().encode(JSON.stringify(json)))
    }.${seal}`;
    assert.equal(await codeOf(tampered.session()), "bad_challenge");
    // The genuine one: asked of a, answered to b.
    const up = await signUp(a, b, phone, auth, "alice");
    assert.equal((await up.session()).userId, "alice");
    assert.equal(await codeOf(up.session()), "bad_challenge", "used once");
    // Sign-in asked of a, answered to b (which holds the passkey).
    assert.equal((await (await signIn(a, b, laptop, auth))()).userId, "alice");
  } finally {
    await phone.close();
    await laptop.close();
    for (const s of [a, b, stranger]) await s.db.close();
  }
});
