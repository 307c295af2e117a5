/**
 * The client end of the WebSocket sync protocol: one socket for all repositories,
 * authenticated by a signed hello, re-subscribed and reconciled after every reconnect
 * (exponential backoff with jitter). Requests are numbered; pushes are handed on.
 *
 * @module
 */

import { decodeSyncMessage, type SyncMessage } from "./protocol.ts";
import { SyncError, type SyncTransport } from "./sync_round.ts";
import {
  decodeWsFrame,
  encodeWsFrame,
  WS_FEATURE_CATCH_UP,
  type WsError,
  type WsFrame,
} from "./ws_protocol.ts";

/** First reconnect delay. */
export const WS_BACKOFF_INITIAL_MS = 100;
/** Longest reconnect delay. */
export const WS_BACKOFF_MAX_MS = 10_000;
/** A request without an answer for this long fails. */
export const WS_REQUEST_TIMEOUT_MS = 30_000;

/** Options of {@link WsConnection}. */
export interface WsConnectionOptions {
  /** `ws://host:port/v1/ws`. */
  readonly url: string;
  /** Signed hello fields (fresh time and nonce for every connection). */
  readonly hello: () => Promise<Record<string, string>>;
  /** Called after each successful hello (reconcile here). */
  readonly onOpen?: () => void;
  /** Called with commits the server pushes. */
  readonly onPush?: (message: SyncMessage) => void;
  /** Called with errors the server reports (and refused hellos). */
  readonly onError?: (error: WsError, repo?: string) => void;
  /**
   * Called when the server left out pushes of these repositories (this client read too
   * slowly): reconcile them. Announced in the hello only when given.
   */
  readonly onCatchUp?: (repos: readonly string[]) => void;
  /** WebSocket constructor (tests and other runtimes). */
  readonly WebSocket?: typeof WebSocket;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

/** A request the server answered with an error (`retryAfterMs` for `server_busy`). */
export class WsRequestError extends SyncError {
  constructor(
    code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(code, message, code);
    this.name = "WsRequestError";
  }
}

interface Pending {
  resolve(bytes: Uint8Array): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A reconnecting, multiplexed sync socket.
 *
 * @example
 * ```ts ignore
 * const conn = new WsConnection({ url, hello: () => session.sign("GET", "/v1/ws", new Uint8Array()) });
 * conn.start();
 * conn.subscribe("/todo/home");
 * await conn.ready();
 * await db.syncWith("/todo/home", conn.transport());
 * ```
 */
export class WsConnection {
  #socket: WebSocket | undefined;
  #welcomed = false;
  #closed = false;
  #attempt = 0;
  #nextId = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #subs = new Set<string>();
  #waiters: { resolve(): void; reject(e: Error): void }[] = [];

  constructor(private readonly options: WsConnectionOptions) {}

  /** True after the server accepted the hello, until the socket closes. */
  get connected(): boolean {
    return this.#welcomed;
  }

  /** Opens the socket (and keeps reopening it until {@link close}). */
  start(): void {
    if (!this.#socket && !this.#closed) this.#open();
  }

  /** Resolves when connected (at once when already). */
  ready(): Promise<void> {
    if (this.#welcomed) return Promise.resolve();
    if (this.#closed) return Promise.reject(new SyncError("closed", "Closed"));
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve, reject })
    );
  }

  /** Subscribes to a repository's pushes (kept across reconnects). */
  subscribe(repo: string): void {
    this.#subs.add(repo);
    if (this.#welcomed) this.#send({ t: "sub", repo });
  }

  /** A transport sending sync messages over this socket. */
  transport(): SyncTransport {
    return { request: (message) => this.request(message) };
  }

  /** Sends one sync message and resolves with the answer. */
  request(message: Uint8Array): Promise<Uint8Array> {
    if (!this.#welcomed) {
      return Promise.reject(new SyncError("disconnected", "Not connected"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SyncError("timeout", `No answer to request ${id}`));
      }, WS_REQUEST_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.#send({ t: "req", id, msg: message });
    });
  }

  /** Closes for good. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, "client closing");
    this.#drop(new SyncError("closed", "Connection closed"));
    for (const w of this.#waiters.splice(0)) {
      w.reject(new SyncError("closed", "Connection closed"));
    }
  }

  #send(frame: WsFrame): void {
    const s = this.#socket;
    if (s?.readyState === 1) {
      s.send(encodeWsFrame(frame) as Uint8Array<ArrayBuffer>);
    }
  }

  #drop(error: Error): void {
    this.#welcomed = false;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.#pending.clear();
  }

  #open(): void {
    const Ws = this.options.WebSocket ?? WebSocket;
    const socket = new Ws(this.options.url);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    socket.onopen = async () => {
      try {
        const fields = await this.options.hello();
        if (socket === this.#socket) {
          this.#send({
            t: "hello",
            fields,
            ...(this.options.onCatchUp
              ? { features: [WS_FEATURE_CATCH_UP] }
              : {}),
          });
        }
      } catch {
        socket.close();
      }
    };
    socket.onmessage = (ev) => this.#onFrame(ev.data);
    socket.onerror = () => {};
    socket.onclose = () => {
      if (socket !== this.#socket) return;
      this.#socket = undefined;
      this.#drop(new SyncError("disconnected", "Connection lost"));
      if (this.#closed) return;
      const initial = this.options.backoffInitialMs ?? WS_BACKOFF_INITIAL_MS;
      const max = this.options.backoffMaxMs ?? WS_BACKOFF_MAX_MS;
      const delay = Math.min(max, initial * 2 ** this.#attempt++) *
        (0.5 + Math.random() / 2);
      this.#timer = setTimeout(() => this.#open(), delay);
    };
  }

  #onFrame(data: unknown): void {
    let frame: WsFrame;
    try {
      if (!(data instanceof ArrayBuffer)) throw new SyntaxError("not binary");
      frame = decodeWsFrame(new Uint8Array(data));
    } catch (e) {
      this.options.onError?.({
        code: "bad_frame",
        message: (e as Error).message,
      });
      return;
    }
    switch (frame.t) {
      case "welcome": {
        this.#welcomed = true;
        this.#attempt = 0;
        for (const repo of this.#subs) this.#send({ t: "sub", repo });
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w.resolve();
        this.options.onOpen?.();
        return;
      }
      case "res": {
        const p = this.#pending.get(frame.id);
        if (!p) return;
        this.#pending.delete(frame.id);
        clearTimeout(p.timer);
        if (frame.error) {
          p.reject(
            new WsRequestError(
              frame.error.code,
              frame.error.message,
              frame.error.retryAfterMs,
            ),
          );
        } else if (frame.msg) p.resolve(frame.msg);
        else p.reject(new SyncError("bad_frame", "Empty answer"));
        return;
      }
      case "push": {
        try {
          this.options.onPush?.(decodeSyncMessage(frame.msg));
        } catch (e) {
          this.options.onError?.({
            code: "bad_push",
            message: (e as Error).message,
          });
        }
        return;
      }
      case "error":
        this.options.onError?.(frame.error, frame.repo);
        return;
      case "catchup":
        this.options.onCatchUp?.(frame.repos);
        return;
      default:
        return;
    }
  }
}
