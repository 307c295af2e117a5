/**
 * The append side of a repository log: frames records, keeps track of where each commit
 * record lands (the offsets checkpoints name), counts commits since the last checkpoint,
 * and writes a session's record once before the first commit of that session, so the log
 * verifies on its own.
 *
 * @module
 */

import type { SessionId } from "../crypto/keys.ts";
import { encodeFrame } from "../storage/frames.ts";
import type { RepoLog } from "../storage/storage.ts";
import type { CommitNode } from "./item_graph.ts";
import { RecordKind } from "./records.ts";
import { encodeSessionRecord, type SessionRecord } from "./session.ts";

/** Appends records to one repository log. */
export class LogWriter {
  /** Log offset where the next appended frame starts (-1: unknown). */
  #appendAt: number;
  /** Commit records stored after the last checkpoint. */
  sinceCheckpoint: number;
  /** Sessions whose record this log holds. */
  readonly #recordedSessions: Set<SessionId>;

  constructor(
    private readonly log: RepoLog,
    appendAt: number,
    sinceCheckpoint: number,
    recordedSessions: Iterable<SessionId>,
  ) {
    this.#appendAt = appendAt;
    this.sinceCheckpoint = sinceCheckpoint;
    this.#recordedSessions = new Set(recordedSessions);
  }

  /** False once another writer appended to the log (later offsets are unknown). */
  get offsetsKnown(): boolean {
    return this.#appendAt >= 0;
  }

  /** Another writer appends to this log (another tab): offsets of later records are unknown. */
  offsetsUnknown(): void {
    this.#appendAt = -1;
  }

  /** Appends one record of `kind`. */
  appendRecord(kind: RecordKind, body: Uint8Array): void {
    const payload = new Uint8Array(body.length + 1);
    payload[0] = kind;
    payload.set(body, 1);
    this.#append(encodeFrame(payload), payload.length);
  }

  /** Appends a signed commit's record (its stored form when the caller has it). */
  appendCommit(n: CommitNode, record?: Uint8Array): void {
    const payload = record ?? commitPayload(n);
    const at = this.#append(encodeFrame(payload), payload.length);
    if (at >= 0) n.at = at;
    this.sinceCheckpoint++;
  }

  /** True when the log holds the record of session `id`. */
  hasSession(id: SessionId): boolean {
    return this.#recordedSessions.has(id);
  }

  /** Notes that the log holds session `id`'s record (another writer stored it). */
  sessionStored(id: SessionId): void {
    this.#recordedSessions.add(id);
  }

  /** Appends the record of `session` unless the log holds it already. */
  recordSession(session: SessionRecord): void {
    if (this.#recordedSessions.has(session.id)) return;
    this.appendRecord(RecordKind.Session, encodeSessionRecord(session));
    this.#recordedSessions.add(session.id);
  }

  /** Resolves when every record appended so far is durable. */
  flush(): Promise<void> {
    return this.log.flush();
  }

  /** Flushes and closes the log. */
  close(): Promise<void> {
    return this.log.close();
  }

  /** Appends one frame; returns the log offset of its payload (-1: unknown). */
  #append(frame: Uint8Array, payloadLength: number): number {
    this.log.append(frame);
    if (this.#appendAt < 0) return -1;
    const at = this.#appendAt + frame.length - payloadLength;
    this.#appendAt += frame.length;
    return at;
  }
}

/** The stored payload (`[kind][sig][commit]`) of a signed commit node. */
export function commitPayload(n: CommitNode): Uint8Array {
  const bytes = n.commit.bytes;
  const out = new Uint8Array(65 + bytes.length);
  out[0] = RecordKind.Commit;
  out.set(n.sig!, 1);
  out.set(bytes, 65);
  return out;
}
