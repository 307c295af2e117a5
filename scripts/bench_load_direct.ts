/**
 * The server of `capra serve`, served by `Deno.serve` directly instead of behind the
 * connection guard: the load bench's `--direct` mode runs it to measure what the guard
 * costs. Not for production (no per-address caps, no header or idle timeouts).
 *
 * Usage: deno run -A scripts/bench_load_direct.ts serve --dir D --root-key K --port 0
 * --config F
 *
 * @module
 */

import { parseArgs } from "node:util";
import { FileStorage, openDatabase } from "../mod.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { createServer } from "../server/app.ts";
import {
  denoPoolVerifier,
  SERVER_POOL_MIN_BATCH,
} from "../lib/crypto/deno_verify_pool.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";
import { loadPolicy } from "../server/policy/parse_policy.ts";
import { applyPolicy } from "../server/policy/apply_policy.ts";

const { values } = parseArgs({
  args: Deno.args.slice(1),
  options: {
    dir: { type: "string" },
    "root-key": { type: "string" },
    port: { type: "string" },
    config: { type: "string" },
  },
});
const storage = await FileStorage.open(values.dir!);
const { key: root } = await loadOrCreateRootKey(values["root-key"]!);
const trust = new RootSessionTrust(root.publicKey);
const policy = await loadPolicy(values.config!);
const db = await openDatabase({
  storage,
  signer: root,
  trust,
  minRetentionMs: policy.sessionTtlMs,
  idleCloseMs: 10 * 60_000,
  verifier: denoPoolVerifier({ minBatch: SERVER_POOL_MIN_BATCH }),
});
const fromPolicy = applyPolicy(db, policy);
const server = createServer({
  db,
  limits: fromPolicy.limits,
  ...(fromPolicy.metricsToken ? { metricsToken: fromPolicy.metricsToken } : {}),
  security: {
    root,
    trust,
    rules: fromPolicy.rules,
    anonymousSessions: fromPolicy.anonymousSessions,
    admins: fromPolicy.admins,
  },
});
const http = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(values.port ?? 0),
  onListen: ({ hostname, port }) =>
    console.log(`capra: serving ${values.dir} on http://${hostname}:${port}/`),
}, server.app.fetch);
Deno.addSignalListener("SIGTERM", async () => {
  server.hub?.closeAll();
  await http.shutdown();
  await db.close();
  Deno.exit(0);
});
