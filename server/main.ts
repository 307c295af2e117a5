/**
 * The `capra` command line. `capra serve [--dir ./data] [--port 8787] [--host 127.0.0.1]`
 * opens the data directory and serves the HTTP API; `verify`, `stats`, `export`,
 * `import` and `backup` are the operator commands (server/cli/). This is the only module
 * that reads flags and the environment and calls `Deno.serve`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { openDatabase } from "../mod.ts";
import { createServer } from "./app.ts";
import { defaultRootKeyPath, loadOrCreateRootKey } from "./root_key.ts";
import { bearerAuthenticator } from "./users.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { COMMANDS, runCommand } from "./cli/commands.ts";
import { parseDuration } from "./cli/compact.ts";
import { GcScheduler } from "./gc_scheduler.ts";
import denoJson from "../deno.json" with { type: "json" };

const USAGE = `capra ${denoJson.version}: local-first database server

Usage:
  capra serve [--dir DIR] [--port PORT] [--host HOST] [--root-key PATH] [--retain 30d]
  capra user add DIR NAME           issue a bearer token for NAME (printed once)
  capra compact DIR --retain 1d     collect history older than the retention
  capra verify DIR [REPO]           check checksums, commit ids and signatures
  capra stats DIR [--json]          items, commits, bytes and time span per repository
  capra export DIR REPO [--commits] JSON lines of item values (or commits) to stdout
  capra import DIR REPO FILE        ingest an \`export --commits\` file (- for stdin)
  capra backup DIR DEST             consistent copy, also while a server runs

Options of serve:
  --dir   data directory (default ./data, or $CAPRA_DIR)
  --port  TCP port (default 8787, or $CAPRA_PORT; 0 picks a free one)
  --host  interface to listen on (default 127.0.0.1)
  --root-key  root key file, kept apart from the data (default capra-root.key in
          the data directory's parent, or $CAPRA_ROOT_KEY; created 0600 if absent)
  --session-ttl  session lifetime in seconds (default 86400)
  --retain  history retention: every 6 hours, commits older than this are collected
          (default 30d; at least the session lifetime; "off" keeps all history)
  --help  show this help (every command has --help)

verify, stats, export and backup only read DIR: they work while a server holds it.
Exit codes: 0 ok, 1 failure (damage found, commits refused), 2 bad arguments.
`;

function fail(message: string): never {
  console.error(`capra: ${message}\n\n${USAGE}`);
  Deno.exit(2);
}

async function serve(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dir: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "root-key": { type: "string" },
        "session-ttl": { type: "string" },
        retain: { type: "string" },
        help: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const dir = values.dir ?? Deno.env.get("CAPRA_DIR") ?? "./data";
  const portText = values.port ?? Deno.env.get("CAPRA_PORT") ?? "8787";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`invalid --port "${portText}": expected 0-65535`);
  }
  const hostname = values.host ?? "127.0.0.1";
  const ttlText = values["session-ttl"] ?? "86400";
  const ttlSeconds = Number(ttlText);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    fail(`invalid --session-ttl "${ttlText}": expected seconds > 0`);
  }
  const retainText = values.retain ?? "30d";
  let retainMs: number | null = null;
  if (retainText !== "off") {
    try {
      retainMs = parseDuration(retainText);
    } catch (e) {
      fail((e as Error).message);
    }
    if (retainMs < ttlSeconds * 1000) {
      fail(
        `invalid --retain "${retainText}": must be at least the session lifetime (${ttlSeconds} s)`,
      );
    }
  }
  await Deno.mkdir(dir, { recursive: true });
  const rootPath = values["root-key"] ?? Deno.env.get("CAPRA_ROOT_KEY") ??
    defaultRootKeyPath(dir);
  const { key: root, created } = await loadOrCreateRootKey(rootPath);
  if (created) console.error(`capra: created root key ${rootPath}`);
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    dir,
    signer: root,
    trust,
    minRetentionMs: ttlSeconds * 1000,
  });
  for (const r of db.recoveries) {
    console.error(`capra: repaired ${r.repo}: cut ${r.cutBytes} bytes`);
  }
  const { app, hub } = createServer({
    db,
    version: denoJson.version,
    security: {
      root,
      trust,
      authenticate: bearerAuthenticator(dir),
      sessionTtlMs: ttlSeconds * 1000,
      ...(retainMs !== null ? { retentionMs: retainMs } : {}),
    },
  });
  const gc = retainMs === null ? null : new GcScheduler(db, { retainMs });
  gc?.start();
  const ac = new AbortController();
  const server = Deno.serve({
    hostname,
    port,
    signal: ac.signal,
    onListen: ({ hostname, port }) => {
      console.log(`capra: serving ${dir} on http://${hostname}:${port}/`);
    },
  }, app.fetch);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // Stop accepting, close sockets (clients reconcile on reconnect), flush, close.
    ac.abort();
    hub?.closeAll();
    await gc?.stop();
    await server.finished;
    await db.flush();
    await db.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  switch (command) {
    case "serve":
      await serve(rest);
      break;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      break;
    default:
      if (command in COMMANDS) {
        const code = await runCommand(command, rest);
        if (code !== 0) Deno.exit(code);
      } else fail(`unknown command "${command}"`);
  }
}
