/**
 * Frames of the WebSocket sync protocol: one socket multiplexes repositories. The client
 * opens with a signed `hello` (the signed-request fields over `GET /v1/ws` and an empty
 * body), subscribes to repositories, sends sync messages as numbered requests; the server
 * answers them and pushes accepted commits of subscribed repositories as they arrive.
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

/** An error carried by a frame. */
export interface WsError {
  readonly code: string;
  readonly message: string;
}

/** One frame. */
export type WsFrame =
  | { readonly t: "hello"; readonly fields: Record<string, string> }
  | { readonly t: "welcome"; readonly session: string }
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
    if (v !== undefined) out[k] = v as Packable;
  }
  return encode(out);
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
  return { code: str(e.code, "error.code"), message: str(e.message, "error") };
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
      return { t: "hello", fields };
    }
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
