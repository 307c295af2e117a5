/**
 * The user system over the HTTP routes (in-process): sign-up and sign-in with a password,
 * devices bound at sign-in (listed, renewed without credentials, revoked, signed out
 * everywhere), private `/user/<name>` repositories, shared repositories and their
 * members, admins, and invites used once.
 */
import assert from "node:assert/strict";
import { type Database, ServerSession } from "../mod.ts";
import { BASE, codeOf, signedIn, userServer } from "./_users.ts";

const PASSWORD = "correct horse battery";

async function sync(c: { db: Database; session: ServerSession }, repo: string) {
  await c.db.open(repo);
  return await c.db.syncWith(
    repo,
    c.session.httpTransport(repo),
    c.session.hooks,
  );
}

Deno.test("users: sign up, sign in on a second device, devices listed, renewal without credentials", async () => {
  const server = await userServer();
  const a1 = await signedIn(server, {
    method: "sign-up",
    name: "alice",
    password: PASSWORD,
  }, "laptop");
  assert.equal(a1.session.userId, "alice");
  const a2 = await signedIn(server, {
    method: "password",
    name: "alice",
    password: PASSWORD,
  }, "phone");
  assert.equal(a2.session.userId, "alice");
  const devices = await a1.account.devices();
  assert.deepEqual(devices.map((d) => d.name).sort(), ["laptop", "phone"]);
  assert.equal(devices.find((d) => d.current)?.name, "laptop");
  const me = await a2.account.me();
  assert.equal(me.user?.name, "alice");
  assert.equal(me.device?.name, "phone");
  // The device key renews its session alone (no credentials travel).
  const before = a2.session.record.expiresAt!;
  await new Promise((r) => setTimeout(r, 5));
  await a2.session.renew();
  assert.equal(a2.session.userId, "alice");
  assert.ok(a2.session.record.expiresAt! >= before);
  // Private repository: alice's devices see each other's items; nobody else does.
  await a1.db.open("/user/alice");
  a1.db.create("/user/alice/x", "all", { s: "mine" });
  await sync(a1, "/user/alice");
  await sync(a2, "/user/alice");
  assert.equal(a2.db.item("/user/alice/x")?.get("s"), "mine");
  const bob = await signedIn(server, {
    method: "sign-up",
    name: "bob",
    password: PASSWORD,
  });
  assert.equal(await codeOf(sync(bob, "/user/alice")), "forbidden");
  for (const d of [a1.db, a2.db, bob.db, server.db]) await d.close();
});

Deno.test("users: a wrong password and an unknown name get the same error; a taken name is refused", async () => {
  const server = await userServer();
  await signedIn(server, {
    method: "sign-up",
    name: "carol",
    password: PASSWORD,
  });
  const wrong = await codeOf(
    signedIn(server, {
      method: "password",
      name: "carol",
      password: "nope-nope",
    }),
  );
  const unknown = await codeOf(
    signedIn(server, {
      method: "password",
      name: "nobody",
      password: "nope-nope",
    }),
  );
  assert.equal(wrong, "bad_credentials");
  assert.equal(unknown, "bad_credentials");
  assert.equal(
    await codeOf(
      signedIn(server, {
        method: "sign-up",
        name: "carol",
        password: PASSWORD,
      }),
    ),
    "name_taken",
  );
  await server.db.close();
});

Deno.test("users: a revoked device loses access at its next request; sign out everywhere", async () => {
  const server = await userServer();
  const d1 = await signedIn(server, {
    method: "sign-up",
    name: "dan",
    password: PASSWORD,
  }, "one");
  const d2 = await signedIn(server, {
    method: "password",
    name: "dan",
    password: PASSWORD,
  }, "two");
  const d3 = await signedIn(server, {
    method: "password",
    name: "dan",
    password: PASSWORD,
  }, "three");
  await sync(d2, "/user/dan");
  const two = (await d1.account.devices()).find((d) => d.name === "two")!;
  await d1.account.revokeDevice(two.id);
  assert.equal(await codeOf(sync(d2, "/user/dan")), "session_revoked");
  assert.equal(await codeOf(d2.session.renew()), "session_revoked");
  assert.deepEqual(
    (await d1.account.devices()).map((d) => d.name).sort(),
    ["one", "three"],
  );
  assert.equal(await d3.account.signOut({ everywhere: true }), 2);
  assert.equal(await codeOf(sync(d1, "/user/dan")), "session_revoked");
  assert.equal(await codeOf(sync(d3, "/user/dan")), "session_revoked");
  // Signing in again takes a new key: the old one stays revoked.
  assert.equal(
    await codeOf(ServerSession.create(d1.db, BASE, {
      fetch: server.fetch,
      signIn: { method: "password", name: "dan", password: PASSWORD },
    })),
    "session_revoked",
  );
  for (const d of [d1.db, d2.db, d3.db, server.db]) await d.close();
});

Deno.test("users: members of a shared list are added and removed by the owner", async () => {
  const server = await userServer();
  const owner = await signedIn(server, {
    method: "sign-up",
    name: "erin",
    password: PASSWORD,
  });
  const friend = await signedIn(server, {
    method: "sign-up",
    name: "fred",
    password: PASSWORD,
  });
  const repo = "/list/groceries";
  // Nobody owns it yet: refused for everyone but the root.
  assert.equal(await codeOf(sync(owner, repo)), "forbidden");
  assert.equal((await owner.account.claim(repo)).owner, "erin");
  assert.equal(await codeOf(friend.account.claim(repo)), "already_owned");
  owner.db.create(`${repo}/milk`, "all", { s: "milk" });
  await sync(owner, repo);
  assert.equal(await codeOf(sync(friend, repo)), "forbidden");
  assert.equal(
    await codeOf(friend.account.addMember(repo, "fred")),
    "forbidden",
  );
  assert.deepEqual((await owner.account.addMember(repo, "fred")).members, [
    "fred",
  ]);
  await sync(friend, repo);
  assert.equal(friend.db.item(`${repo}/milk`)?.get("s"), "milk");
  assert.deepEqual(
    (await friend.account.sharedRepositories()).map((m) => m.repo),
    [repo],
  );
  friend.db.create(`${repo}/eggs`, "all", { s: "eggs" });
  await sync(friend, repo);
  await sync(owner, repo);
  assert.equal(owner.db.item(`${repo}/eggs`)?.get("s"), "eggs");
  await owner.account.removeMember(repo, "fred");
  assert.equal(await codeOf(sync(friend, repo)), "forbidden");
  assert.equal(
    await codeOf(owner.account.addMember(repo, "ghost")),
    "no_such_user",
  );
  for (const d of [owner.db, friend.db, server.db]) await d.close();
});

Deno.test("users: invites are used once; closed sign-up refuses without one", async () => {
  const server = await userServer({ signUp: "invite" });
  assert.equal(
    await codeOf(
      signedIn(server, { method: "sign-up", name: "gina", password: PASSWORD }),
    ),
    "sign_up_closed",
  );
  const invite = await server.users!.invites.create("gina", "admin");
  const first = await signedIn(server, {
    method: "sign-up",
    invite: invite.token,
    password: PASSWORD,
  });
  assert.equal(first.session.userId, "gina");
  assert.equal((await first.account.me()).user?.role, "admin");
  assert.equal(
    await codeOf(signedIn(server, {
      method: "sign-up",
      invite: invite.token,
      password: PASSWORD,
    })),
    "invite_used",
  );
  await server.db.close();
});
