/**
 * The server end of a WebSocket on a TCP connection the connection guard owns (the
 * guard answered the upgrade itself: ws_upgrade.ts), so pushes go straight from the hub
 * to the client's socket instead of through Deno.serve and the relay. It speaks RFC 6455
 * without extensions and offers the part of the `WebSocket` API the hub uses, plus what
 * the browser API cannot: frames sent in one tick leave in one write
 * (`bufferedAmount` counts them until the kernel took them), a pre-encoded frame can go
 * to many sockets as the same bytes ({@link GuardedWebSocket.sendEncoded}), and reading
 * can be paused, so a client that does not read its answers cannot make the server
 * buffer its requests either.
 *
 * Liveness: a ping every `pingIntervalMs`; a connection that sends no byte for
 * `idleTimeoutMs` (a live peer answers pings) is dropped.
 *
 * @module
 */

import {
  closePayload,
  encodeWsFrameBytes,
  WsFrameReader,
  WsOpcode,
  type WsOpcodeValue,
  WsProtocolError,
} from "./ws_framing.ts";

/** Bytes written to the connection at once, at most (frames queued in one tick are joined up to it). */
export const WS_WRITE_CHUNK_BYTES = 256 * 1024;
/** After sending a close frame, the peer's close is awaited this long before the TCP close. */
export const WS_CLOSE_WAIT_MS = 2_000;
const READ_BUFFER_BYTES = 64 * 1024;

/** Ready states (the WebSocket API's numbers). */
export const WsReadyState = {
  connecting: 0,
  open: 1,
  closing: 2,
  closed: 3,
} as const;

/** Options of {@link GuardedWebSocket}. */
export interface GuardedWebSocketOptions {
  /** Largest message accepted (the hub lowers it until the hello). */
  readonly maxMessageBytes: number;
  readonly pingIntervalMs: number;
  /** No byte from the peer for this long: the connection is dropped. */
  readonly idleTimeoutMs: number;
}

/** What `onclose` receives. */
export interface WsCloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** A server-side WebSocket on a raw connection. */
export class GuardedWebSocket {
  readyState: number = WsReadyState.connecting;
  binaryType: "arraybuffer" | "blob" = "arraybuffer";
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: { data: ArrayBuffer | string }) => void) | null = null;
  onclose: ((ev: WsCloseInfo) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  /**
   * Called instead of closing with 1009 when a message exceeds `maxMessageBytes` (the hub
   * answers with its own error and closes); reading stops.
   */
  onoversize: ((maxBytes: number) => void) | null = null;

  #conn: Deno.Conn | undefined;
  #reader: WsFrameReader;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #written = 0;
  #writing = false;
  #paused = false;
  #resume: (() => void) | undefined;
  #sentClose = false;
  #closeInfo: WsCloseInfo | undefined;
  #lastReadAt = performance.now();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #ended = Promise.withResolvers<void>();

  constructor(private readonly options: GuardedWebSocketOptions) {
    this.#reader = new WsFrameReader(true, options.maxMessageBytes);
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Bytes written to the connection so far (grows while the peer reads). */
  get bytesWritten(): number {
    return this.#written;
  }

  /** Largest message accepted from now on. */
  get maxMessageBytes(): number {
    return this.#reader.maxMessageBytes;
  }

  set maxMessageBytes(n: number) {
    this.#reader.maxMessageBytes = n;
  }

  /** Resolves once the connection is closed (the guard releases it then). */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /**
   * Starts the socket on `conn` once the 101 response went out; `leftover` are bytes the
   * client sent after its request head.
   */
  start(conn: Deno.Conn, leftover: Uint8Array): void {
    if (this.readyState !== WsReadyState.connecting) {
      // Closed before it opened.
      try {
        conn.close();
      } catch { /* already closed */ }
      return;
    }
    this.#conn = conn;
    this.readyState = WsReadyState.open;
    this.#lastReadAt = performance.now();
    this.#pingTimer = setInterval(() => this.#tick(), this.#tickMs());
    this.onopen?.(new Event("open"));
    this.#readLoop(leftover);
    this.#flush();
  }

  #tickMs(): number {
    return Math.max(
      50,
      Math.min(this.options.pingIntervalMs, this.options.idleTimeoutMs / 3),
    );
  }

  #lastPingAt = performance.now();

  #tick(): void {
    const now = performance.now();
    // While reading is paused the peer's bytes wait in the kernel: not idleness.
    if (this.#paused) this.#lastReadAt = now;
    else if (now - this.#lastReadAt > this.options.idleTimeoutMs) {
      this.#drop();
      return;
    }
    if (now - this.#lastPingAt >= this.options.pingIntervalMs) {
      this.#lastPingAt = now;
      this.#enqueue(encodeWsFrameBytes(WsOpcode.ping, new Uint8Array(0)));
    }
  }

  /** Sends one message (binary for bytes, text for a string). */
  send(data: Uint8Array | ArrayBuffer | string): void {
    if (this.readyState > WsReadyState.open || this.#sentClose) return;
    const frame = typeof data === "string"
      ? encodeWsFrameBytes(WsOpcode.text, utf8.encode(data))
      : encodeWsFrameBytes(
        WsOpcode.binary,
        data instanceof Uint8Array ? data : new Uint8Array(data),
      );
    this.#enqueue(frame);
  }

  /**
   * Sends an already encoded frame (see `encodeWsFrameBytes`: unmasked, final). The same
   * bytes may go to many sockets; they are never modified.
   */
  sendEncoded(frame: Uint8Array): void {
    if (this.readyState > WsReadyState.open || this.#sentClose) return;
    this.#enqueue(frame);
  }

  /** Starts the closing handshake. */
  close(code = 1000, reason = ""): void {
    if (this.#sentClose || this.readyState === WsReadyState.closed) return;
    this.#sentClose = true;
    this.#closeInfo ??= { code, reason, wasClean: true };
    if (this.readyState === WsReadyState.connecting) {
      // Not started (the upgrade was refused, or the hub closed it meanwhile).
      this.#drop();
      return;
    }
    this.readyState = WsReadyState.closing;
    this.#enqueue(
      encodeWsFrameBytes(WsOpcode.close, closePayload(code, reason)),
    );
    this.#closeTimer = setTimeout(() => this.#drop(), WS_CLOSE_WAIT_MS);
  }

  /** Stops reading the connection until {@link resumeReading}. */
  pauseReading(): void {
    this.#paused = true;
  }

  /** Reads again after {@link pauseReading}. */
  resumeReading(): void {
    this.#paused = false;
    const r = this.#resume;
    this.#resume = undefined;
    r?.();
  }

  /** True while reading is paused. */
  get readingPaused(): boolean {
    return this.#paused;
  }

  #enqueue(frame: Uint8Array): void {
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (!this.#writing && this.#conn) {
      this.#writing = true;
      // Everything sent in this tick leaves together.
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    const conn = this.#conn;
    if (!conn) return;
    this.#writing = true;
    try {
      while (this.#queue.length) {
        const chunk = this.#take();
        let o = 0;
        while (o < chunk.length) {
          const n = await conn.write(chunk.subarray(o));
          o += n;
          this.#queued -= n;
          this.#written += n;
        }
      }
    } catch {
      this.#drop();
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#sentClose && this.#closeInfo && this.#peerClosed) this.#drop();
    if (this.#sentClose && this.readyState === WsReadyState.closing) {
      this.#closeTimer ??= setTimeout(() => this.#drop(), WS_CLOSE_WAIT_MS);
    }
  }

  /** The next bytes to write: one frame as it is, or several joined. */
  #take(): Uint8Array {
    const first = this.#queue[0];
    if (this.#queue.length === 1 || first.length >= WS_WRITE_CHUNK_BYTES) {
      this.#queue.shift();
      return first;
    }
    let n = 0, k = 0;
    while (
      k < this.#queue.length &&
      n + this.#queue[k].length <= WS_WRITE_CHUNK_BYTES
    ) n += this.#queue[k++].length;
    if (k === 1) {
      this.#queue.shift();
      return first;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const part of this.#queue.splice(0, k)) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  }

  #peerClosed = false;

  async #readLoop(leftover: Uint8Array): Promise<void> {
    const conn = this.#conn!;
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      if (leftover.length) this.#onBytes(leftover);
      while (this.readyState !== WsReadyState.closed && !this.#peerClosed) {
        if (this.#paused) {
          await new Promise<void>((r) => this.#resume = r);
          continue;
        }
        const n = await conn.read(buf);
        if (n === null) break;
        this.#lastReadAt = performance.now();
        this.#onBytes(buf.subarray(0, n));
      }
    } catch (e) {
      if (e instanceof WsProtocolError) {
        if (e.closeCode === 1009 && this.onoversize) {
          // The hub answers with its own error and closes; nothing more is read.
          this.onoversize(this.maxMessageBytes);
          return;
        }
        this.#failWith(e.closeCode, e.message);
        return;
      }
    }
    if (!this.#peerClosed) {
      this.#closeInfo ??= { code: 1006, reason: "", wasClean: false };
      this.#drop();
    }
  }

  #onBytes(bytes: Uint8Array): void {
    for (const m of this.#reader.push(bytes)) {
      if (this.readyState === WsReadyState.closed) return;
      this.#onMessage(m.opcode, m.payload);
      if (this.#peerClosed) return;
    }
  }

  #onMessage(opcode: WsOpcodeValue, payload: Uint8Array): void {
    switch (opcode) {
      case WsOpcode.ping:
        if (!this.#sentClose) {
          this.#enqueue(encodeWsFrameBytes(WsOpcode.pong, payload));
        }
        return;
      case WsOpcode.pong:
        return;
      case WsOpcode.close: {
        this.#peerClosed = true;
        const code = payload.length >= 2
          ? (payload[0] << 8) | payload[1]
          : 1005;
        let reason = "";
        try {
          reason = utf8Strict.decode(payload.subarray(2));
        } catch { /* invalid reason: ignored */ }
        this.#closeInfo ??= { code, reason, wasClean: true };
        if (!this.#sentClose) {
          this.#sentClose = true;
          this.readyState = WsReadyState.closing;
          this.#enqueue(
            encodeWsFrameBytes(
              WsOpcode.close,
              payload.length >= 2 ? payload.subarray(0, 2) : new Uint8Array(0),
            ),
          );
        }
        // Once the echo is written (or at once when nothing is queued), the TCP closes.
        if (!this.#writing && !this.#queue.length) this.#drop();
        else {this.#closeTimer ??= setTimeout(() =>
            this.#drop(), WS_CLOSE_WAIT_MS);}
        return;
      }
      case WsOpcode.text: {
        let text: string;
        try {
          text = utf8Strict.decode(payload);
        } catch {
          this.#failWith(1007, "Text frame is not valid UTF-8");
          return;
        }
        this.onmessage?.({ data: text });
        return;
      }
      default:
        this.onmessage?.({
          data: payload.byteOffset === 0 &&
              payload.byteLength === payload.buffer.byteLength
            ? payload.buffer as ArrayBuffer
            : payload.slice().buffer as ArrayBuffer,
        });
    }
  }

  #failWith(code: number, reason: string): void {
    this.#closeInfo ??= { code, reason, wasClean: false };
    this.close(code, reason);
  }

  /** Closes the TCP connection and reports the close (once). */
  #drop(): void {
    if (this.readyState === WsReadyState.closed) return;
    this.readyState = WsReadyState.closed;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#closeTimer);
    this.#queue = [];
    this.#queued = 0;
    this.#resume?.();
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    const info = this.#closeInfo ?? { code: 1006, reason: "", wasClean: false };
    try {
      this.onclose?.(info);
    } finally {
      this.#ended.resolve();
    }
  }
}
