/**
 * Frames of the WebSocket sync protocol: one socket multiplexes repositories. The client
 * opens with a signed `hello` (the signed-request fields over `GET /v1/ws` and an empty
 * body), subscribes to repositories, sends sync messages as numbered requests; the server
 * answers them and pushes accepted commits of subscribed repositories as they arrive.
 *
 * A socket the server stopped pushing to (its client read too slowly) is told to
 * `catchup` once it reads again: the client reconciles those repositories (O(diff)).
 * Only clients whose hello lists the {@link WS_FEATURE_CATCH_UP} feature get that frame;
 * older ones are closed instead and reconcile when they reconnect. Unknown hello keys
 * are ignored by older servers, so new clients work with them too.
 *
 * @module
 */

import { decode, encode, type Packable } from "../encoding/msgpack.ts";
import { MAX_SYNC_MESSAGE_BYTES } from "./protocol.ts";

/** Largest WebSocket frame accepted (a sync message plus framing). */
export const MAX_WS_FRAME_BYTES = MAX_SYNC_MESSAGE_BYTES + 4096;
/** Most repositories one socket may subscribe to. */
export const MAX_SUBSCRIPTIONS_PER_SOCKET = 1024;
/** Path the hello signature covers. */
export const WS_PATH = "/v1/ws";
/** Hello feature: the client reconciles when told to `catchup`. */
export const WS_FEATURE_CATCH_UP = "catchup";
/** Most features a hello may list. */
export const MAX_WS_FEATURES = 16;

/** An error carried by a frame. */
export interface WsError {
  readonly code: string;
  readonly message: string;
  /** For `server_busy`: when to try again. */
  readonly retryAfterMs?: number;
}

/** One frame. */
export type WsFrame =
  | {
    readonly t: "hello";
    readonly fields: Record<string, string>;
    /** What the client understands (e.g. {@link WS_FEATURE_CATCH_UP}). */
    readonly features?: readonly string[];
  }
  | { readonly t: "welcome"; readonly session: string }
  | {
    /** Pushes of these repositories were left out: reconcile them. */
    readonly t: "catchup";
    readonly repos: readonly string[];
  }
  | { readonly t: "sub"; readonly repo: string }
  | { readonly t: "req"; readonly id: number; readonly msg: Uint8Array }
  | {
    readonly t: "res";
    readonly id: number;
    readonly msg?: Uint8Array;
    readonly error?: WsError;
  }
  | { readonly t: "push"; readonly msg: Uint8Array }
  | {
    readonly t: "error";
    readonly error: WsError;
    readonly repo?: string;
  };

/** Encodes a frame. */
export function encodeWsFrame(f: WsFrame): Uint8Array {
  const out: Record<string, Packable> = {};
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined) continue;
    out[k] = k === "error" ? errorPackable(v as WsError) : v as Packable;
  }
  return encode(out);
}

function errorPackable(e: WsError): Record<string, Packable> {
  return {
    code: e.code,
    message: e.message,
    ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
  };
}

function bad(what: string): never {
  throw new SyntaxError(`Invalid WebSocket frame: ${what}`);
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") bad(`${what} must be a string`);
  return v;
}

function err(v: unknown): WsError {
  const e = v as Record<string, unknown>;
  if (!e || typeof e !== "object") bad("error must be { code, message }");
  const retry = e.retryAfterMs;
  if (
    retry !== undefined &&
    !(typeof retry === "number" && Number.isFinite(retry) && retry >= 0)
  ) bad("error.retryAfterMs must be a number >= 0");
  return {
    code: str(e.code, "error.code"),
    message: str(e.message, "error"),
    ...(retry !== undefined ? { retryAfterMs: retry } : {}),
  };
}

function strings(v: unknown, what: string, max: number): string[] {
  if (!Array.isArray(v)) bad(`${what} must be an array of strings`);
  if (v.length > max) bad(`${what} has more than ${max} entries`);
  return v.map((x, i) => str(x, `${what}[${i}]`));
}

/** Decodes and validates a frame; throws SyntaxError or RangeError. `msg` is a view into `bytes`. */
export function decodeWsFrame(bytes: Uint8Array): WsFrame {
  if (bytes.length > MAX_WS_FRAME_BYTES) {
    throw new RangeError(`Frame of ${bytes.length} bytes is too large`);
  }
  const v = decode(bytes, { maxDepth: 3, views: true }) as Record<
    string,
    unknown
  >;
  if (!v || typeof v !== "object" || Array.isArray(v)) bad("expected a map");
  const id = v.id;
  const needId = () => {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
      bad("id must be a non-negative integer");
    }
    return id;
  };
  const bytesOf = (x: unknown) => {
    if (!(x instanceof Uint8Array)) bad("msg must be bytes");
    return x;
  };
  switch (v.t) {
    case "hello": {
      const f = v.fields as Record<string, unknown>;
      if (!f || typeof f !== "object" || Array.isArray(f)) bad("fields");
      const fields: Record<string, string> = {};
      for (const [k, x] of Object.entries(f)) fields[k] = str(x, k);
      return {
        t: "hello",
        fields,
        ...(v.features !== undefined
          ? { features: strings(v.features, "features", MAX_WS_FEATURES) }
          : {}),
      };
    }
    case "catchup":
      return {
        t: "catchup",
        repos: strings(v.repos, "repos", MAX_SUBSCRIPTIONS_PER_SOCKET),
      };
    case "welcome":
      return { t: "welcome", session: str(v.session, "session") };
    case "sub":
      return { t: "sub", repo: str(v.repo, "repo") };
    case "req":
      return { t: "req", id: needId(), msg: bytesOf(v.msg) };
    case "res":
      return {
        t: "res",
        id: needId(),
        ...(v.msg !== undefined ? { msg: bytesOf(v.msg) } : {}),
        ...(v.error !== undefined ? { error: err(v.error) } : {}),
      };
    case "push":
      return { t: "push", msg: bytesOf(v.msg) };
    case "error":
      return {
        t: "error",
        error: err(v.error),
        ...(v.repo !== undefined ? { repo: str(v.repo, "repo") } : {}),
      };
    default:
      bad(`unknown type ${String(v.t)}`);
  }
}
