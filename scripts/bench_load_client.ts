/**
 * One load-generator process of the load bench (bench_load.ts starts two): `count` light
 * clients, each with its own session and in-memory database, follow the shared
 * repository and their own over a raw-TCP WebSocket. Each writes one commit per second
 * to its own repository, and one client in ten one per second to the shared one. The
 * clients do not verify or store what the server pushes (a real client would): they
 * count the commits in each push, and a few samplers decode the shared commits'
 * timestamps to measure propagation. The server is the real `capra serve`.
 *
 * Protocol on stdio: prints `ready` once every client is subscribed, waits for a line
 * `start <epoch ms> <run ms>` on stdin, runs, drains, prints one JSON report line.
 *
 * Usage: deno run -A scripts/bench_load_client.ts URL FIRST COUNT SAMPLERS
 *
 * @module
 */

import { openDatabase, ServerSession } from "../mod.ts";
import type { Database, Item } from "../mod.ts";
import type { Schema } from "../lib/schema/schema.ts";
import { encodeSyncMessage } from "../lib/sync/protocol.ts";
import { encodeWsFrame, WS_PATH } from "../lib/sync/ws_protocol.ts";
import { signRequest } from "../lib/sync/request_signing.ts";
import { MsgpackReader } from "../lib/encoding/msgpack.ts";
import {
  encodeWsFrameBytes,
  WsFrameReader,
  WsOpcode,
} from "../server/net/ws_framing.ts";

/** The schema of the load items. */
export const LOAD_SCHEMA: Schema = {
  ns: "load",
  version: 1,
  fields: { n: { type: "number" }, pad: { type: "string" } },
};
/** The repository every client follows. */
export const SHARED_REPO = "/load/shared";
/** One client in this many writes to the shared repository. */
export const SHARED_WRITER_EVERY = 10;
/** How long clients keep reading after they stopped writing. */
const DRAIN_MS = 3_000;
/** Clients set up at once (sessions, sockets). */
const SETUP_CONCURRENCY = 50;
const READ_BUFFER_BYTES = 256 * 1024;

const utf8 = new TextEncoder();

/** What a process reports at the end. */
export interface LoadReport {
  readonly clients: number;
  readonly commitsSent: number;
  readonly sharedSent: number;
  readonly acked: number;
  readonly refused: Record<string, number>;
  readonly pushFrames: number;
  readonly pushCommits: number;
  readonly pushBytes: number;
  readonly catchups: number;
  readonly disconnects: number;
  readonly ackTimeouts: number;
  /** Propagation of shared commits to the samplers (ms), every sample. */
  readonly latencies: number[];
  /** Shared commits of the run each sampler received. */
  readonly sampled: number[];
}

interface Stats {
  commitsSent: number;
  sharedSent: number;
  acked: number;
  refused: Record<string, number>;
  pushFrames: number;
  pushCommits: number;
  pushBytes: number;
  catchups: number;
  disconnects: number;
  ackTimeouts: number;
  latencies: number[];
}

/** Reads `ts` (HLC, ms × 1024) and the item key of a stored commit record. */
function commitTsAndKey(record: Uint8Array): { ts: number; key: string } {
  // Record payload: [kind][64-byte signature][canonical commit].
  const r = new MsgpackReader(record, 65);
  r.readArrayHeader();
  r.skipValue(); // version
  const key = r.readString();
  r.skipValue(); // parents
  r.skipValue(); // session
  return { ts: r.readNumber(), key };
}

/** The commits array of a push frame's sync message (views into `frame`). */
function pushedCommits(frame: Uint8Array): {
  repo: string;
  commits: Uint8Array[];
} | undefined {
  const r = new MsgpackReader(frame);
  let msg: Uint8Array | undefined;
  let t: string | undefined;
  for (let n = r.readMapHeader(); n > 0; n--) {
    const k = r.readString();
    if (k === "t") t = r.readString();
    else if (k === "msg") msg = r.readBinary();
    else r.skipValue();
  }
  if (t !== "push" || !msg) return undefined;
  const m = new MsgpackReader(msg);
  let repo = "";
  const commits: Uint8Array[] = [];
  for (let n = m.readMapHeader(); n > 0; n--) {
    const k = m.readString();
    if (k === "repo") repo = m.readString();
    else if (k === "commits") {
      for (let c = m.readArrayHeader(); c > 0; c--) {
        commits.push(m.readBinary());
      }
    } else m.skipValue();
  }
  return { repo, commits };
}

/** The `t` of a frame (keys are sorted: `t` comes after `msg`, `id`, `error`). */
function frameType(frame: Uint8Array): string {
  const r = new MsgpackReader(frame);
  for (let n = r.readMapHeader(); n > 0; n--) {
    if (r.readString() === "t") return r.readString();
    r.skipValue();
  }
  return "";
}

class LightClient {
  readonly own: string;
  readonly writesShared: boolean;
  #conn: Deno.TcpConn | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, number>();
  #ownItem: Item | undefined;
  #sharedItem: Item | undefined;
  #n = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #welcomed: PromiseWithResolvers<void> = Promise.withResolvers();
  /** Shared commits of other clients received during the run (samplers only). */
  readonly seen = new Set<string>();
  #runStart = Infinity;

  constructor(
    readonly index: number,
    readonly db: Database,
    readonly session: ServerSession,
    readonly url: URL,
    readonly sampler: boolean,
    readonly stats: Stats,
  ) {
    this.own = `/load/c${index}`;
    this.writesShared = index % SHARED_WRITER_EVERY === 0;
    db.onCommits((repo, nodes) => {
      const commits = nodes.map((n) => repo.commitRecord(n.commit.id)!);
      this.#request(encodeSyncMessage({
        repo: repo.path,
        commits,
        sessions: [session.encoded],
      }));
    });
  }

  async connect(): Promise<void> {
    const conn = await Deno.connect({
      hostname: this.url.hostname,
      port: Number(this.url.port),
    });
    conn.setNoDelay(true);
    this.#conn = conn;
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(
      new Uint8Array(16),
    )));
    await writeAll(
      conn,
      utf8.encode(
        `GET ${WS_PATH} HTTP/1.1\r\nHost: ${this.url.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const rest = await readHandshake(conn);
    this.#welcomed = Promise.withResolvers();
    this.#readLoop(conn, rest);
    this.#send(encodeWsFrame({
      t: "hello",
      fields: await signRequest(
        { sign: (m) => this.db.sign(m) },
        this.session.encoded,
        "GET",
        WS_PATH,
        new Uint8Array(0),
      ),
    }));
    await this.#welcomed.promise;
    this.#send(encodeWsFrame({ t: "sub", repo: SHARED_REPO }));
    this.#send(encodeWsFrame({ t: "sub", repo: this.own }));
  }

  #send(payload: Uint8Array): void {
    const conn = this.#conn;
    if (!conn) return;
    const mask = crypto.getRandomValues(new Uint8Array(4));
    writeAll(conn, encodeWsFrameBytes(WsOpcode.binary, payload, mask)).catch(
      () => {},
    );
  }

  #request(msg: Uint8Array): void {
    const id = this.#nextId++;
    this.#pending.set(id, Date.now());
    this.#send(encodeWsFrame({ t: "req", id, msg }));
  }

  async #readLoop(conn: Deno.TcpConn, first: Uint8Array): Promise<void> {
    const reader = new WsFrameReader(false, 64 * 1024 * 1024);
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      if (first.length) this.#onBytes(conn, reader, first);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        this.#onBytes(conn, reader, buf.subarray(0, n));
      }
    } catch { /* reset */ }
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    if (this.#stopped) return;
    this.stats.disconnects++;
    // Keep the workload going: reconnect after a second.
    setTimeout(() => this.connect().catch(() => {}), 1000);
  }

  #onBytes(conn: Deno.TcpConn, reader: WsFrameReader, bytes: Uint8Array) {
    for (const m of reader.push(bytes)) {
      if (m.opcode === WsOpcode.ping) {
        const mask = crypto.getRandomValues(new Uint8Array(4));
        writeAll(conn, encodeWsFrameBytes(WsOpcode.pong, m.payload, mask))
          .catch(() => {});
        continue;
      }
      if (m.opcode === WsOpcode.close) {
        conn.close();
        return;
      }
      if (m.opcode !== WsOpcode.binary) continue;
      this.#onFrame(m.payload);
    }
  }

  #onFrame(frame: Uint8Array): void {
    const t = frameType(frame);
    if (t === "push") {
      const p = pushedCommits(frame);
      if (!p) return;
      this.stats.pushFrames++;
      this.stats.pushBytes += frame.length;
      this.stats.pushCommits += p.commits.length;
      if (this.sampler && p.repo === SHARED_REPO) {
        const now = Date.now();
        for (const c of p.commits) {
          const { ts, key } = commitTsAndKey(c);
          const at = ts / 1024;
          if (at < this.#runStart) continue;
          this.seen.add(`${key}@${ts}`);
          this.stats.latencies.push(now - at);
        }
      }
    } else if (t === "res") {
      const r = new MsgpackReader(frame);
      let id = -1;
      let code: string | undefined;
      for (let n = r.readMapHeader(); n > 0; n--) {
        const k = r.readString();
        if (k === "id") id = r.readNumber();
        else if (k === "error") {
          const e = r.readValue() as { code?: string };
          code = String(e?.code);
        } else r.skipValue();
      }
      if (!this.#pending.delete(id)) return;
      if (code) this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1;
      else this.stats.acked++;
    } else if (t === "welcome") this.#welcomed.resolve();
    else if (t === "catchup") this.stats.catchups++;
    else if (t === "error") {
      const r = new MsgpackReader(frame);
      let code = "error:?";
      for (let n = r.readMapHeader(); n > 0; n--) {
        const k = r.readString();
        if (k === "error") {
          code = `error:${(r.readValue() as { code?: string })?.code}`;
        } else r.skipValue();
      }
      this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1;
    }
  }

  /** Writes once a second from `startAt` (phase spread by the index) until stopped. */
  run(startAt: number, offsetMs: number): void {
    this.#runStart = startAt;
    const begin = () => {
      if (this.#stopped) return;
      this.#write();
      this.#timer = setInterval(() => this.#write(), 1000);
    };
    setTimeout(begin, Math.max(0, startAt - Date.now()) + offsetMs);
  }

  #write(): void {
    if (this.#stopped || !this.#conn) return;
    const n = ++this.#n;
    this.#ownItem ??= this.db.create(`${this.own}/x`, "load/1", { n });
    if (n > 1) this.#ownItem.set("n", n);
    this.stats.commitsSent++;
    if (this.writesShared) {
      this.#sharedItem ??= this.db.create(
        `${SHARED_REPO}/c${this.index}`,
        "load/1",
        { n },
      );
      if (n > 1) this.#sharedItem.set("n", n);
      this.stats.commitsSent++;
      this.stats.sharedSent++;
    }
  }

  stopWriting(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Requests still unanswered (counted as timeouts at the end). */
  get unanswered(): number {
    return this.#pending.size;
  }

  close(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = undefined;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await conn.write(bytes.subarray(o));
}

/** Reads the 101 response; returns the bytes after it. */
async function readHandshake(conn: Deno.Conn): Promise<Uint8Array> {
  const buf = new Uint8Array(8192);
  let have = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(have));
    if (n === null) throw new Error("closed during the handshake");
    have += n;
    const text = new TextDecoder("latin1").decode(buf.subarray(0, have));
    const end = text.indexOf("\r\n\r\n");
    if (end === -1) {
      if (have === buf.length) throw new Error("handshake too long");
      continue;
    }
    if (!text.startsWith("HTTP/1.1 101")) {
      throw new Error(`WebSocket refused: ${text.split("\r\n")[0]}`);
    }
    return buf.slice(end + 4, have);
  }
}

async function main(): Promise<void> {
  const [urlText, firstText, countText, samplersText] = Deno.args;
  const url = new URL(urlText);
  const first = Number(firstText), count = Number(countText);
  const samplers = Number(samplersText ?? 8);
  const stats: Stats = {
    commitsSent: 0,
    sharedSent: 0,
    acked: 0,
    refused: {},
    pushFrames: 0,
    pushCommits: 0,
    pushBytes: 0,
    catchups: 0,
    disconnects: 0,
    ackTimeouts: 0,
    latencies: [],
  };
  const clients: LightClient[] = [];
  for (let at = 0; at < count; at += SETUP_CONCURRENCY) {
    const batch = Array.from(
      { length: Math.min(SETUP_CONCURRENCY, count - at) },
      async (_, k) => {
        const i = first + at + k;
        const db = await openDatabase({ memory: true, schemas: [LOAD_SCHEMA] });
        await db.open(`/load/c${i}`);
        await db.open(SHARED_REPO);
        const session = await ServerSession.create(db, url.origin);
        // Samplers are spread over the range; none of them writes to the shared repo.
        const stride = Math.max(
          1,
          Math.floor(count / SHARED_WRITER_EVERY / samplers),
        );
        const sampler = i % SHARED_WRITER_EVERY === SHARED_WRITER_EVERY / 2 &&
          Math.floor(i / SHARED_WRITER_EVERY) % stride === 0;
        const c = new LightClient(i, db, session, url, sampler, stats);
        await c.connect();
        return c;
      },
    );
    clients.push(...await Promise.all(batch));
  }
  console.log("ready");
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let input = "";
  for await (const chunk of lines) {
    input += chunk;
    if (input.includes("\n")) break;
  }
  const [word, startText, runText] = input.trim().split(" ");
  if (word !== "start") throw new Error(`expected "start", got ${input}`);
  const startAt = Number(startText), runMs = Number(runText);
  clients.forEach((c, k) => c.run(startAt, (k * 1000) / clients.length));
  await new Promise((r) => setTimeout(r, startAt + runMs - Date.now()));
  for (const c of clients) c.stopWriting();
  await new Promise((r) => setTimeout(r, DRAIN_MS));
  const report: LoadReport = {
    clients: clients.length,
    ...stats,
    ackTimeouts: clients.reduce((n, c) => n + c.unanswered, 0),
    sampled: clients.filter((c) => c.sampler).map((c) => c.seen.size),
  };
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.db.close()));
  console.log(JSON.stringify(report));
}

if (import.meta.main) await main();
