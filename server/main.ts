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
import { createApp } from "./app.ts";
import { COMMANDS, runCommand } from "./cli/commands.ts";
import denoJson from "../deno.json" with { type: "json" };

const USAGE = `capra ${denoJson.version}: local-first database server

Usage:
  capra serve [--dir DIR] [--port PORT] [--host HOST]
  capra verify DIR [REPO]           check checksums, commit ids and signatures
  capra stats DIR [--json]          items, commits, bytes and time span per repository
  capra export DIR REPO [--commits] JSON lines of item values (or commits) to stdout
  capra import DIR REPO FILE        ingest an \`export --commits\` file (- for stdin)
  capra backup DIR DEST             consistent copy, also while a server runs

Options of serve:
  --dir   data directory (default ./data, or $CAPRA_DIR)
  --port  TCP port (default 8787, or $CAPRA_PORT; 0 picks a free one)
  --host  interface to listen on (default 127.0.0.1)
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
  const db = await openDatabase({ dir });
  for (const r of db.recoveries) {
    console.error(`capra: repaired ${r.repo}: cut ${r.cutBytes} bytes`);
  }
  const app = createApp({ db, version: denoJson.version });
  const ac = new AbortController();
  const server = Deno.serve({
    hostname,
    port,
    signal: ac.signal,
    onListen: ({ hostname, port }) => {
      console.log(`capra: serving ${dir} on http://${hostname}:${port}/`);
    },
  }, app.fetch);
  const stop = async () => {
    ac.abort();
    await server.finished;
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
