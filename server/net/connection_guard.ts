/**
 * The server's front door: a TCP listener that owns every client connection and relays
 * it to the HTTP server (Deno.serve on an internal 127.0.0.1 port), so that what Deno.serve
 * does not offer is enforced here: a cap on connections per client address (IPv6: per
 * /64) and in total, a timeout for each request's headers, one for its body, one for idle
 * keep-alive connections, a cap on the request head, and an idle timeout for upgraded
 * (WebSocket) connections, whose pings keep them alive. The relay only frames requests
 * (request_framing.ts); it does not rewrite a byte.
 *
 * A WebSocket upgrade that arrives as a connection's first request is not relayed: the
 * guard answers it itself (ws_upgrade.ts, through the app's route) and runs the socket on
 * the client's connection (ws_socket.ts), so pushes cost one write, not three. Past
 * capacity ({@link GuardOptions.admit}), a new connection's first request is refused
 * with a 503 and Retry-After, except the health and metrics probes.
 *
 * The HTTP handler learns the real client address with {@link ConnectionGuard.addressOf}
 * (from the port of the relay's upstream connection).
 *
 * @module
 */

import {
  FramingError,
  RequestFramer,
  type RequestHead,
} from "./request_framing.ts";
import { addressKey } from "../limits/limits.ts";
import { Deadline } from "./deadline.ts";
import { isWebSocketUpgrade, type UpgradeOutcome } from "./ws_upgrade.ts";

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
  /** Connections refused by admission control (503). */
  connectionsShed?: number;
}

/** Options of {@link ConnectionGuard.listen}. */
export interface GuardOptions {
  readonly hostname: string;
  readonly port: number;
  /** Where the HTTP server listens (127.0.0.1). */
  readonly upstream: { readonly hostname: string; readonly port: number };
  readonly limits: GuardLimits;
  readonly counters?: GuardCounters;
  /**
   * Answers a WebSocket upgrade that is a connection's first request on the connection
   * itself (without it, upgrades are relayed like any request).
   */
  readonly upgrades?: (
    head: RequestHead,
    remoteAddr: Deno.NetAddr,
  ) => Promise<UpgradeOutcome>;
  /**
   * Admission of a new connection, decided on its first request's head: a raw response
   * refuses it (the guard writes it and closes), undefined admits it.
   */
  readonly admit?: (head: RequestHead) => Uint8Array | undefined;
}

/** Bytes read from a connection at once. */
export const RELAY_BUFFER_BYTES = 64 * 1024;
const utf8 = new TextEncoder();

function rawResponse(status: number, reason: string, extra = ""): Uint8Array {
  return utf8.encode(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`,
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function closeQuietly(c: Deno.Conn | undefined): void {
  try {
    c?.close();
  } catch { /* already closed */ }
}

type Phase = "headers" | "body" | "waiting" | "idle" | "upgraded";

/** The phase a connection is in after these framing events. */
function phaseAfter(phase: Phase, events: readonly string[]): Phase {
  for (const ev of events) {
    if (ev === "request-start") phase = "headers";
    else if (ev === "head-complete") phase = "body";
    else if (ev === "request-complete") phase = "waiting";
    else if (ev === "upgraded") phase = "upgraded";
  }
  return phase;
}

/** A guarded listener. */
export class ConnectionGuard {
  readonly #listener: Deno.TcpListener;
  readonly #byAddress = new Map<string, number>();
  readonly #origins = new Map<number, string>();
  /** Client connections (each counts against the caps). */
  readonly #clients = new Set<Deno.Conn>();
  readonly #upstreams = new Set<Deno.Conn>();
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
    return this.#clients.size;
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
      this.#clients.size >= limits.maxConnections
    ) {
      if (counters) counters.connectionsRefused++;
      await client.write(
        rawResponse(429, "Too Many Requests", "retry-after: 1\r\n"),
      ).catch(() => {});
      closeQuietly(client);
      return;
    }
    this.#byAddress.set(key, mine + 1);
    this.#clients.add(client);
    try {
      try {
        client.setNoDelay(true);
      } catch { /* not supported */ }
      await this.#handle(client, hostname);
    } catch {
      // A failed connection is simply closed.
    } finally {
      this.#clients.delete(client);
      closeQuietly(client);
      const left = (this.#byAddress.get(key) ?? 1) - 1;
      if (left > 0) this.#byAddress.set(key, left);
      else this.#byAddress.delete(key);
    }
  }

  /**
   * One client connection: its first request head is read here (under the header
   * timeout and the head cap); a WebSocket upgrade is answered locally, anything else is
   * relayed to the HTTP server from then on.
   */
  async #handle(client: Deno.TcpConn, hostname: string): Promise<void> {
    const { limits, counters } = this.options;
    const framer = new RequestFramer(limits.maxHeaderBytes);
    const timeout408 = rawResponse(408, "Request Timeout");
    let ended = false;
    /** The relay's connection to the HTTP server, once there is one. */
    const link: { upstream?: Deno.TcpConn } = {};
    const end = () => {
      if (ended) return;
      ended = true;
      deadline.stop();
      closeQuietly(client);
      closeQuietly(link.upstream);
    };
    /** What the client is told when the deadline passes (a 408 while headers are due). */
    let onTimeout: Uint8Array | undefined = timeout408;
    const deadline = new Deadline(async () => {
      if (counters) counters.connectionsTimedOut++;
      if (onTimeout) await client.write(onTimeout).catch(() => {});
      end();
    });
    deadline.set(limits.headersTimeoutMs);
    const refuse = async (e: unknown) => {
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
      end();
    };
    // The first request's head.
    const pending: Uint8Array[] = [];
    const seen: string[] = [];
    const buf = new Uint8Array(RELAY_BUFFER_BYTES);
    while (!seen.includes("head-complete")) {
      let n: number | null;
      try {
        n = await client.read(buf);
      } catch {
        n = null;
      }
      if (n === null || ended) return end();
      const chunk = buf.slice(0, n);
      try {
        seen.push(...framer.feed(chunk));
      } catch (e) {
        return await refuse(e);
      }
      pending.push(chunk);
    }
    const head = framer.lastHead!;
    const refusal = this.options.admit?.(head);
    if (refusal) {
      if (counters) {
        counters.connectionsShed = (counters.connectionsShed ?? 0) + 1;
      }
      deadline.stop();
      await client.write(refusal).catch(() => {});
      return end();
    }
    if (this.options.upgrades && isWebSocketUpgrade(head)) {
      deadline.stop();
      if (!framer.upgraded) {
        // An upgrade request with a body: not a WebSocket handshake.
        await client.write(rawResponse(400, "Bad Request")).catch(() => {});
        return end();
      }
      const all = concat(pending);
      const leftover = all.subarray(
        all.length - (pending.at(-1)!.length - framer.upgradedAt!),
      );
      const outcome = await this.options.upgrades(
        head,
        client.remoteAddr as Deno.NetAddr,
      );
      try {
        await writeAll(client, outcome.response);
      } catch {
        outcome.socket?.close(1006);
        return end();
      }
      if (!outcome.socket) return end();
      outcome.socket.start(client, leftover.slice());
      await outcome.socket.ended;
      return end();
    }
    const upstream = link.upstream = await Deno.connect({
      hostname: this.options.upstream.hostname,
      port: this.options.upstream.port,
    });
    if (ended) return end();
    const port = (upstream.localAddr as Deno.NetAddr).port;
    this.#origins.set(port, hostname);
    this.#upstreams.add(upstream);
    try {
      try {
        upstream.setNoDelay(true);
      } catch { /* not supported */ }
      await this.#relay(client, upstream, framer, seen, pending, deadline, {
        end,
        refuse,
        setTimeoutResponse: (r) => onTimeout = r,
      });
    } finally {
      this.#origins.delete(port);
      this.#upstreams.delete(upstream);
      end();
    }
  }

  async #relay(
    client: Deno.TcpConn,
    upstream: Deno.TcpConn,
    framer: RequestFramer,
    seen: readonly string[],
    pending: readonly Uint8Array[],
    deadline: Deadline,
    hooks: {
      end(): void;
      refuse(e: unknown): Promise<void>;
      setTimeoutResponse(r: Uint8Array | undefined): void;
    },
  ): Promise<void> {
    const { limits } = this.options;
    const timeout408 = rawResponse(408, "Request Timeout");
    /** Moves the connection's one deadline. */
    const arm = (ms: number, response?: Uint8Array) => {
      hooks.setTimeoutResponse(response);
      deadline.set(ms);
    };
    let phase: Phase = phaseAfter("headers", seen);
    const armFor = (p: Phase) => {
      if (p === "headers") arm(limits.headersTimeoutMs, timeout408);
      else if (p === "body") arm(limits.bodyTimeoutMs);
      else if (p === "waiting") deadline.clear(); // the server answers now
      else if (p === "upgraded") arm(limits.upgradedIdleTimeoutMs);
    };
    armFor(phase);
    const clientToServer = async () => {
      const buf = new Uint8Array(RELAY_BUFFER_BYTES);
      try {
        await writeAll(upstream, concat(pending));
        for (;;) {
          const n = await client.read(buf);
          if (n === null) break;
          const chunk = buf.subarray(0, n);
          if (!framer.upgraded) {
            let events;
            try {
              events = framer.feed(chunk);
            } catch (e) {
              await hooks.refuse(e);
              break;
            }
            for (const ev of events) {
              const next = phaseAfter(phase, [ev]);
              if (next !== phase || ev === "request-start") armFor(next);
              phase = next;
            }
          } else arm(limits.upgradedIdleTimeoutMs);
          await writeAll(upstream, chunk);
        }
        try {
          await upstream.closeWrite();
        } catch { /* closed */ }
      } catch {
        hooks.end();
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
      hooks.end();
    };
    await Promise.all([clientToServer(), serverToClient()]);
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const c of [...this.#clients, ...this.#upstreams]) closeQuietly(c);
    await this.#accepting;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}
