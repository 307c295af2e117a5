/**
 * The server's front door: a TCP listener that owns every client connection and relays
 * it to the HTTP server (Deno.serve on an internal 127.0.0.1 port), so that what Deno.serve
 * does not offer is enforced here: a cap on connections per client address (IPv6: per
 * /64) and in total, a timeout for each request's headers, one for its body, one for idle
 * keep-alive connections, a cap on the request head, and an idle timeout for upgraded
 * (WebSocket) connections, whose pings keep them alive. The relay only frames requests
 * (request_framing.ts); it does not rewrite a byte.
 *
 * The HTTP handler learns the real client address with {@link ConnectionGuard.addressOf}
 * (from the port of the relay's upstream connection).
 *
 * @module
 */

import { FramingError, RequestFramer } from "./request_framing.ts";
import { addressKey } from "../limits/limits.ts";
import { Deadline } from "./deadline.ts";

/** Limits the guard enforces. */
export interface GuardLimits {
  readonly connectionsPerAddress: number;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Upgraded connections with no byte either way for this long are closed. */
  readonly upgradedIdleTimeoutMs: number;
}

/** Counters the guard reports to. */
export interface GuardCounters {
  connectionsRefused: number;
  connectionsTimedOut: number;
}

/** Options of {@link ConnectionGuard.listen}. */
export interface GuardOptions {
  readonly hostname: string;
  readonly port: number;
  /** Where the HTTP server listens (127.0.0.1). */
  readonly upstream: { readonly hostname: string; readonly port: number };
  readonly limits: GuardLimits;
  readonly counters?: GuardCounters;
}

const RELAY_BUFFER_BYTES = 64 * 1024;
const utf8 = new TextEncoder();

function rawResponse(status: number, reason: string, extra = ""): Uint8Array {
  return utf8.encode(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`,
  );
}

/** A guarded listener. */
export class ConnectionGuard {
  readonly #listener: Deno.TcpListener;
  readonly #byAddress = new Map<string, number>();
  readonly #origins = new Map<number, string>();
  readonly #open = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  #closed = false;

  private constructor(
    listener: Deno.TcpListener,
    private readonly options: GuardOptions,
  ) {
    this.#listener = listener;
    this.#accepting = this.#accept();
  }

  /** Starts listening on `hostname:port` (port 0 picks a free one). */
  static listen(options: GuardOptions): ConnectionGuard {
    const listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      transport: "tcp",
    });
    return new ConnectionGuard(listener, options);
  }

  /** The address the guard listens on. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** Open client connections. */
  get connections(): number {
    return this.#open.size / 2;
  }

  /** The client hostname behind the relay connection from local port `port`. */
  addressOf(port: number): string | undefined {
    return this.#origins.get(port);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#serve(conn).catch(() => {});
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    const { limits, counters } = this.options;
    const hostname = (client.remoteAddr as Deno.NetAddr).hostname;
    const key = addressKey(hostname);
    const mine = this.#byAddress.get(key) ?? 0;
    if (
      this.#closed || mine >= limits.connectionsPerAddress ||
      this.#open.size / 2 >= limits.maxConnections
    ) {
      if (counters) counters.connectionsRefused++;
      await client.write(
        rawResponse(429, "Too Many Requests", "retry-after: 1\r\n"),
      ).catch(() => {});
      try {
        client.close();
      } catch { /* gone */ }
      return;
    }
    this.#byAddress.set(key, mine + 1);
    let upstream: Deno.TcpConn | undefined;
    try {
      upstream = await Deno.connect({
        hostname: this.options.upstream.hostname,
        port: this.options.upstream.port,
      });
      const port = (upstream.localAddr as Deno.NetAddr).port;
      this.#origins.set(port, hostname);
      try {
        client.setNoDelay(true);
        upstream.setNoDelay(true);
      } catch { /* not supported */ }
      this.#open.add(client);
      this.#open.add(upstream);
      await this.#relay(client, upstream);
      this.#origins.delete(port);
    } catch {
      // A failed connection is simply closed.
    } finally {
      for (const c of [client, upstream]) {
        if (!c) continue;
        this.#open.delete(c);
        try {
          c.close();
        } catch { /* already closed */ }
      }
      const left = (this.#byAddress.get(key) ?? 1) - 1;
      if (left > 0) this.#byAddress.set(key, left);
      else this.#byAddress.delete(key);
    }
  }

  async #relay(client: Deno.TcpConn, upstream: Deno.TcpConn): Promise<void> {
    const { limits, counters } = this.options;
    const framer = new RequestFramer(limits.maxHeaderBytes);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      deadline.stop();
      for (const c of [client, upstream]) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    };
    /** What the client is told when the deadline passes (a 408 while headers are due). */
    let onTimeout: Uint8Array | undefined;
    const deadline = new Deadline(async () => {
      if (counters) counters.connectionsTimedOut++;
      if (onTimeout) await client.write(onTimeout).catch(() => {});
      end();
    });
    const timeout408 = rawResponse(408, "Request Timeout");
    /** Moves the connection's one deadline. */
    const arm = (ms: number, response?: Uint8Array) => {
      onTimeout = response;
      deadline.set(ms);
    };
    arm(limits.headersTimeoutMs, timeout408);
    let phase: "headers" | "body" | "waiting" | "idle" | "upgraded" = "headers";
    const clientToServer = async () => {
      const buf = new Uint8Array(RELAY_BUFFER_BYTES);
      try {
        for (;;) {
          const n = await client.read(buf);
          if (n === null) break;
          const chunk = buf.subarray(0, n);
          if (!framer.upgraded) {
            let events;
            try {
              events = framer.feed(chunk);
            } catch (e) {
              if (e instanceof FramingError) {
                await client.write(
                  rawResponse(
                    e.status,
                    e.status === 431
                      ? "Request Header Fields Too Large"
                      : "Bad Request",
                  ),
                ).catch(() => {});
              }
              break;
            }
            for (const ev of events) {
              if (ev === "request-start") {
                phase = "headers";
                arm(limits.headersTimeoutMs, timeout408);
              } else if (ev === "head-complete") {
                phase = "body";
                arm(limits.bodyTimeoutMs);
              } else if (ev === "request-complete") {
                // The server answers now; no client timer until it has.
                phase = "waiting";
                deadline.clear();
              } else if (ev === "upgraded") {
                phase = "upgraded";
                arm(limits.upgradedIdleTimeoutMs);
              }
            }
          } else arm(limits.upgradedIdleTimeoutMs);
          await writeAll(upstream, chunk);
        }
        try {
          await upstream.closeWrite();
        } catch { /* closed */ }
      } catch {
        end();
      }
    };
    const serverToClient = async () => {
      const buf = new Uint8Array(RELAY_BUFFER_BYTES);
      try {
        for (;;) {
          const n = await upstream.read(buf);
          if (n === null) break;
          if (phase === "waiting" || phase === "idle") {
            // A response is flowing: the connection is idle once it stops.
            phase = "idle";
            arm(limits.keepAliveTimeoutMs);
          } else if (phase === "upgraded") arm(limits.upgradedIdleTimeoutMs);
          await writeAll(client, buf.subarray(0, n));
        }
      } catch { /* closed */ }
      end();
    };
    await Promise.all([clientToServer(), serverToClient()]);
    end();
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await this.#accepting;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}
