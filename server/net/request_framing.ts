/**
 * Where HTTP/1.1 requests begin and end in a connection's client-to-server bytes, so the
 * connection guard can time each phase (headers, body, keep-alive) without parsing more
 * than it must: the head up to its blank line (bounded), then a `Content-Length` body or
 * a chunked one, pipelined requests one after the other. After a WebSocket upgrade (or
 * an HTTP/2 preface) the bytes are opaque.
 *
 * @module
 */

/** What a chunk of bytes moved the connection through. */
export type FramingEvent =
  /** The first byte of a request arrived. */
  | "request-start"
  /** The request's head is complete; its body (if any) follows. */
  | "head-complete"
  /** The request is complete (head and body). */
  | "request-complete"
  /** The connection left HTTP/1.1 (upgrade): no more framing. */
  | "upgraded";

/** The bytes cannot be framed: the guard closes the connection with `status`. */
export class FramingError extends Error {
  constructor(readonly status: 400 | 431, message: string) {
    super(message);
    this.name = "FramingError";
  }
}

/** Longest chunk-size or trailer line accepted. */
export const MAX_CHUNK_LINE_BYTES = 4096;

type State =
  | "idle"
  | "head"
  | "body"
  | "chunk-size"
  | "chunk-data"
  | "chunk-crlf"
  | "trailer"
  | "upgraded";

const CR = 13, LF = 10;
const latin1 = new TextDecoder("latin1");

/** Incremental request framer of one connection. */
export class RequestFramer {
  #state: State = "idle";
  #head: Uint8Array[] = [];
  #headBytes = 0;
  /** Body bytes (or chunk data bytes) still expected. */
  #remaining = 0;
  #line: number[] = [];
  #upgrade = false;

  constructor(readonly maxHeaderBytes: number) {}

  /** True once the connection left HTTP/1.1. */
  get upgraded(): boolean {
    return this.#state === "upgraded";
  }

  /** True between a request's first byte and its end. */
  get inRequest(): boolean {
    return this.#state !== "idle" && this.#state !== "upgraded";
  }

  /** Consumes client bytes; returns the events they caused, in order. */
  feed(bytes: Uint8Array): FramingEvent[] {
    const events: FramingEvent[] = [];
    let i = 0;
    while (i < bytes.length) {
      switch (this.#state) {
        case "upgraded":
          return events;
        case "idle":
          // Stray CRLFs between requests are allowed (RFC 9112 §2.2).
          if (bytes[i] === CR || bytes[i] === LF) {
            i++;
            continue;
          }
          this.#state = "head";
          this.#head = [];
          this.#headBytes = 0;
          events.push("request-start");
          continue;
        case "head": {
          const end = this.#findHeadEnd(bytes, i);
          const stop = end === -1 ? bytes.length : end;
          this.#headBytes += stop - i;
          if (this.#headBytes > this.maxHeaderBytes) {
            throw new FramingError(
              431,
              `Request head exceeds ${this.maxHeaderBytes} bytes`,
            );
          }
          this.#head.push(bytes.subarray(i, stop));
          i = stop;
          if (end !== -1) {
            events.push("head-complete");
            this.#startBody(events);
          }
          continue;
        }
        case "body": {
          const n = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#complete(events);
          continue;
        }
        case "chunk-size":
        case "trailer": {
          const b = bytes[i++];
          if (b === LF) {
            const line = latin1.decode(Uint8Array.from(this.#line))
              .replace(/\r$/, "");
            this.#line = [];
            this.#endLine(line, events);
          } else {
            this.#line.push(b);
            if (this.#line.length > MAX_CHUNK_LINE_BYTES) {
              throw new FramingError(400, "Chunk line too long");
            }
          }
          continue;
        }
        case "chunk-data": {
          const n = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) {
            this.#state = "chunk-crlf";
            this.#remaining = 2;
          }
          continue;
        }
        case "chunk-crlf": {
          const n = Math.min(this.#remaining, bytes.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = "chunk-size";
          continue;
        }
      }
    }
    return events;
  }

  /** Index just past the head's terminating blank line, or -1. */
  #findHeadEnd(bytes: Uint8Array, from: number): number {
    // The blank line may straddle chunks: look back over the head's last bytes.
    const tail: number[] = [];
    for (let k = this.#head.length - 1; k >= 0 && tail.length < 3; k--) {
      const part = this.#head[k];
      for (let j = part.length - 1; j >= 0 && tail.length < 3; j--) {
        tail.unshift(part[j]);
      }
    }
    for (let j = from; j < bytes.length; j++) {
      if (bytes[j] !== LF) continue;
      const prev = (back: number) => {
        const at = j - back;
        return at >= from ? bytes[at] : tail[tail.length - (from - at)];
      };
      if (prev(1) === LF || (prev(1) === CR && prev(2) === LF)) return j + 1;
    }
    return -1;
  }

  #startBody(events: FramingEvent[]): void {
    const size = this.#head.reduce((n, p) => n + p.length, 0);
    const all = new Uint8Array(size);
    let o = 0;
    for (const p of this.#head) {
      all.set(p, o);
      o += p.length;
    }
    this.#head = [];
    const lines = latin1.decode(all).split(/\r?\n/);
    const requestLine = lines[0] ?? "";
    if (requestLine.startsWith("PRI * HTTP/2")) {
      this.#state = "upgraded";
      events.push("upgraded");
      return;
    }
    let length: number | undefined, chunked = false, upgrade = false;
    let connectionUpgrade = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (!/^\d{1,15}$/.test(value)) {
          throw new FramingError(400, `Invalid Content-Length ${value}`);
        }
        const n = Number(value);
        if (length !== undefined && length !== n) {
          throw new FramingError(400, "Conflicting Content-Length headers");
        }
        length = n;
      } else if (name === "transfer-encoding") {
        chunked = value.toLowerCase().split(",").map((s) => s.trim())
          .includes("chunked");
      } else if (name === "upgrade") upgrade = value !== "";
      else if (name === "connection") {
        connectionUpgrade = value.toLowerCase().split(",").map((s) => s.trim())
          .includes("upgrade");
      }
    }
    this.#upgrade = upgrade && connectionUpgrade;
    if (chunked) {
      this.#state = "chunk-size";
    } else if (length) {
      this.#state = "body";
      this.#remaining = length;
    } else this.#complete(events);
  }

  #endLine(line: string, events: FramingEvent[]): void {
    if (this.#state === "trailer") {
      if (line === "") this.#complete(events);
      return;
    }
    const m = /^([0-9a-fA-F]{1,15})(?:;.*)?$/.exec(line.trim());
    if (!m) throw new FramingError(400, `Invalid chunk size line "${line}"`);
    const n = parseInt(m[1], 16);
    if (n === 0) this.#state = "trailer";
    else {
      this.#state = "chunk-data";
      this.#remaining = n;
    }
  }

  #complete(events: FramingEvent[]): void {
    events.push("request-complete");
    if (this.#upgrade) {
      this.#state = "upgraded";
      events.push("upgraded");
    } else this.#state = "idle";
  }
}
