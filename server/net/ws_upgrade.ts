/**
 * WebSocket upgrades the connection guard answers itself. The guard hands the request
 * head to the app (so its route decides: authentication, 426, 503...) as a `Request`
 * marked here; the app's `upgradeWebSocket` dependency finds the mark with
 * {@link takeGuardedUpgrade} and gets a {@link GuardedWebSocket} instead of a Deno one.
 * The guard then writes the 101 (or whatever the app answered) and runs the socket on its
 * own connection: no relay, no second HTTP server in the path of every push.
 *
 * @module
 */

import { GuardedWebSocket, type GuardedWebSocketOptions } from "./ws_socket.ts";
import { wsAcceptKey } from "./ws_framing.ts";
import type { RequestHead } from "./request_framing.ts";

interface Mark {
  readonly options: GuardedWebSocketOptions;
  socket?: GuardedWebSocket;
}

const marks = new WeakMap<Request, Mark>();

/**
 * For a request the guard marked: the socket that will run on the guard's connection and
 * the response that stands for the 101 (the guard writes the real one). Undefined for any
 * other request (Deno.serve's own upgrade applies).
 */
export function takeGuardedUpgrade(
  request: Request,
): { socket: WebSocket; response: Response } | undefined {
  const mark = marks.get(request);
  if (!mark || mark.socket) return undefined;
  mark.socket = new GuardedWebSocket(mark.options);
  // The hub uses the WebSocket members GuardedWebSocket has.
  return {
    socket: mark.socket as unknown as WebSocket,
    response: new Response(null, { status: 200 }),
  };
}

/** True when the head asks for a WebSocket (RFC 6455 §4.2.1: GET, Upgrade, Connection). */
export function isWebSocketUpgrade(head: RequestHead): boolean {
  const get = (name: string) => header(head, name)?.toLowerCase() ?? "";
  return head.method === "GET" && get("upgrade") === "websocket" &&
    get("connection").split(",").some((t) => t.trim() === "upgrade");
}

function header(head: RequestHead, name: string): string | undefined {
  for (const [k, v] of head.headers) if (k === name) return v;
  return undefined;
}

/** What the guard does with an upgrade request: a response to write, and maybe a socket. */
export interface UpgradeOutcome {
  /** Raw HTTP/1.1 response bytes. */
  readonly response: Uint8Array;
  /** Set when the response is the 101: run it on the connection after writing it. */
  readonly socket?: GuardedWebSocket;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Serializes a (small) response for a connection that closes after it. */
export async function rawHttpResponse(res: Response): Promise<Uint8Array> {
  const body = new Uint8Array(await res.arrayBuffer());
  let head = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? "Status"}\r\n`;
  for (const [k, v] of res.headers) {
    if (k === "content-length" || k === "connection") continue;
    head += `${k}: ${v}\r\n`;
  }
  head += `connection: close\r\ncontent-length: ${body.length}\r\n\r\n`;
  const h = new TextEncoder().encode(head);
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

/**
 * Hands an upgrade request to `fetch` (the app) and returns what to write: the 101 with
 * the socket the app attached, or the app's refusal. A handshake the server cannot
 * accept (no key, another version) is refused before the app sees it.
 */
export async function answerUpgrade(
  head: RequestHead,
  remoteAddr: Deno.NetAddr,
  fetch: (
    req: Request,
    env: { remoteAddr: Deno.NetAddr },
  ) => Promise<Response> | Response,
  options: GuardedWebSocketOptions,
): Promise<UpgradeOutcome> {
  const key = header(head, "sec-websocket-key")?.trim() ?? "";
  const version = header(head, "sec-websocket-version")?.trim();
  if (version !== "13") {
    return {
      response: await rawHttpResponse(
        new Response("WebSocket version 13 is required", {
          status: 426,
          headers: { "sec-websocket-version": "13" },
        }),
      ),
    };
  }
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return {
      response: await rawHttpResponse(
        new Response("Invalid Sec-WebSocket-Key", { status: 400 }),
      ),
    };
  }
  const host = header(head, "host") ?? "localhost";
  const headers = new Headers();
  for (const [k, v] of head.headers) {
    try {
      headers.append(k, v);
    } catch { /* a header Request refuses: left out */ }
  }
  let request: Request;
  try {
    request = new Request(new URL(head.target, `http://${host}`), {
      method: "GET",
      headers,
    });
  } catch {
    return {
      response: await rawHttpResponse(
        new Response("Invalid request target", { status: 400 }),
      ),
    };
  }
  const mark: Mark = { options };
  marks.set(request, mark);
  const res = await fetch(request, { remoteAddr });
  if (!mark.socket || res.status !== 200) {
    mark.socket?.close(1011, "not upgraded");
    return { response: await rawHttpResponse(res) };
  }
  await res.body?.cancel();
  const accept = await wsAcceptKey(key);
  return {
    response: new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        `sec-websocket-accept: ${accept}\r\n\r\n`,
    ),
    socket: mark.socket,
  };
}
