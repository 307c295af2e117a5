/**
 * Test helper: a client WebSocket over a raw TCP connection whose reading can be paused,
 * for a socket that stops reading (the browser API cannot). It has the members
 * lib/sync's WsConnection uses, so a SyncClient runs on it (`WebSocket` option).
 */

import {
  closePayload,
  encodeWsFrameBytes,
  WsFrameReader,
  WsOpcode,
} from "../server/net/ws_framing.ts";

const utf8 = new TextEncoder();

/** Every socket made, in order (tests find theirs here). */
export const RAW_SOCKETS: PausableWebSocket[] = [];

/** A WebSocket client that can stop reading. */
export class PausableWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readyState = 0;
  binaryType = "arraybuffer";
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  /** Close code the server sent, when it did. */
  closeCode: number | undefined;
  /** Binary messages received. */
  received = 0;
  #conn: Deno.TcpConn | undefined;
  #paused = false;
  #resume: (() => void) | undefined;
  #closed = false;

  constructor(readonly url: string) {
    RAW_SOCKETS.push(this);
    this.#open().catch(() => this.#end(1006));
  }

  /** Stops reading the connection (the kernel buffers fill, then the server's). */
  pause(): void {
    this.#paused = true;
  }

  /** Reads again. */
  resume(): void {
    this.#paused = false;
    this.#resume?.();
    this.#resume = undefined;
  }

  async #open(): Promise<void> {
    const u = new URL(this.url);
    const conn = await Deno.connect({
      hostname: u.hostname,
      port: Number(u.port),
    });
    this.#conn = conn;
    const key = btoa(
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
    );
    await conn.write(utf8.encode(
      `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const buf = new Uint8Array(64 * 1024);
    let head = new Uint8Array(0);
    let end = -1;
    while (end === -1) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed during the handshake");
      const next = new Uint8Array(head.length + n);
      next.set(head);
      next.set(buf.subarray(0, n), head.length);
      head = next;
      end = new TextDecoder("latin1").decode(head).indexOf("\r\n\r\n");
    }
    const text = new TextDecoder("latin1").decode(head.subarray(0, end));
    if (!text.startsWith("HTTP/1.1 101")) {
      throw new Error(`refused: ${text.split("\r\n")[0]}`);
    }
    this.readyState = 1;
    this.onopen?.(new Event("open"));
    const reader = new WsFrameReader(false, 64 * 1024 * 1024);
    let pending: Uint8Array = head.slice(end + 4);
    for (;;) {
      if (pending.length) {
        for (const m of reader.push(pending)) {
          if (m.opcode === WsOpcode.binary) {
            this.received++;
            this.onmessage?.({ data: m.payload.slice().buffer });
          } else if (m.opcode === WsOpcode.ping) {
            this.#write(WsOpcode.pong, m.payload);
          } else if (m.opcode === WsOpcode.close) {
            this.closeCode = m.payload.length >= 2
              ? (m.payload[0] << 8) | m.payload[1]
              : 1005;
            this.#write(WsOpcode.close, m.payload.subarray(0, 2));
            this.#end(this.closeCode);
            return;
          }
        }
      }
      if (this.#paused) {
        await new Promise<void>((r) => this.#resume = r);
        if (this.#closed) return;
      }
      const n = await conn.read(buf);
      if (n === null) break;
      pending = buf.slice(0, n);
    }
    this.#end(1006);
  }

  #write(opcode: (typeof WsOpcode)[keyof typeof WsOpcode], p: Uint8Array) {
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const frame = encodeWsFrameBytes(opcode, p, mask);
    (async () => {
      let o = 0;
      while (o < frame.length) o += await this.#conn!.write(frame.subarray(o));
    })().catch(() => {});
  }

  send(data: Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) return;
    this.#write(
      WsOpcode.binary,
      data instanceof Uint8Array ? data : new Uint8Array(data),
    );
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    if (this.#conn) this.#write(WsOpcode.close, closePayload(code, reason));
    setTimeout(() => this.#end(code), 50);
  }

  #end(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.readyState = 3;
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#resume?.();
    this.onclose?.({ code, reason: "" });
  }
}
