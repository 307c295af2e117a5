/**
 * WebSocket connections: each socket authenticates with a signed hello, subscribes to
 * repositories it may read, sends sync requests and receives, the moment they are
 * accepted from any transport, the commits of its subscribed repositories: once per
 * tick, encoded once for all receivers (push_fanout.ts), with flow control per socket
 * (ws_connection.ts: a socket that reads too slowly stops getting pushes and is told to
 * catch up once it drained).
 *
 * @module
 */

import type { Repository } from "../lib/core/repository.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import type { SessionRecord } from "../lib/core/session.ts";
import { repoPathOf } from "../lib/path.ts";
import {
  type NonceCache,
  RequestAuthError,
  verifyRequest,
} from "../lib/sync/request_signing.ts";
import {
  decodeWsFrame,
  MAX_SUBSCRIPTIONS_PER_SOCKET,
  MAX_WS_FRAME_BYTES,
  WS_PATH,
  type WsError,
} from "../lib/sync/ws_protocol.ts";
import { HttpError } from "./errors.ts";
import type { SyncService } from "./sync_service.ts";
import { PushFanout } from "./push_fanout.ts";
import {
  type FlowLimits,
  HubConnection,
  type HubSocket,
} from "./ws_connection.ts";

export { MAX_COMMITS_PER_PUSH } from "./push_fanout.ts";
export { WS_CLOSE_CATCH_UP, WS_CLOSE_STUCK } from "./ws_connection.ts";

/** A socket must say hello within this time (default; see ServerLimits). */
export const HELLO_TIMEOUT_MS = 10_000;
/** A socket that sends no frame for this long is closed (default; it reconnects). */
export const WS_IDLE_TIMEOUT_MS = 30 * 60_000;
/** Largest frame accepted before the hello is verified (default). */
export const MAX_PRE_HELLO_FRAME_BYTES = 4096;
/** Close code of an idle socket. */
export const WS_CLOSE_IDLE = 4000;
/**
 * Unsent bytes above which a socket gets no more pushes until it drained to half
 * (default; see ServerLimits.wsPushBufferBytes).
 */
export const WS_PUSH_BUFFER_BYTES = 1024 * 1024;
/**
 * A socket is stuck, and closed, when it stayed above its push buffer bound without
 * draining a single byte for this long (default; ServerLimits.wsStuckTimeoutMs). Slow
 * sockets that drain, however slowly, stay open.
 */
export const WS_STUCK_TIMEOUT_MS = 60_000;
/** How often lagging sockets are looked at (drained? stuck?). */
export const WS_LAG_CHECK_MS = 50;
/** Close code for protocol and authentication failures. */
export const WS_CLOSE_POLICY = 1008;

/** Timeouts and caps of a hub. */
export interface WsHubOptions {
  readonly helloTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly preHelloFrameBytes?: number;
  readonly pushBufferBytes?: number;
  readonly stuckTimeoutMs?: number;
  /** Told of every verified hello (a device's "last seen"). */
  readonly onHello?: (session: SessionRecord) => void;
}

/** The set of open sockets. */
export class WsHub {
  readonly #conns = new Set<HubConnection>();
  readonly #bySub = new Map<string, Set<HubConnection>>();
  readonly #lagging = new Set<HubConnection>();
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  #drainWaiters: { max: number; resolve: () => void }[] = [];
  readonly #fanout: PushFanout;

  readonly #helloTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #preHelloFrameBytes: number;
  readonly #flow: FlowLimits;
  readonly #onHello: ((session: SessionRecord) => void) | undefined;

  constructor(
    private readonly service: SyncService,
    private readonly nonces: NonceCache,
    private readonly now: () => number = Date.now,
    options: WsHubOptions = {},
  ) {
    this.#helloTimeoutMs = options.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? WS_IDLE_TIMEOUT_MS;
    this.#preHelloFrameBytes = options.preHelloFrameBytes ??
      MAX_PRE_HELLO_FRAME_BYTES;
    this.#flow = {
      pushBufferBytes: options.pushBufferBytes ?? WS_PUSH_BUFFER_BYTES,
      stuckTimeoutMs: options.stuckTimeoutMs ?? WS_STUCK_TIMEOUT_MS,
    };
    this.#fanout = new PushFanout(
      { subscribersOf: (repo) => this.#bySub.get(repo) ?? EMPTY },
      service,
      now,
    );
    this.#onHello = options.onHello;
    service.onAccepted((repo, ids, origin) => this.#push(repo, ids, origin));
  }

  /** Open sockets. */
  get connected(): number {
    return this.#conns.size;
  }

  /** Sockets that get no pushes now (too much unsent). */
  get lagging(): number {
    return this.#lagging.size;
  }

  /** Unsent bytes of every socket together. */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.#conns) n += c.socket.bufferedAmount;
    return n;
  }

  /** Unsent bytes of the socket that has the most. */
  get maxBufferedBytes(): number {
    let n = 0;
    for (const c of this.#conns) n = Math.max(n, c.socket.bufferedAmount);
    return n;
  }

  /** Commits waiting for the next push tick. */
  get pendingPushes(): number {
    return this.#fanout.pendingCommits;
  }

  /** Resolves once at most `max` sockets are open (tests, graceful shutdown). */
  whenAtMost(max: number): Promise<void> {
    if (this.#conns.size <= max) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ max, resolve }));
  }

  /** Pushes what is pending now instead of at the next tick (tests). */
  flushPushes(): Promise<void> {
    return this.#fanout.flush();
  }

  #remove(conn: HubConnection): void {
    conn.markClosed();
    this.#conns.delete(conn);
    this.#lagging.delete(conn);
    for (const repo of conn.subs) {
      const set = this.#bySub.get(repo);
      set?.delete(conn);
      if (set && !set.size) this.#bySub.delete(repo);
    }
    const ready = this.#drainWaiters.filter((w) => this.#conns.size <= w.max);
    this.#drainWaiters = this.#drainWaiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  #watchLag(conn: HubConnection): void {
    this.#lagging.add(conn);
    this.#lagTimer ??= setInterval(() => {
      const now = this.now();
      for (const c of this.#lagging) {
        if (!c.checkLag(now)) this.#lagging.delete(c);
      }
      if (!this.#lagging.size) {
        clearInterval(this.#lagTimer);
        this.#lagTimer = undefined;
      }
    }, WS_LAG_CHECK_MS);
  }

  /** Serves a socket (already upgraded): a WebSocket, or the guard's own socket. */
  attach(ws: WebSocket | HubSocket): void {
    const socket = ws as HubSocket;
    socket.binaryType = "arraybuffer";
    const conn = new HubConnection(
      socket,
      this.#flow,
      this.service.metrics,
      (c) => this.#watchLag(c),
    );
    this.#conns.add(conn);
    conn.helloTimer = setTimeout(
      () => socket.close(WS_CLOSE_POLICY, "no hello"),
      this.#helloTimeoutMs,
    );
    this.#armIdle(conn, this.#idleTimeoutMs);
    socket.onclose = () => {
      clearTimeout(conn.helloTimer);
      clearTimeout(conn.idleTimer);
      this.#remove(conn);
    };
    socket.onerror = () => {};
    const preHello = this.#preHelloFrameBytes;
    if (socket.maxMessageBytes !== undefined) {
      // Nothing big is even read before the hello.
      socket.maxMessageBytes = preHello;
      socket.onoversize = (max) =>
        this.#fail(
          conn,
          new RangeError(
            conn.session
              ? `Frame of more than ${max} bytes is too large`
              : `Frame of more than ${max} bytes before the hello (at most ${preHello})`,
          ),
        );
    }
    socket.onmessage = (ev) => {
      conn.lastFrameAt = Date.now();
      const data = ev.data;
      const size = data instanceof ArrayBuffer ? data.byteLength : 0;
      if (!conn.session && size > preHello) {
        // Nothing big is processed before the socket is authenticated.
        this.#fail(
          conn,
          new RangeError(
            `Frame of ${size} bytes before the hello (at most ${preHello})`,
          ),
        );
        return;
      }
      try {
        conn.enqueue(
          size,
          () => this.#onMessage(conn, data).catch((e) => this.#fail(conn, e)),
        );
      } catch (e) {
        this.#fail(conn, e);
      }
    };
  }

  /** Closes the socket once it has sent nothing for the idle timeout. */
  #armIdle(conn: HubConnection, delay: number): void {
    conn.idleTimer = setTimeout(() => {
      const idle = Date.now() - conn.lastFrameAt;
      if (idle < this.#idleTimeoutMs) {
        this.#armIdle(conn, this.#idleTimeoutMs - idle);
        return;
      }
      try {
        conn.socket.close(WS_CLOSE_IDLE, "idle");
      } catch { /* already closing */ }
    }, delay);
  }

  #fail(conn: HubConnection, e: unknown): void {
    const error = toWsError(e);
    conn.send({ t: "error", error });
    conn.socket.close(WS_CLOSE_POLICY, error.code);
  }

  async #onMessage(conn: HubConnection, data: unknown): Promise<void> {
    if (!(data instanceof ArrayBuffer)) {
      throw new SyntaxError("Invalid WebSocket frame: expected binary");
    }
    if (data.byteLength > MAX_WS_FRAME_BYTES) {
      throw new RangeError(`Frame of ${data.byteLength} bytes is too large`);
    }
    const frame = decodeWsFrame(new Uint8Array(data));
    if (!conn.session) {
      if (frame.t !== "hello") {
        throw new RequestAuthError(401, "unsigned", "Expected a signed hello");
      }
      conn.session = await verifyRequest(
        (name) => frame.fields[name],
        "GET",
        WS_PATH,
        new Uint8Array(0),
        this.service.trust,
        this.nonces,
        this.now(),
      );
      conn.features = new Set(frame.features ?? []);
      clearTimeout(conn.helloTimer);
      if (conn.socket.maxMessageBytes !== undefined) {
        conn.socket.maxMessageBytes = MAX_WS_FRAME_BYTES;
      }
      this.#onHello?.(conn.session);
      conn.send({ t: "welcome", session: conn.session.id });
      return;
    }
    const session = conn.session;
    if (this.service.trust.isRevoked(session.id)) {
      throw new RequestAuthError(401, "session_revoked", "Session revoked");
    }
    if (this.service.trust.lookup(session.id, this.now()) === undefined) {
      throw new RequestAuthError(
        401,
        "session_expired",
        "Session expired: obtain a new session and reconnect",
      );
    }
    switch (frame.t) {
      case "sub": {
        const repo = repoPathOf(frame.repo);
        try {
          this.service.checkRead(repo, session);
        } catch (e) {
          conn.send({ t: "error", error: toWsError(e), repo });
          return;
        }
        if (conn.subs.has(repo)) return;
        if (conn.subs.size >= MAX_SUBSCRIPTIONS_PER_SOCKET) {
          throw new RangeError(
            `More than ${MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions`,
          );
        }
        conn.subs.add(repo);
        let set = this.#bySub.get(repo);
        if (!set) this.#bySub.set(repo, set = new Set());
        set.add(conn);
        return;
      }
      case "req": {
        try {
          const msg = await this.service.answer(
            session,
            frame.msg,
            undefined,
            conn,
          );
          conn.send({ t: "res", id: frame.id, msg });
        } catch (e) {
          conn.send({ t: "res", id: frame.id, error: toWsError(e) });
        }
        return;
      }
      default:
        throw new SyntaxError(`Unexpected frame ${frame.t}`);
    }
  }

  #push(repo: Repository, ids: readonly CommitId[], origin: unknown): void {
    this.#fanout.add(repo, ids, origin);
  }

  /**
   * Closes the sockets of a revoked session at once, with a `session_revoked` error
   * frame (their client learns it now, not at its next request).
   */
  closeSession(id: string): void {
    for (const c of this.#conns) {
      if (c.session?.id !== id) continue;
      this.#fail(
        c,
        new RequestAuthError(401, "session_revoked", "Session revoked"),
      );
    }
  }

  /** Closes every socket (graceful shutdown). */
  closeAll(reason = "server shutting down"): void {
    this.#fanout.stop();
    clearInterval(this.#lagTimer);
    this.#lagTimer = undefined;
    for (const c of this.#conns) {
      try {
        c.socket.close(1001, reason);
      } catch { /* already closing */ }
      clearTimeout(c.helloTimer);
      clearTimeout(c.idleTimer);
      this.#remove(c);
    }
  }
}

const EMPTY: ReadonlySet<HubConnection> = new Set();

function toWsError(e: unknown): WsError {
  if (e instanceof HttpError) {
    const retry = e.headers?.["retry-after"];
    return {
      code: e.code,
      message: e.message,
      ...(retry !== undefined && Number.isFinite(Number(retry))
        ? { retryAfterMs: Number(retry) * 1000 }
        : {}),
    };
  }
  if (e instanceof RequestAuthError) {
    return { code: e.code, message: e.message };
  }
  if (
    e instanceof SyntaxError || e instanceof TypeError ||
    e instanceof RangeError
  ) return { code: "bad_request", message: e.message };
  console.error("capra server:", e);
  return { code: "internal", message: "Internal server error" };
}
