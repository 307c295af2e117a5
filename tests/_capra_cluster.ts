/**
 * Test helper: `capra serve --nats` processes (`deno run server/main.ts`) on 127.0.0.1
 * sharing one root key, each with its own data directory, killed by pid and restarted on
 * the same port. Their log lines are kept (and printed with CAPRA_CLUSTER_LOG=1).
 */

import { freePort, NatsCluster } from "./_nats_cluster.ts";
import { loadOrCreateRootKey } from "../server/root_key.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
/** The `--metrics-token` of every test member. */
export const METRICS_TOKEN = "cluster-test-metrics";

/** Options of a member process. */
export interface MemberOptions {
  readonly id: string;
  readonly dataDir: string;
  readonly rootKey: string;
  readonly nats: string;
  readonly replicas?: number;
  readonly stream?: string;
  readonly extraArgs?: readonly string[];
}

/** One `capra serve --nats` process. */
export class CapraMember {
  #child: Deno.ChildProcess | null = null;
  #port = 0;
  readonly lines: string[] = [];

  constructor(readonly options: MemberOptions) {}

  get id(): string {
    return this.options.id;
  }

  /** `http://127.0.0.1:port` (the same across restarts). */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the process and waits until it listens (not until it is ready). */
  async start(): Promise<void> {
    if (this.#child) return;
    if (!this.#port) this.#port = freePort();
    const o = this.options;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "serve",
        "--dir",
        o.dataDir,
        "--port",
        String(this.#port),
        "--root-key",
        o.rootKey,
        "--nats",
        o.nats,
        "--server-id",
        o.id,
        "--nats-replicas",
        String(o.replicas ?? 3),
        ...(o.stream ? ["--nats-stream", o.stream] : []),
        "--metrics-token",
        METRICS_TOKEN,
        ...(o.extraArgs ?? []),
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child = child;
    const listening = Promise.withResolvers<void>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      const dec = new TextDecoder();
      for await (const chunk of stream) {
        buf += dec.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        for (const line of parts) {
          this.lines.push(line);
          if (Deno.env.get("CAPRA_CLUSTER_LOG")) {
            console.error(
              `${new Date().toISOString().slice(17, 23)} [${o.id}] ${line}`,
            );
          }
          if (line.includes("serving ")) listening.resolve();
        }
      }
    };
    void pump(child.stdout).catch(() => {});
    void pump(child.stderr).catch(() => {});
    const timer = setTimeout(
      () => listening.reject(new Error(`member ${o.id} did not listen`)),
      30_000,
    );
    try {
      await Promise.race([
        listening.promise,
        child.status.then((s) => {
          throw new Error(
            `member ${o.id} exited (${s.code}): ${this.lines.join("\n")}`,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `/healthz` as JSON with its status code. */
  async health(): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await fetch(`${this.url}/healthz`);
    return { status: r.status, body: await r.json() };
  }

  /** Waits until `/healthz` says ready (200). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const h = await this.health();
        if (h.status === 200) return;
        last = h.body;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(
      `member ${this.id} not ready after ${timeoutMs} ms: ${
        JSON.stringify(last)
      }\n${this.lines.slice(-30).join("\n")}`,
    );
  }

  /** One series of `/metrics`. */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    })).text();
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  }

  /** Kills the process by pid (SIGKILL by default) and waits for it. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    try {
      child.kill(signal);
    } catch { /* gone */ }
    await child.status;
  }
}

/** Waits until `check` returns true, polling; throws `message()` after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: () => string,
  pollMs = 50,
): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  if (await check()) return Date.now() - start;
  throw new Error(`not within ${timeoutMs} ms: ${message()}`);
}

/** A NATS cluster and Capra members sharing one root key, stopped together. */
export interface TestCluster {
  readonly nats: NatsCluster;
  readonly members: CapraMember[];
  readonly dir: string;
  readonly rootKey: string;
  /** Adds (does not start) another member with its own data directory. */
  addMember(id: string, extraArgs?: readonly string[]): CapraMember;
  /** Kills every member and NATS node by pid, removes the directories. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  readonly members?: number;
  readonly natsNodes?: number;
  readonly extraArgs?: readonly string[];
}

/** Starts NATS nodes and members and waits until every member is ready. */
export async function startCluster(
  options: StartClusterOptions = {},
): Promise<TestCluster> {
  const natsNodes = options.natsNodes ?? 3;
  const nats = await NatsCluster.start(natsNodes);
  const dir = await Deno.makeTempDir({ prefix: "capra-cluster-" });
  const rootKey = `${dir}/root.key`;
  await loadOrCreateRootKey(rootKey);
  const members: CapraMember[] = [];
  const cluster: TestCluster = {
    nats,
    members,
    dir,
    rootKey,
    addMember(id, extraArgs = options.extraArgs ?? []) {
      const m = new CapraMember({
        id,
        dataDir: `${dir}/${id}`,
        rootKey,
        nats: nats.urls,
        replicas: Math.min(3, natsNodes),
        extraArgs,
      });
      members.push(m);
      return m;
    },
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
      await nats.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    const ids = ["a", "b", "c", "d", "e"].slice(0, options.members ?? 3);
    for (const id of ids) cluster.addMember(id);
    await Promise.all(members.map((m) => m.start()));
    await Promise.all(members.map((m) => m.waitReady()));
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}
