/**
 * Test helper: a NATS JetStream cluster of real `nats-server` processes on 127.0.0.1,
 * each with its own store directory and config file, killed and restarted by pid.
 * `natsServerBinary()` is null when nats-server is not installed (tests then skip).
 */

/** Where Debian's `nats-server` package installs the binary. */
export const NATS_SERVER_PATH = "/usr/sbin/nats-server";

/** The nats-server binary ($CAPRA_NATS_SERVER or /usr/sbin/nats-server), or null. */
export function natsServerBinary(): string | null {
  const path = Deno.env.get("CAPRA_NATS_SERVER") ?? NATS_SERVER_PATH;
  try {
    return Deno.statSync(path).isFile ? path : null;
  } catch {
    return null;
  }
}

/** A message for tests that skip without nats-server. */
export const NO_NATS_SERVER =
  `nats-server is not installed (${NATS_SERVER_PATH}; apt-get install nats-server): cluster test skipped`;

/**
 * Ports for processes that keep their port across restarts are picked below the kernel's
 * ephemeral range (Linux: 32768-60999), where port-0 listeners and outgoing connections
 * take theirs: a restarted member or NATS node would otherwise find its port taken by
 * another test's connection (AddrInUse).
 */
const FIXED_PORT_RANGE = [20_000, 32_000] as const;

/** A free TCP port on 127.0.0.1 (bound, then released), outside the ephemeral range. */
export function freePort(): number {
  const [low, high] = FIXED_PORT_RANGE;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    }
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One nats-server node. */
export class NatsNode {
  #child: Deno.ChildProcess | null = null;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly configPath: string,
    private readonly binary: string,
  ) {}

  /** `nats://127.0.0.1:port`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The running process id, or null when stopped. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the node and waits until its client port accepts connections. */
  async start(): Promise<void> {
    if (this.#child) return;
    this.#child = new Deno.Command(this.binary, {
      args: ["-c", this.configPath],
      stdout: "null",
      stderr: Deno.env.get("CAPRA_NATS_LOG") ? "inherit" : "null",
    }).spawn();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        const c = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.port,
        });
        c.close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    throw new Error(`nats-server ${this.name} did not listen on ${this.port}`);
  }

  /** Kills the process by its pid (SIGKILL by default) and waits for it to exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    try {
      child.kill(signal);
    } catch { /* already gone */ }
    await child.status;
  }
}

/** Several nats-server nodes routed into one JetStream cluster. */
export class NatsCluster {
  private constructor(
    readonly nodes: NatsNode[],
    readonly dir: string,
  ) {}

  /** Comma-separated client URLs of every node (what `--nats` takes). */
  get urls(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  /** Writes configs and starts `size` nodes (use `natsServerBinary()` first). */
  static async start(
    size = 3,
    binary = natsServerBinary(),
  ): Promise<NatsCluster> {
    if (!binary) throw new Error(NO_NATS_SERVER);
    const dir = await Deno.makeTempDir({ prefix: "capra-nats-" });
    const ports = Array.from({ length: size }, () => freePort());
    const routePorts = Array.from({ length: size }, () => freePort());
    const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`);
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const configPath = `${dir}/${name}.conf`;
      await Deno.writeTextFile(
        configPath,
        [
          `server_name: ${name}`,
          `listen: "127.0.0.1:${ports[i]}"`,
          `jetstream { store_dir: "${dir}/${name}" }`,
          ...(size > 1
            ? [
              "cluster {",
              "  name: capra",
              `  listen: "127.0.0.1:${routePorts[i]}"`,
              "  no_advertise: true",
              `  routes: [${
                routes.filter((_, j) => j !== i).map((r) => `"${r}"`).join(", ")
              }]`,
              "}",
            ]
            : []),
        ].join("\n") + "\n",
      );
      nodes.push(new NatsNode(name, ports[i], configPath, binary));
    }
    const cluster = new NatsCluster(nodes, dir);
    try {
      await Promise.all(nodes.map((n) => n.start()));
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** Kills every node by pid and removes the store directories. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
