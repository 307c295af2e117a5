/**
 * WebSocket connections: each socket authenticates with a signed hello, subscribes to
 * repositories it may read, sends sync requests and receives, the moment they are
 * accepted from any transport, the commits of its subscribed repositories.
 *
 * @module
 */

import type { Repository } from "../lib/core/repository.ts";
import type { SessionRecord } from "../lib/core/session.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import { repoPathOf } from "../lib/path.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { authorsOf } from "../lib/sync/sync_round.ts";
import {
  type NonceCache,
  RequestAuthError,
  verifyRequest,
} from "../lib/sync/request_signing.ts";
import {
  decodeWsFrame,
  encodeWsFrame,
  MAX_SUBSCRIPTIONS_PER_SOCKET,
  MAX_WS_FRAME_BYTES,
  WS_PATH,
  type WsFrame,
} from "../lib/sync/ws_protocol.ts";
import { HttpError } from "./errors.ts";
import type { SyncService } from "./sync_service.ts";

/** A socket must say hello within this time (default; see ServerLimits). */
export const HELLO_TIMEOUT_MS = 10_000;
/** A socket that sends no frame for this long is closed (default; it reconnects). */
export const WS_IDLE_TIMEOUT_MS = 30 * 60_000;
/** Largest frame accepted before the hello is verified (default). */
export const MAX_PRE_HELLO_FRAME_BYTES = 4096;
/** Close code of an idle socket. */
export const WS_CLOSE_IDLE = 4000;
/** A socket whose unsent data exceeds this is closed (it reconciles on reconnect). */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Most commits in one push frame. */
export const MAX_COMMITS_PER_PUSH = 1024;
/** Close code for protocol and authentication failures. */
export const WS_CLOSE_POLICY = 1008;

interface Connection {
  readonly socket: WebSocket;
  session?: SessionRecord;
  readonly subs: Set<string>;
  helloTimer?: ReturnType<typeof setTimeout>;
  idleTimer?: ReturnType<typeof setTimeout>;
  lastFrameAt: number;
}

/** Timeouts and caps of a hub. */
export interface WsHubOptions {
  readonly helloTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly preHelloFrameBytes?: number;
  /** Told of every verified hello (a device's "last seen"). */
  readonly onHello?: (session: SessionRecord) => void;
}

/** The set of open sockets. */
export class WsHub {
  readonly #conns = new Set<Connection>();
  #drainWaiters: { max: number; resolve: () => void }[] = [];

  readonly #helloTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #preHelloFrameBytes: number;
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
    this.#onHello = options.onHello;
    service.onAccepted((repo, ids, origin) => this.#push(repo, ids, origin));
  }

  /** Open sockets. */
  get connected(): number {
    return this.#conns.size;
  }

  /** Resolves once at most `max` sockets are open (tests, graceful shutdown). */
  whenAtMost(max: number): Promise<void> {
    if (this.#conns.size <= max) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ max, resolve }));
  }

  #remove(conn: Connection): void {
    this.#conns.delete(conn);
    const ready = this.#drainWaiters.filter((w) => this.#conns.size <= w.max);
    this.#drainWaiters = this.#drainWaiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  /** Serves a socket (already upgraded). */
  attach(socket: WebSocket): void {
    socket.binaryType = "arraybuffer";
    const conn: Connection = {
      socket,
      subs: new Set(),
      lastFrameAt: Date.now(),
    };
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
    let queue = Promise.resolve();
    socket.onmessage = (ev) => {
      conn.lastFrameAt = Date.now();
      const data = ev.data;
      if (
        !conn.session && data instanceof ArrayBuffer &&
        data.byteLength > this.#preHelloFrameBytes
      ) {
        // Nothing big is processed before the socket is authenticated.
        this.#fail(
          conn,
          new RangeError(
            `Frame of ${data.byteLength} bytes before the hello (at most ${this.#preHelloFrameBytes})`,
          ),
        );
        return;
      }
      queue = queue.then(() => this.#onMessage(conn, data)).catch((e) =>
        this.#fail(conn, e)
      );
    };
  }

  /** Closes the socket once it has sent nothing for the idle timeout. */
  #armIdle(conn: Connection, delay: number): void {
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

  #send(conn: Connection, frame: WsFrame | Uint8Array): void {
    if (conn.socket.readyState !== WebSocket.OPEN) return;
    if (conn.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      conn.socket.close(WS_CLOSE_POLICY, "too slow");
      return;
    }
    const bytes = frame instanceof Uint8Array ? frame : encodeWsFrame(frame);
    this.service.metrics.bytesOut += bytes.length;
    conn.socket.send(bytes as Uint8Array<ArrayBuffer>);
  }

  #fail(conn: Connection, e: unknown): void {
    const error = toWsError(e);
    this.#send(conn, { t: "error", error });
    conn.socket.close(WS_CLOSE_POLICY, error.code);
  }

  async #onMessage(conn: Connection, data: unknown): Promise<void> {
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
      clearTimeout(conn.helloTimer);
      this.#onHello?.(conn.session);
      this.#send(conn, { t: "welcome", session: conn.session.id });
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
          this.#send(conn, { t: "error", error: toWsError(e), repo });
          return;
        }
        if (conn.subs.size >= MAX_SUBSCRIPTIONS_PER_SOCKET) {
          throw new RangeError(
            `More than ${MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions`,
          );
        }
        conn.subs.add(repo);
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
          this.#send(conn, { t: "res", id: frame.id, msg });
        } catch (e) {
          this.#send(conn, { t: "res", id: frame.id, error: toWsError(e) });
        }
        return;
      }
      default:
        throw new SyntaxError(`Unexpected frame ${frame.t}`);
    }
  }

  #push(repo: Repository, ids: readonly CommitId[], origin: unknown): void {
    const now = this.now();
    const targets = [...this.#conns].filter((c) =>
      c !== origin && c.session && c.subs.has(repo.path) &&
      this.service.trust.lookup(c.session.id, now) !== undefined
    );
    if (!targets.length) return;
    // Sockets of one session get the same frames: those commits it may read.
    const bySession = new Map<string, Connection[]>();
    for (const c of targets) {
      const list = bySession.get(c.session!.id);
      if (list) list.push(c);
      else bySession.set(c.session!.id, [c]);
    }
    for (const conns of bySession.values()) {
      const visible = this.service.readable(repo, ids, conns[0].session!);
      for (let i = 0; i < visible.length; i += MAX_COMMITS_PER_PUSH) {
        const batch = visible.slice(i, i + MAX_COMMITS_PER_PUSH);
        const commits = batch.map((id) => repo.commitRecord(id)).filter((
          r,
        ): r is Uint8Array => r !== undefined);
        if (!commits.length) continue;
        const sessions = this.service.sessionRecords(authorsOf(repo, batch));
        const frame = encodeWsFrame({
          t: "push",
          msg: encodeSyncMessage({ repo: repo.path, commits, sessions }),
        });
        for (const c of conns) this.#send(c, frame);
      }
    }
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

function toWsError(e: unknown): { code: string; message: string } {
  if (e instanceof HttpError || e instanceof RequestAuthError) {
    return { code: e.code, message: e.message };
  }
  if (
    e instanceof SyntaxError || e instanceof TypeError ||
    e instanceof RangeError
  ) return { code: "bad_request", message: e.message };
  console.error("capra server:", e);
  return { code: "internal", message: "Internal server error" };
}
