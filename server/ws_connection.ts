/**
 * One socket of the WebSocket hub and its flow control. Outgoing: pushes stop while the
 * socket's unsent bytes exceed the push buffer bound (the socket is then "lagging" and
 * remembers which repositories it missed); once it drained, the client is told to catch
 * up by reconciling them, or, for a client that does not understand that, the socket is
 * closed so it reconciles on reconnect. A socket that stays over the bound without
 * draining a byte for the stuck timeout is closed. Incoming: requests are answered one
 * after the other; while answers pile up unread (or too many requests wait), reading
 * pauses (guarded sockets) so neither direction grows the server's memory.
 *
 * @module
 */

import type { SessionRecord } from "../lib/core/session.ts";
import {
  encodeWsFrame,
  WS_FEATURE_CATCH_UP,
  type WsFrame,
} from "../lib/sync/ws_protocol.ts";
import { encodeWsFrameBytes, WsOpcode } from "./net/ws_framing.ts";
import type { ServerMetrics } from "./metrics.ts";

/** Requests of one socket waiting for their turn before reading pauses (or, without pausing, the socket closes). */
export const MAX_QUEUED_REQUESTS = 64;
/** Request bytes of one socket waiting for their turn before reading pauses (or it closes). */
export const MAX_QUEUED_REQUEST_BYTES = 16 * 1024 * 1024;
/**
 * Longest stretch between two lag checks that counts toward the stuck timeout: beyond
 * it, the server's own event loop was busy (it could not write either), which is not
 * the peer's fault.
 */
export const MAX_STALL_STEP_MS = 200;
/** Close code: pushes were left out and this client cannot be told to catch up: reconnect. */
export const WS_CLOSE_CATCH_UP = 4001;
/** Close code: the socket stayed over its buffer bound without draining (stuck). */
export const WS_CLOSE_STUCK = 4002;

/** What the hub needs of a socket: a WebSocket, or the guard's own (ws_socket.ts). */
export interface HubSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  /** Bytes written to the peer so far, when the socket counts them (progress while lagging). */
  readonly bytesWritten?: number;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  /** Sends a pre-encoded wire frame (the same bytes for every receiver). */
  sendEncoded?(frame: Uint8Array): void;
  pauseReading?(): void;
  resumeReading?(): void;
  maxMessageBytes?: number;
  onoversize?: ((maxBytes: number) => void) | null;
}

/** A push message encoded once for every receiver of it. */
export class PushFrame {
  #wire: Uint8Array | undefined;

  constructor(
    /** The encoded WsFrame. */
    readonly payload: Uint8Array,
    /** Commits it carries. */
    readonly commits: number,
  ) {}

  /** The whole WebSocket frame (header + payload), built once. */
  get wire(): Uint8Array {
    return this.#wire ??= encodeWsFrameBytes(WsOpcode.binary, this.payload);
  }
}

/** Flow-control settings of a hub's sockets. */
export interface FlowLimits {
  /** Above this many unsent bytes a socket gets no pushes (it catches up later). */
  readonly pushBufferBytes: number;
  /** A lagging socket that drains nothing for this long is closed. */
  readonly stuckTimeoutMs: number;
}

/** One socket of the hub. */
export class HubConnection {
  session?: SessionRecord;
  readonly subs = new Set<string>();
  /** Features from the hello (e.g. "catchup"). */
  features: ReadonlySet<string> = new Set();
  helloTimer?: ReturnType<typeof setTimeout>;
  idleTimer?: ReturnType<typeof setTimeout>;
  lastFrameAt = Date.now();
  /** Set while over the bound: the repositories whose pushes were left out. */
  lagging: Set<string> | undefined;
  #lastBuffered = 0;
  #lastWritten = 0;
  #lastCheckAt = 0;
  /** Time the socket lagged without progress, the server's own stalls left out. */
  #stalledMs = 0;
  #queued = 0;
  #queuedBytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #drainWaiters: (() => void)[] = [];
  #closed = false;

  constructor(
    readonly socket: HubSocket,
    private readonly flow: FlowLimits,
    private readonly metrics: ServerMetrics,
    /** Called when the socket starts lagging (the hub watches it drain). */
    private readonly onLag: (conn: HubConnection) => void,
  ) {}

  get open(): boolean {
    return !this.#closed && this.socket.readyState === 1;
  }

  /** Marks the connection closed (its socket reported the close). */
  markClosed(): void {
    this.#closed = true;
    this.#releaseWaiters();
  }

  /** Sends a control or answer frame (never left out: answers are what catching up needs). */
  send(frame: WsFrame | Uint8Array): void {
    if (!this.open) return;
    const bytes = frame instanceof Uint8Array ? frame : encodeWsFrame(frame);
    this.metrics.bytesOut += bytes.length;
    this.socket.send(bytes as Uint8Array<ArrayBuffer>);
    if (this.socket.bufferedAmount > this.flow.pushBufferBytes) {
      this.#enterLag(Date.now());
    }
  }

  /**
   * Hands pushes of `repo` to the socket, unless it is lagging or already past the bound:
   * then they are left out and the repository is remembered for the catch-up. Returns
   * the commits delivered.
   */
  deliver(repo: string, frames: readonly PushFrame[], now: number): number {
    if (!this.open) return 0;
    let bytes = 0, commits = 0;
    for (const f of frames) {
      bytes += f.payload.length;
      commits += f.commits;
    }
    // Over the bound already: left out (so a socket holds at most the bound plus one tick).
    if (
      !this.lagging && this.socket.bufferedAmount > this.flow.pushBufferBytes
    ) {
      this.#enterLag(now);
    }
    if (this.lagging) {
      this.lagging.add(repo);
      this.metrics.pushesSkipped += commits;
      return 0;
    }
    for (const f of frames) {
      if (this.socket.sendEncoded) this.socket.sendEncoded(f.wire);
      else this.socket.send(f.payload as Uint8Array<ArrayBuffer>);
    }
    this.metrics.bytesOut += bytes;
    return commits;
  }

  #enterLag(now: number): void {
    if (this.lagging) return;
    this.lagging = new Set();
    this.#lastBuffered = this.socket.bufferedAmount;
    this.#lastWritten = this.socket.bytesWritten ?? 0;
    this.#lastCheckAt = now;
    this.#stalledMs = 0;
    this.metrics.socketsLagged++;
    this.#updateReading();
    this.onLag(this);
  }

  /**
   * Looks at a lagging socket: drained below half the bound, it is told to catch up on
   * what it missed (or closed, for a client without the feature) and gets pushes again;
   * drained nothing for the stuck timeout, it is closed. Returns true while it lags.
   */
  checkLag(now: number): boolean {
    if (!this.lagging || !this.open) return false;
    const buffered = this.socket.bufferedAmount;
    if (buffered <= this.flow.pushBufferBytes / 2) {
      const repos = [...this.lagging];
      this.lagging = undefined;
      this.#releaseWaiters();
      this.#updateReading();
      if (!repos.length) return false;
      if (this.features.has(WS_FEATURE_CATCH_UP)) {
        this.metrics.catchUps++;
        this.send({ t: "catchup", repos });
      } else {
        this.metrics.catchUpCloses++;
        this.socket.close(WS_CLOSE_CATCH_UP, "fell behind: reconnect");
      }
      return false;
    }
    // Progress: bytes reached the peer (or, without that count, fewer are unsent); a
    // socket that reads while answers keep coming is slow, not stuck.
    const written = this.socket.bytesWritten ?? 0;
    const step = Math.min(
      Math.max(0, now - this.#lastCheckAt),
      MAX_STALL_STEP_MS,
    );
    this.#lastCheckAt = now;
    if (buffered < this.#lastBuffered || written > this.#lastWritten) {
      this.#lastBuffered = buffered;
      this.#lastWritten = written;
      this.#stalledMs = 0;
    } else if ((this.#stalledMs += step) >= this.flow.stuckTimeoutMs) {
      this.metrics.stuckCloses++;
      this.socket.close(WS_CLOSE_STUCK, "stuck: not reading");
      return false;
    }
    return true;
  }

  #releaseWaiters(): void {
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const r of w) r();
  }

  /**
   * Runs `handle` for an incoming frame after the ones before it, once unread answers
   * are back under the bound. Throws a RangeError when too many wait and the socket
   * cannot pause reading.
   */
  enqueue(bytes: number, handle: () => Promise<void>): void {
    this.#queued++;
    this.#queuedBytes += bytes;
    if (
      (this.#queued > MAX_QUEUED_REQUESTS ||
        this.#queuedBytes > MAX_QUEUED_REQUEST_BYTES) &&
      !this.socket.pauseReading
    ) {
      this.#queued--;
      this.#queuedBytes -= bytes;
      throw new RangeError(
        `More than ${MAX_QUEUED_REQUESTS} requests or ${MAX_QUEUED_REQUEST_BYTES} bytes waiting for answers`,
      );
    }
    this.#updateReading();
    this.#chain = this.#chain.then(async () => {
      try {
        while (this.open && this.lagging) {
          await new Promise<void>((r) => this.#drainWaiters.push(r));
        }
        if (this.open) await handle();
      } finally {
        this.#queued--;
        this.#queuedBytes -= bytes;
        this.#updateReading();
      }
    });
  }

  /** Pauses reading while requests or unread answers pile up; resumes when they went. */
  #updateReading(): void {
    const s = this.socket;
    if (!s.pauseReading || !s.resumeReading) return;
    const full = this.#queued >= MAX_QUEUED_REQUESTS ||
      this.#queuedBytes >= MAX_QUEUED_REQUEST_BYTES ||
      this.lagging !== undefined;
    if (full) s.pauseReading();
    else s.resumeReading();
  }
}
