import assert from "node:assert/strict";
import { openDatabase } from "../mod.ts";
import { createApp } from "../server/app.ts";
import { tempDir, TODO } from "./_helpers.ts";

Deno.test("GET /healthz, item view and repository listing", async () => {
  const db = await openDatabase({ memory: true, schemas: [TODO] });
  await db.open("/todo/s");
  db.create("/todo/s/b", "todo", { text: "b", n: 2 });
  db.create("/todo/s/a", "todo", { text: "a" });
  const app = createApp({ db });
  const health = await app.request("/healthz");
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
  const list = await app.request("/v1/repos/todo/s");
  assert.deepEqual(await list.json(), {
    repo: "/todo/s",
    count: 2,
    keys: ["a", "b"],
  });
  const item = await (await app.request("/v1/items/todo/s/b")).json();
  assert.equal(item.path, "/todo/s/b");
  assert.equal(item.schema, "todo/1");
  assert.deepEqual(item.data, { text: "b", done: false, n: 2 });
  const missing = await app.request("/v1/items/todo/s/zzz");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, "not_found");
  const bad = await app.request("/v1/items/todo/S!/x");
  assert.equal(bad.status, 400);
  const body = await bad.json();
  assert.equal(body.code, "bad_request");
  assert.match(body.message, /Invalid path/);
  assert.equal((await app.request("/nope")).status, 404);
  await db.close();
});

Deno.test("`deno task start` entry serves a data directory over HTTP", async () => {
  await using dir = await tempDir();
  // The root key goes next to the data directory, so keep both inside the temp dir.
  const data = `${dir.path}/data`;
  {
    const db = await openDatabase({ dir: data, schemas: [TODO] });
    await db.open("/todo/cli");
    db.create("/todo/cli/x", "todo", { text: "from disk" });
    await db.close();
  }
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "serve", "--dir", data, "--port", "0"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let out = "";
    const deadline = Date.now() + 20_000;
    while (!/http:\/\/[\d.]+:\d+/.test(out) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const url = out.match(/http:\/\/[\d.]+:\d+/)![0];
    assert.match(
      url,
      /^http:\/\/127\.0\.0\.1:/,
      "listens on 127.0.0.1 by default",
    );
    const res = await fetch(`${url}/v1/repos/todo/cli`);
    assert.deepEqual(await res.json(), {
      repo: "/todo/cli",
      count: 1,
      keys: ["x"],
    });
    reader.releaseLock();
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    assert.equal(status.code, 0, "graceful shutdown on SIGTERM");
  }
  const key = await Deno.stat(`${dir.path}/capra-root.key`);
  assert.equal(key.mode! & 0o777, 0o600, "root key beside the data, mode 0600");
});

Deno.test("bad CLI arguments exit with code 2 and a clear message", async () => {
  const main = new URL("../server/main.ts", import.meta.url).pathname;
  for (
    const args of [
      ["serve", "--port", "http"],
      ["serve", "--bogus"],
      ["frobnicate"],
      ["serve", "--retain", "soon"],
      ["serve", "--retain", "2h"], // shorter than the 24 h session lifetime
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), /capra: /);
  }
});

Deno.test("reading a repository that does not exist creates nothing on disk", async () => {
  await using dir = await tempDir();
  const db = await openDatabase({ dir: dir.path, schemas: [TODO] });
  const app = createApp({ db });
  const res = await app.request("/v1/repos/todo/ghost");
  assert.deepEqual(await res.json(), {
    repo: "/todo/ghost",
    count: 0,
    keys: [],
  });
  assert.equal((await app.request("/v1/items/todo/ghost/x")).status, 404);
  assert.deepEqual(await db.listRepositories(), []);
  await db.close();
  const files = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assert.deepEqual(files, ["session-key.meta"]);
});
