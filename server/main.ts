/**
 * The `capra` command line. `capra serve [--dir ./data] [--port 8787] [--host 127.0.0.1]`
 * opens the data directory and serves the HTTP API; `verify`, `stats`, `export`,
 * `import` and `backup` are the operator commands (server/cli/). This is the only module
 * that reads flags and the environment and calls `Deno.serve`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Database, FileStorage, openDatabase } from "../mod.ts";
import type { SigningKey } from "../lib/crypto/keys.ts";
import { createServer } from "./app.ts";
import { defaultRootKeyPath, loadOrCreateRootKey } from "./root_key.ts";
import { USERS_FILE } from "./users.ts";
import { join } from "node:path";
import { writeServingFile } from "./cli/serving_file.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { COMMANDS, runCommand } from "./cli/commands.ts";
import { parseDuration } from "./cli/compact.ts";
import { FIRST_GC_DELAY_MS, GcScheduler } from "./gc_scheduler.ts";
import { ClusterMember } from "./cluster/member.ts";
import {
  checkServerId,
  checkStreamName,
  type ClusterOptions,
  DEFAULT_REPLICAS,
  DEFAULT_STREAM,
  parseNatsUrls,
  parseReplicas,
} from "./cluster/options.ts";
import { loadPolicy } from "./policy/parse_policy.ts";
import { applyPolicy, defaultPolicy } from "./policy/apply_policy.ts";
import { parseListenAddress, serveGuarded } from "./serve.ts";
import denoJson from "../deno.json" with { type: "json" };

const USAGE = `capra ${denoJson.version}: local-first database server

Usage:
  capra serve [--dir DIR] [--port PORT] [--host HOST] [--root-key PATH] [--retain 30d]
              [--config FILE] [--metrics-listen HOST:PORT] [--metrics-token TOKEN]
              [--nats URL,URL,... [--nats-creds FILE] [--nats-stream NAME]
               [--nats-replicas N] [--server-id NAME]]
              [--public-url URL]
  capra user invite DIR NAME [--admin]  a one-time sign-up link for NAME
  capra user list DIR               users, roles, devices, pending invites
  capra user remove DIR NAME        remove a user (every device signed out)
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
  --session-ttl  session lifetime in seconds (default 86400, or the config's)
  --config  policy file (JSON: schemas, rules, public repositories, sessions, quotas,
          limits; see the README's Security section). Default: the demo policy
  --metrics-listen  serve GET /metrics on this separate address (keep it private)
  --metrics-token  serve GET /metrics on the main port to "Authorization: Bearer TOKEN"
          (or $CAPRA_METRICS_TOKEN); without either, the main port has no /metrics
  --public-url  the URL browsers use (https://todo.example.com): passkeys' RP ID and
          origin, and invite links (default: each request's own URL; or $CAPRA_PUBLIC_URL)
  --retain  history retention: every 6 hours, commits older than this are collected
          (default 30d; at least the session lifetime; "off" keeps all history)
  --nats  join a cluster: comma-separated NATS URLs (nats://host:4222,...; or
          $CAPRA_NATS). Members share the root key and one JetStream stream
  --nats-creds  NATS credentials file (or $CAPRA_NATS_CREDS)
  --nats-stream  stream name (default ${DEFAULT_STREAM}, or $CAPRA_NATS_STREAM)
  --nats-replicas  stream replicas (default ${DEFAULT_REPLICAS}, 1 for a single NATS
          node; or $CAPRA_NATS_REPLICAS)
  --server-id  this member's name (default: a random id kept in capra-nats.json;
          or $CAPRA_SERVER_ID)
  --help  show this help (every command has --help)

verify, stats, export and backup only read DIR: they work while a server holds it.
Exit codes: 0 ok, 1 failure (damage found, commits refused), 2 bad arguments.
`;

/** A served repository nobody used for this long closes (it reopens on use). */
const SERVER_IDLE_CLOSE_MS = 10 * 60_000;

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
        config: { type: "string" },
        "metrics-listen": { type: "string" },
        "metrics-token": { type: "string" },
        "public-url": { type: "string" },
        nats: { type: "string" },
        "nats-creds": { type: "string" },
        "nats-stream": { type: "string" },
        "nats-replicas": { type: "string" },
        "server-id": { type: "string" },
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
  let policy;
  try {
    policy = values.config ? await loadPolicy(values.config) : defaultPolicy();
  } catch (e) {
    fail((e as Error).message);
  }
  let metricsAddress;
  try {
    metricsAddress = values["metrics-listen"] &&
      parseListenAddress(values["metrics-listen"]);
  } catch (e) {
    fail(`--metrics-listen: ${(e as Error).message}`);
  }
  const publicUrl = values["public-url"] ?? Deno.env.get("CAPRA_PUBLIC_URL") ??
    policy.users.publicUrl;
  if (publicUrl !== undefined) {
    try {
      if (!/^https?:$/.test(new URL(publicUrl).protocol)) throw new Error();
    } catch {
      fail(`invalid --public-url "${publicUrl}": expected an http(s) URL`);
    }
  }
  const metricsToken = values["metrics-token"] ??
    Deno.env.get("CAPRA_METRICS_TOKEN") ?? policy.metricsToken;
  const ttlText = values["session-ttl"] ?? String(policy.sessionTtlMs / 1000);
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
  const cluster = await clusterOptions(values, retainMs);
  let root: SigningKey, trust: RootSessionTrust, db: Database;
  try {
    // The directory first: a locked or read-only one is refused before anything is created.
    const storage = await FileStorage.open(dir);
    try {
      const rootPath = values["root-key"] ?? Deno.env.get("CAPRA_ROOT_KEY") ??
        defaultRootKeyPath(dir);
      const loaded = await loadOrCreateRootKey(rootPath);
      root = loaded.key;
      if (loaded.created) console.error(`capra: created root key ${rootPath}`);
    } catch (e) {
      await storage.close();
      throw e;
    }
    trust = new RootSessionTrust(root.publicKey);
    db = await openDatabase({
      storage,
      signer: root,
      trust,
      minRetentionMs: ttlSeconds * 1000,
      idleCloseMs: SERVER_IDLE_CLOSE_MS,
    });
  } catch (e) {
    // A locked or read-only directory, an unreadable root key: one line, no stack.
    console.error(`capra serve: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
  const fromPolicy = applyPolicy(db, policy);
  for (const r of db.recoveries) {
    console.error(`capra: repaired ${r.repo}: cut ${r.cutBytes} bytes`);
  }
  const member = cluster &&
    new ClusterMember({
      db,
      dir,
      root,
      trust,
      options: cluster,
      onFatal: () => Deno.exit(1),
    });
  await member?.open();
  const server = createServer({
    db,
    ...(member ? { cluster: member } : {}),
    version: denoJson.version,
    limits: fromPolicy.limits,
    ...(metricsToken ? { metricsToken } : {}),
    security: {
      root,
      trust,
      users: {
        ...fromPolicy.users,
        ...(publicUrl ? { publicUrl } : {}),
        legacyUsersFile: join(dir, USERS_FILE),
      },
      sessionTtlMs: ttlSeconds * 1000,
      rules: fromPolicy.rules,
      anonymousSessions: fromPolicy.anonymousSessions,
      admins: fromPolicy.admins,
      ...(retainMs !== null ? { retentionMs: retainMs } : {}),
    },
  });
  try {
    // Users first: a legacy users file is migrated before the first request.
    await server.users?.ready();
  } catch (e) {
    console.error(`capra serve: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
  const gc = retainMs === null ? null : new GcScheduler(db, {
    retainMs,
    // Members of a cluster collect the same window, but not all at the same moment.
    ...(member
      ? { firstDelayMs: FIRST_GC_DELAY_MS * (1 + Math.random()) }
      : {}),
  });
  gc?.start();
  member?.start();
  const served = await serveGuarded(server, {
    hostname,
    port,
    ...(metricsAddress ? { metricsAddress } : {}),
  });
  console.log(
    `capra: serving ${dir} on http://${served.addr.hostname}:${served.addr.port}/`,
  );
  // The user commands reach this server through it while it holds the directory.
  const removeServingFile = await writeServingFile(
    dir,
    `http://${served.addr.hostname}:${served.addr.port}`,
    publicUrl,
  );
  if (served.metricsAddr) {
    console.log(
      `capra: metrics on http://${served.metricsAddr.hostname}:${served.metricsAddr.port}/metrics`,
    );
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // Stop accepting, close sockets (clients reconcile on reconnect), flush, close.
    await served.close();
    await removeServingFile();
    await gc?.stop();
    await member?.stop();
    await db.flush();
    await db.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await served.finished;
}

/** Cluster options from the flags and environment; null without --nats. */
async function clusterOptions(
  values: Record<string, string | boolean | undefined>,
  retainMs: number | null,
): Promise<ClusterOptions | null> {
  const flag = (name: string, env: string) =>
    (values[name] as string | undefined) ?? Deno.env.get(env);
  const nats = flag("nats", "CAPRA_NATS");
  if (!nats) {
    const stray = ["nats-creds", "nats-stream", "nats-replicas", "server-id"]
      .find((name) => values[name] !== undefined);
    if (stray) fail(`--${stray} needs --nats`);
    return null;
  }
  try {
    const credsPath = flag("nats-creds", "CAPRA_NATS_CREDS");
    let creds: Uint8Array | undefined;
    if (credsPath) {
      try {
        creds = await Deno.readFile(credsPath);
      } catch (e) {
        throw new Error(
          `cannot read --nats-creds "${credsPath}": ${(e as Error).message}`,
        );
      }
    }
    const serverId = flag("server-id", "CAPRA_SERVER_ID");
    return {
      servers: parseNatsUrls(nats),
      stream: checkStreamName(
        flag("nats-stream", "CAPRA_NATS_STREAM") ?? DEFAULT_STREAM,
      ),
      replicas: parseReplicas(
        flag("nats-replicas", "CAPRA_NATS_REPLICAS") ??
          String(DEFAULT_REPLICAS),
      ),
      ...(serverId !== undefined ? { serverId: checkServerId(serverId) } : {}),
      ...(creds ? { creds } : {}),
      retainMs,
    };
  } catch (e) {
    fail((e as Error).message);
  }
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
