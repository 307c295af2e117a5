/**
 * `capra user invite|list|remove|add` as subprocesses: on a stopped directory and through
 * a running `capra serve`; a legacy `capra-users.json` migrated on open; `capra backup`
 * carrying the users (a restored backup keeps every token and invite).
 */
import assert from "node:assert/strict";
import { openDatabase, ServerSession } from "../mod.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { createServer } from "../server/app.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";
import { tokenHash } from "../server/users.ts";
import { clientDb, GENEROUS_ISSUANCE } from "./_sync_server.ts";
import { tempDir } from "./_helpers.ts";
import { capra, CAPRA_MAIN } from "./_cli.ts";

/** A server on `dir` in this process, to check what the commands wrote. */
async function serverOn(dir: string, rootKey: string) {
  const { key: root } = await loadOrCreateRootKey(rootKey);
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({ dir, signer: root, trust });
  const server = createServer({
    db,
    limits: GENEROUS_ISSUANCE,
    security: { root, trust, users: { signUp: "invite", scryptLog2N: 10 } },
  });
  const fetch = async (url: string, init: RequestInit) =>
    await server.app.request(url, init);
  return { db, server, fetch };
}

Deno.test("capra user: migrate, invite, add, list, remove; backup keeps users", async () => {
  await using dir = await tempDir();
  await using dest = await tempDir();
  const data = `${dir.path}/data`;
  const key = `${dir.path}/root.key`;
  await Deno.mkdir(data);
  await Deno.writeTextFile(
    `${data}/capra-users.json`,
    JSON.stringify({ olduser: tokenHash("legacy-token-0123456789") }),
  );
  const list = await capra("user", "list", data, "--root-key", key, "--json");
  assert.equal(list.code, 0, list.stderr);
  const listed = JSON.parse(list.stdout);
  assert.deepEqual(
    listed.users.map((
      u: { name: string; tokens: number },
    ) => [u.name, u.tokens]),
    [["olduser", 1]],
  );
  await Deno.stat(`${data}/capra-users.json.migrated`);
  await assert.rejects(() => Deno.stat(`${data}/capra-users.json`));

  const invite = await capra(
    "user",
    "invite",
    data,
    "bob",
    "--admin",
    "--root-key",
    key,
    "--url",
    "http://localhost:9999/",
  );
  assert.equal(invite.code, 0, invite.stderr);
  const token = /^http:\/\/localhost:9999\/#invite=([A-Za-z0-9_-]{43})\n$/
    .exec(invite.stdout)?.[1];
  assert.ok(token, invite.stdout);
  assert.match(invite.stderr, /invite for bob \(admin\)/);
  const add = await capra("user", "add", data, "carol", "--root-key", key);
  assert.equal(add.code, 0, add.stderr);
  const carolToken = add.stdout.trim();
  const text = await capra("user", "list", data, "--root-key", key);
  assert.match(text.stdout, /^carol\tuser\t1 token\(s\)\t0 device\(s\)$/m);
  assert.match(text.stdout, /^bob\tadmin\tinvited \(pending\)$/m);

  // A backup carries /sys/users and /sys/invites: the restored copy keeps them.
  const backup = await capra("backup", data, `${dest.path}/copy`);
  assert.equal(backup.code, 0, backup.stderr);
  const restored = await serverOn(`${dest.path}/copy`, key);
  const c1 = await clientDb();
  const s1 = await ServerSession.create(c1, "http://capra.test", {
    fetch: restored.fetch,
    token: "legacy-token-0123456789",
  });
  assert.equal(s1.userId, "olduser");
  const c2 = await clientDb();
  const s2 = await ServerSession.create(c2, "http://capra.test", {
    fetch: restored.fetch,
    signIn: { method: "sign-up", invite: token, password: "bob-password" },
  });
  assert.equal(s2.userId, "bob");
  const c3 = await clientDb();
  assert.equal(
    (await ServerSession.create(c3, "http://capra.test", {
      fetch: restored.fetch,
      token: carolToken,
    })).userId,
    "carol",
  );
  for (const d of [c1, c2, c3, restored.db]) await d.close();

  const remove = await capra(
    "user",
    "remove",
    data,
    "carol",
    "--root-key",
    key,
  );
  assert.equal(remove.code, 0, remove.stderr);
  const again = await capra("user", "remove", data, "carol", "--root-key", key);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no user "carol"/);
  const after = await serverOn(data, key);
  const c4 = await clientDb();
  await assert.rejects(
    () =>
      ServerSession.create(c4, "http://capra.test", {
        fetch: after.fetch,
        token: carolToken,
      }),
    /Unknown bearer token/,
  );
  for (const d of [c4, after.db]) await d.close();

  const bad = await capra(
    "user",
    "invite",
    data,
    "Bad Name",
    "--root-key",
    key,
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid user name "Bad Name"/);
  const verb = await capra("user", "frob", data, "--root-key", key);
  assert.equal(verb.code, 2);
  assert.match(verb.stderr, /unknown action "frob"/);
});

Deno.test("capra user: while capra serve holds the directory, the commands go through it", async () => {
  await using dir = await tempDir();
  const data = `${dir.path}/data`;
  const key = `${dir.path}/root.key`;
  await Deno.mkdir(data);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CAPRA_MAIN,
      "serve",
      "--dir",
      data,
      "--port",
      "0",
      "--root-key",
      key,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!/serving .* on (http:\/\/[^/\s]+)\//.test(seen)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited: ${seen}`);
      seen += value;
    }
    const url = /serving .* on (http:\/\/[^/\s]+)\//.exec(seen)![1];
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    const invite = await capra(
      "user",
      "invite",
      data,
      "dave",
      "--root-key",
      key,
    );
    assert.equal(invite.code, 0, invite.stderr);
    const token = /#invite=([A-Za-z0-9_-]{43})$/m.exec(invite.stdout)?.[1];
    assert.ok(token, invite.stdout);
    // The server itself holds the invite: sign up through it.
    const db = await clientDb();
    const session = await ServerSession.create(db, url, {
      signIn: { method: "sign-up", invite: token, password: "dave-password" },
    });
    assert.equal(session.userId, "dave");
    const list = await capra("user", "list", data, "--root-key", key, "--json");
    assert.equal(list.code, 0, list.stderr);
    const users = JSON.parse(list.stdout).users;
    assert.deepEqual(
      users.map((u: { name: string; devices: number }) => [u.name, u.devices]),
      [["dave", 1]],
    );
    const remove = await capra(
      "user",
      "remove",
      data,
      "dave",
      "--root-key",
      key,
    );
    assert.equal(remove.code, 0, remove.stderr);
    await assert.rejects(() => session.renew(), /revoked/);
    await db.close();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stderr.cancel().catch(() => {});
  }
});
