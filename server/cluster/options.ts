/**
 * What makes a server a cluster member (`capra serve --nats ...`), checked before any
 * connection is tried: NATS URLs, the stream's name and replica count, this member's id.
 *
 * @module
 */

/** Default name of the JetStream stream the members share. */
export const DEFAULT_STREAM = "CAPRA";
/** Default replica count of the stream (1 for a single NATS node). */
export const DEFAULT_REPLICAS = 3;
/** Most replicas JetStream allows for a stream. */
export const MAX_REPLICAS = 5;
/** A stream name: also a subject token, so no dots, wildcards or spaces. */
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A member id: a subject token too (peer requests are addressed by it). */
export const SERVER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Most NATS URLs in `--nats`. */
export const MAX_NATS_URLS = 32;

/** Cluster membership settings. */
export interface ClusterOptions {
  /** NATS server URLs (`nats://host:4222`); the client fails over between them. */
  readonly servers: readonly string[];
  /** JetStream stream name (default {@link DEFAULT_STREAM}). */
  readonly stream: string;
  /** Stream replicas (default {@link DEFAULT_REPLICAS}). */
  readonly replicas: number;
  /** This member's id; default: a random id kept in the checkpoint file. */
  readonly serverId?: string;
  /** Contents of a NATS credentials file (`--nats-creds`). */
  readonly creds?: Uint8Array;
  /** History retention (ms), the stream's `max_age`; null keeps everything. */
  readonly retainMs: number | null;
}

/** Splits and checks `--nats` (comma-separated `nats://host:port` URLs). */
export function parseNatsUrls(text: string): string[] {
  const urls = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (urls.length === 0) {
    throw new TypeError(
      `Invalid --nats "${text}": expected nats://host:port[,nats://host:port...]`,
    );
  }
  if (urls.length > MAX_NATS_URLS) {
    throw new RangeError(
      `Invalid --nats: ${urls.length} URLs, at most ${MAX_NATS_URLS}`,
    );
  }
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u.includes("://") ? u : `nats://${u}`);
    } catch {
      throw new TypeError(
        `Invalid --nats URL "${u}": expected nats://host:port`,
      );
    }
    if (!["nats:", "tls:"].includes(url.protocol) || url.hostname === "") {
      throw new TypeError(
        `Invalid --nats URL "${u}": expected nats://host:port (or tls://)`,
      );
    }
  }
  return urls;
}

/** Checks `--nats-stream`. */
export function checkStreamName(name: string): string {
  if (!STREAM_NAME.test(name)) {
    throw new TypeError(
      `Invalid --nats-stream "${name}": expected 1-64 characters of [A-Za-z0-9_-]`,
    );
  }
  return name;
}

/** Parses `--nats-replicas`. */
export function parseReplicas(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_REPLICAS) {
    throw new RangeError(
      `Invalid --nats-replicas "${text}": expected 1-${MAX_REPLICAS}`,
    );
  }
  return n;
}

/** Checks `--server-id`. */
export function checkServerId(id: string): string {
  if (!SERVER_ID.test(id)) {
    throw new TypeError(
      `Invalid --server-id "${id}": expected 1-64 characters of [A-Za-z0-9_-]`,
    );
  }
  return id;
}
