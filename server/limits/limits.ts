/**
 * Every limit, quota and timeout of the server, with its default. The config file
 * (policy.ts) and the embedding API override them; the README's Security section lists
 * them.
 *
 * @module
 */

import { MAX_SYNC_MESSAGE_BYTES } from "../../lib/sync/protocol.ts";

/** Caps, timeouts and quotas of a server. */
export interface ServerLimits {
  /** Largest body read before the request is authenticated (session requests). */
  readonly preAuthBodyBytes: number;
  /** Largest body of an authenticated sync request. */
  readonly syncBodyBytes: number;
  /** Request body bytes held in memory at once, all requests together. */
  readonly inFlightBytes: number;
  /** A request's headers must arrive within this time (from its first byte). */
  readonly headersTimeoutMs: number;
  /** A request's body must arrive within this time (from the end of its headers). */
  readonly bodyTimeoutMs: number;
  /** An idle keep-alive connection (no request, no bytes either way) is closed after. */
  readonly keepAliveTimeoutMs: number;
  /** Most open connections from one client address (IPv6: one /64). */
  readonly connectionsPerAddress: number;
  /** Most open connections in total. */
  readonly maxConnections: number;
  /** Largest request head (request line and headers). */
  readonly maxHeaderBytes: number;
  /** A WebSocket must send its signed hello within this time. */
  readonly wsHelloTimeoutMs: number;
  /** WebSocket ping interval; a socket that misses a pong for as long is closed. */
  readonly wsPingIntervalMs: number;
  /** A WebSocket that sends no frame for this long is closed (it reconnects). */
  readonly wsIdleTimeoutMs: number;
  /** Largest frame accepted before a socket's hello is verified. */
  readonly wsPreHelloFrameBytes: number;
  /** Commits one session may send per minute (429 beyond, with Retry-After). */
  readonly commitsPerSessionPerMinute: number;
  /** Request bytes one session may send per minute (429 beyond, with Retry-After). */
  readonly bytesPerSessionPerMinute: number;
  /** Session requests per client address per minute. */
  readonly sessionsPerAddressPerMinute: number;
  /** Session requests per user per minute. */
  readonly sessionsPerUserPerMinute: number;
  /** Expired, unrevoked session records are deleted this long after their expiry. */
  readonly sessionCollectAfterMs: number;
  /** How often expired session records are collected. */
  readonly sessionSweepIntervalMs: number;
  /** Sign-in and sign-up attempts per client address per minute. */
  readonly signInPerAddressPerMinute: number;
  /** Password sign-in attempts per user name (existing or not) per minute. */
  readonly signInPerNamePerMinute: number;
}

/** The defaults (see the README's Security section). */
export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  preAuthBodyBytes: 4096,
  syncBodyBytes: MAX_SYNC_MESSAGE_BYTES,
  inFlightBytes: 64 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  connectionsPerAddress: 64,
  maxConnections: 4096,
  maxHeaderBytes: 64 * 1024,
  wsHelloTimeoutMs: 10_000,
  wsPingIntervalMs: 30_000,
  wsIdleTimeoutMs: 30 * 60_000,
  wsPreHelloFrameBytes: 4096,
  commitsPerSessionPerMinute: 30_000,
  bytesPerSessionPerMinute: 64 * 1024 * 1024,
  sessionsPerAddressPerMinute: 60,
  sessionsPerUserPerMinute: 30,
  sessionCollectAfterMs: 60 * 60_000,
  sessionSweepIntervalMs: 10 * 60_000,
  signInPerAddressPerMinute: 10,
  signInPerNamePerMinute: 5,
});

/** The defaults with `overrides` applied; throws a RangeError naming a bad value. */
export function limitsWith(
  overrides: Partial<ServerLimits> = {},
): ServerLimits {
  const out = { ...DEFAULT_LIMITS, ...overrides };
  for (const [k, v] of Object.entries(out)) {
    if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new RangeError(`Invalid limit ${k}: ${v} (expected a number > 0)`);
    }
  }
  return out;
}

/**
 * The key limits count a client address under: an IPv4 address as it is, an IPv6
 * address by its /64 prefix (one host usually holds a whole /64).
 */
export function addressKey(hostname: string | undefined): string {
  if (!hostname) return "unknown";
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (v4) return v4[1];
  if (!h.includes(":")) return h;
  const [head, tail = ""] = h.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = h.includes("::")
    ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":") +
    "::/64";
}
