/**
 * WebSocket wire frames (RFC 6455 §5): encoding one frame (masked when a client sends
 * it), and an incremental reader that splits a byte stream into frames and reassembles
 * fragmented messages under a size cap. Used by the server's own WebSocket endpoint
 * (ws_socket.ts) and by clients that speak raw TCP (the load generator, tests that need
 * a socket which stops reading).
 *
 * @module
 */

/** Frame opcodes. */
export const WsOpcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** A frame opcode. */
export type WsOpcodeValue = typeof WsOpcode[keyof typeof WsOpcode];

/** Largest payload of a control frame (close, ping, pong). */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;

/** The GUID of the opening handshake's accept hash (RFC 6455 §1.3). */
export const WS_HANDSHAKE_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A protocol violation: the endpoint closes with `closeCode` (1002, 1007 or 1009). */
export class WsProtocolError extends Error {
  constructor(readonly closeCode: 1002 | 1007 | 1009, message: string) {
    super(message);
    this.name = "WsProtocolError";
  }
}

/** Bytes of the header of a frame with this payload length (mask excluded). */
export function wsHeaderBytes(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
}

/**
 * Writes a final frame's header for `payloadLength` bytes at `out[at]`; returns the
 * offset after it. With `mask`, the mask bit and the 4 mask bytes follow.
 */
export function writeWsHeader(
  out: Uint8Array,
  at: number,
  opcode: WsOpcodeValue,
  payloadLength: number,
  mask?: Uint8Array,
): number {
  const m = mask ? 0x80 : 0;
  out[at++] = 0x80 | opcode;
  if (payloadLength < 126) out[at++] = m | payloadLength;
  else if (payloadLength < 65536) {
    out[at++] = m | 126;
    out[at++] = payloadLength >>> 8;
    out[at++] = payloadLength & 0xff;
  } else {
    out[at++] = m | 127;
    const dv = new DataView(out.buffer, out.byteOffset + at, 8);
    dv.setUint32(0, Math.floor(payloadLength / 2 ** 32));
    dv.setUint32(4, payloadLength >>> 0);
    at += 8;
  }
  if (mask) {
    out.set(mask.subarray(0, 4), at);
    at += 4;
  }
  return at;
}

/**
 * One final frame carrying `payload`. With `mask` (4 bytes, what clients must send) the
 * payload is masked in the copy; the input is left unchanged.
 */
export function encodeWsFrameBytes(
  opcode: WsOpcodeValue,
  payload: Uint8Array,
  mask?: Uint8Array,
): Uint8Array {
  const head = wsHeaderBytes(payload.length) + (mask ? 4 : 0);
  const out = new Uint8Array(head + payload.length);
  const at = writeWsHeader(out, 0, opcode, payload.length, mask);
  out.set(payload, at);
  if (mask) {
    for (let i = 0; i < payload.length; i++) out[at + i] ^= mask[i & 3];
  }
  return out;
}

/** A complete message or a control frame, as {@link WsFrameReader} hands it out. */
export interface WsMessage {
  readonly opcode: WsOpcodeValue;
  /** The (unmasked) payload; for data messages every fragment joined. */
  readonly payload: Uint8Array;
}

/**
 * Splits a connection's incoming bytes into messages. `masked` says whether the peer
 * must mask its frames (a server reads masked client frames; a client reads unmasked
 * ones): a frame that disagrees is a protocol error, as is a control frame that is
 * fragmented or longer than 125 bytes, a continuation without a start, or a message
 * longer than `maxMessageBytes` (1009, checked from the header before its payload is
 * buffered).
 */
export class WsFrameReader {
  #buf: Uint8Array = new Uint8Array(0);
  #fragments: Uint8Array[] = [];
  #fragmentOpcode: WsOpcodeValue | 0 = 0;
  #fragmentBytes = 0;

  constructor(
    readonly masked: boolean,
    /** Largest message accepted (may change between chunks). */
    public maxMessageBytes: number,
  ) {}

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.#buf.length + this.#fragmentBytes;
  }

  /** Consumes `chunk`; returns the messages it completed, in order. */
  push(chunk: Uint8Array): WsMessage[] {
    let buf: Uint8Array;
    if (this.#buf.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    const out: WsMessage[] = [];
    let at = 0;
    for (;;) {
      const used = this.#frame(buf, at, out);
      if (used === 0) break;
      at += used;
    }
    // Keep only the unfinished tail (a copy: `chunk` may be a reused read buffer).
    this.#buf = at === buf.length ? new Uint8Array(0) : buf.slice(at);
    return out;
  }

  /** Reads one frame at `at`; returns its length, or 0 when it is not complete yet. */
  #frame(buf: Uint8Array, at: number, out: WsMessage[]): number {
    const left = buf.length - at;
    if (left < 2) return 0;
    const b0 = buf[at], b1 = buf[at + 1];
    if (b0 & 0x70) {
      throw new WsProtocolError(1002, "Reserved bits set (no extension)");
    }
    const fin = (b0 & 0x80) !== 0;
    const opcode = (b0 & 0x0f) as WsOpcodeValue;
    const isMasked = (b1 & 0x80) !== 0;
    if (isMasked !== this.masked) {
      throw new WsProtocolError(
        1002,
        this.masked ? "Client frame is not masked" : "Server frame is masked",
      );
    }
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (left < 4) return 0;
      len = (buf[at + 2] << 8) | buf[at + 3];
      head = 4;
    } else if (len === 127) {
      if (left < 10) return 0;
      const dv = new DataView(buf.buffer, buf.byteOffset + at + 2, 8);
      const hi = dv.getUint32(0);
      if (hi > 0x1fffff) {
        throw new WsProtocolError(1009, "Frame length beyond 2^53");
      }
      len = hi * 2 ** 32 + dv.getUint32(4);
      head = 10;
    }
    const control = opcode >= 0x8;
    if (control) {
      if (opcode > WsOpcode.pong) {
        throw new WsProtocolError(1002, `Unknown opcode ${opcode}`);
      }
      if (!fin) throw new WsProtocolError(1002, "Fragmented control frame");
      if (len > MAX_CONTROL_PAYLOAD_BYTES) {
        throw new WsProtocolError(
          1002,
          `Control frame of ${len} bytes (at most ${MAX_CONTROL_PAYLOAD_BYTES})`,
        );
      }
    } else if (opcode > WsOpcode.binary) {
      throw new WsProtocolError(1002, `Unknown opcode ${opcode}`);
    } else if (opcode === WsOpcode.continuation) {
      if (!this.#fragmentOpcode) {
        throw new WsProtocolError(1002, "Continuation without a message");
      }
    } else if (this.#fragmentOpcode) {
      throw new WsProtocolError(1002, "New message inside a fragmented one");
    }
    if (!control && this.#fragmentBytes + len > this.maxMessageBytes) {
      throw new WsProtocolError(
        1009,
        `Message of more than ${this.maxMessageBytes} bytes`,
      );
    }
    const maskAt = at + head;
    if (isMasked) head += 4;
    if (left < head + len) return 0;
    const start = at + head;
    let payload: Uint8Array;
    if (isMasked) {
      payload = buf.slice(start, start + len);
      const m0 = buf[maskAt], m1 = buf[maskAt + 1];
      const m2 = buf[maskAt + 2], m3 = buf[maskAt + 3];
      const mask = [m0, m1, m2, m3];
      for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
    } else payload = buf.slice(start, start + len);
    if (control) out.push({ opcode, payload });
    else if (fin && opcode !== WsOpcode.continuation) {
      out.push({ opcode, payload });
    } else {
      if (opcode !== WsOpcode.continuation) this.#fragmentOpcode = opcode;
      this.#fragments.push(payload);
      this.#fragmentBytes += len;
      if (fin) {
        const whole = new Uint8Array(this.#fragmentBytes);
        let o = 0;
        for (const f of this.#fragments) {
          whole.set(f, o);
          o += f.length;
        }
        out.push({
          opcode: this.#fragmentOpcode as WsOpcodeValue,
          payload: whole,
        });
        this.#fragments = [];
        this.#fragmentBytes = 0;
        this.#fragmentOpcode = 0;
      }
    }
    return head + len;
  }
}

/** The close frame payload: a 2-byte code and a UTF-8 reason (cut to fit 125 bytes). */
export function closePayload(code: number, reason = ""): Uint8Array {
  let r = new TextEncoder().encode(reason);
  if (r.length > MAX_CONTROL_PAYLOAD_BYTES - 2) {
    r = r.subarray(0, MAX_CONTROL_PAYLOAD_BYTES - 2);
  }
  const out = new Uint8Array(2 + r.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

/** The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`. */
export async function wsAcceptKey(clientKey: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(clientKey.trim() + WS_HANDSHAKE_GUID),
  );
  let bin = "";
  for (const b of new Uint8Array(digest)) bin += String.fromCharCode(b);
  return btoa(bin);
}
