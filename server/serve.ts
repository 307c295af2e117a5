/**
 * Serves a {@link Server} the way `capra serve` does: behind the connection guard
 * (net/connection_guard.ts: per-address connection caps, header/body/keep-alive
 * timeouts), with the HTTP server itself on an internal 127.0.0.1 port, and `/metrics`
 * optionally on a separate listen address. Returns when both listen.
 *
 * @module
 */

import type { Server } from "./app.ts";
import { ConnectionGuard } from "./net/connection_guard.ts";

/** Options of {@link serveGuarded}. */
export interface GuardedServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** `host:port` serving only `GET /metrics` (keep it private). */
  readonly metricsAddress?: {
    readonly hostname: string;
    readonly port: number;
  };
  readonly signal?: AbortSignal;
}

/** A running guarded server. */
export interface GuardedServer {
  /** Where clients connect. */
  readonly addr: Deno.NetAddr;
  /** Where `/metrics` is served, when separate. */
  readonly metricsAddr?: Deno.NetAddr;
  readonly guard: ConnectionGuard;
  /** Stops accepting, closes connections; resolves when everything stopped. */
  close(): Promise<void>;
  /** Resolves once the servers stopped. */
  readonly finished: Promise<void>;
}

/** Parses `host:port` (IPv6 in brackets); throws a TypeError naming the value. */
export function parseListenAddress(
  text: string,
): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new TypeError(
      `invalid address "${text}": expected host:port, e.g. 127.0.0.1:9090`,
    );
  }
  return { hostname: m[1] ?? m[2], port };
}

/** Serves `server` behind the connection guard. */
export async function serveGuarded(
  server: Server,
  options: GuardedServeOptions,
): Promise<GuardedServer> {
  const ac = new AbortController();
  const internalReady = Promise.withResolvers<Deno.NetAddr>();
  const ref: { guard?: ConnectionGuard } = {};
  const http = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (addr) => internalReady.resolve(addr),
  }, (req, info) => {
    const origin = ref.guard?.addressOf(info.remoteAddr.port);
    return server.app.fetch(req, {
      remoteAddr: origin === undefined
        ? info.remoteAddr
        : { ...info.remoteAddr, hostname: origin },
    });
  });
  const internal = await internalReady.promise;
  const l = server.limits;
  const guard = ref.guard = ConnectionGuard.listen({
    hostname: options.hostname,
    port: options.port,
    upstream: { hostname: "127.0.0.1", port: internal.port },
    limits: {
      connectionsPerAddress: l.connectionsPerAddress,
      maxConnections: l.maxConnections,
      headersTimeoutMs: l.headersTimeoutMs,
      bodyTimeoutMs: l.bodyTimeoutMs,
      keepAliveTimeoutMs: l.keepAliveTimeoutMs,
      maxHeaderBytes: l.maxHeaderBytes,
      // Deno pings every interval; a live peer answers, so bytes flow at least that often.
      upgradedIdleTimeoutMs: 3 * l.wsPingIntervalMs,
    },
    counters: server.metrics,
  });
  let metrics: Deno.HttpServer<Deno.NetAddr> | undefined;
  let metricsAddr: Deno.NetAddr | undefined;
  if (options.metricsAddress) {
    const ready = Promise.withResolvers<Deno.NetAddr>();
    metrics = Deno.serve({
      ...options.metricsAddress,
      signal: ac.signal,
      onListen: (addr) => ready.resolve(addr),
    }, server.metricsApp.fetch);
    metricsAddr = await ready.promise;
  }
  const close = async () => {
    server.hub?.closeAll();
    await guard.close();
    ac.abort();
    await http.finished;
    await metrics?.finished;
  };
  options.signal?.addEventListener("abort", () => void close(), { once: true });
  const finished = Promise.all([http.finished, metrics?.finished]).then(
    () => {},
  );
  return {
    addr: guard.addr,
    ...(metricsAddr ? { metricsAddr } : {}),
    guard,
    close,
    finished,
  };
}
