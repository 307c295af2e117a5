/**
 * A SyncClient never keeps a process alive once it is closed or its `sync()` failed:
 * a child process (tests/fixtures/sync_client_exit.ts) that never closes its database
 * must end on its own. And bad connection arguments (a placeholder token, a bad URL)
 * get a clear TypeError before anything is sent.
 */

import assert from "node:assert/strict";
import { listen, secureServer } from "./_sync_server.ts";
import { openDatabase, SyncClient } from "../mod.ts";

/** Longest time a child may take to end by itself. */
const EXIT_TIMEOUT_MS = 20_000;

async function runChild(
  mode: "close" | "fail",
  onLine: (line: string) => Promise<void> | void,
): Promise<{ code: number; lines: string[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./fixtures/sync_client_exit.ts", import.meta.url).pathname,
      mode,
      serverUrl,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* ended meanwhile */ }
  }, EXIT_TIMEOUT_MS);
  try {
    let rest = "";
    for await (
      const text of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        await onLine(line);
      }
    }
    const status = await child.status;
    return { code: status.signal ? -1 : status.code, lines };
  } finally {
    clearTimeout(timer);
  }
}

let serverUrl = "";

Deno.test("a SyncClient's process ends after close(), database still open", async () => {
  const server = await secureServer();
  const l = await listen(server);
  serverUrl = l.url;
  try {
    const { code, lines } = await runChild("close", () => {});
    assert.deepEqual(lines, ["synced", "closed"]);
    assert.equal(code, 0, "the child ended by itself");
  } finally {
    await l.close();
    await server.db.close();
  }
});

Deno.test("a SyncClient's process ends after a failed sync()", async () => {
  const server = await secureServer();
  const l = await listen(server);
  serverUrl = l.url;
  let stopped = false;
  try {
    const { code, lines } = await runChild("fail", async (line) => {
      if (line === "synced" && !stopped) {
        stopped = true;
        await l.close(); // the server goes away: the next sync cannot connect
      }
    });
    assert.deepEqual(lines, ["synced", "sync failed: unreachable"]);
    assert.equal(code, 0, "the child ended by itself");
  } finally {
    if (!stopped) await l.close();
    await server.db.close();
  }
});

Deno.test("SyncClient.connect: a placeholder token or a bad URL is a clear TypeError", async () => {
  const db = await openDatabase({ memory: true });
  let requests = 0;
  const fetch = () => {
    requests++;
    return Promise.reject(new Error("must not be called"));
  };
  try {
    await assert.rejects(
      SyncClient.connect(db, "http://127.0.0.1:8787", { token: "…", fetch }),
      (e) =>
        e instanceof TypeError && /Invalid token "…"/.test(e.message) &&
        /capra user add/.test(e.message),
    );
    await assert.rejects(
      SyncClient.connect(db, "http://127.0.0.1:8787", { token: "a b", fetch }),
      TypeError,
    );
    await assert.rejects(
      SyncClient.connect(db, "127.0.0.1:8787", { fetch }),
      (e) => e instanceof TypeError && /Invalid server URL/.test(e.message),
    );
    assert.equal(requests, 0, "nothing was sent");
  } finally {
    await db.close();
  }
});
