/**
 * The inbound half of the bridge: an ordered pull consumer over the whole stream (one
 * filter subject: the 2.9 server's limit), started at a given sequence, handing messages
 * to `apply` in batches (whatever arrived while the previous batch was applied, at most
 * {@link MAX_APPLY_BATCH}). Ordered consumers need no acks and no Raft group per member;
 * the position is the member's own checkpoint.
 *
 * A watchdog recreates the consumer from the next sequence when two heartbeats were
 * missed, when nothing (no message, no heartbeat) arrived for {@link WATCHDOG_SILENCE_MS},
 * when the consumer ends, or when the connection was re-established: the library's own recovery was measured to stall for
 * longer than 30 s after the loss of the node hosting it. Replaying a message twice costs
 * nothing (ingest drops known commits).
 *
 * @module
 */

import {
  DeliverPolicy,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";

/** Pull request expiry: heartbeats every half of it (1 s), as measured to recover. */
export const CONSUME_EXPIRES_MS = 2_000;
/** Silence after which the consumer is recreated (3 missed heartbeats and a margin). */
export const WATCHDOG_SILENCE_MS = 4_000;
/** Messages asked for per pull request (the default 100 costs round trips at catch-up). */
export const CONSUME_MAX_MESSAGES = 1000;
/** Most messages applied in one batch. */
export const MAX_APPLY_BATCH = 1024;
/** Most messages buffered before the consumer waits for the applier. */
export const MAX_BUFFERED_MESSAGES = 4096;
/** Longest pause between two attempts to create the consumer. */
export const CONSUMER_RETRY_MAX_MS = 2_000;

/** One stream message as the applier sees it. */
export interface StreamMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** `Nats-Msg-Id` (the commit id), when present. */
  readonly msgId?: string;
  /** Messages after this one in the stream when it was delivered. */
  readonly pending: number;
}

/** Options of {@link StreamFollower}. */
export interface StreamFollowerOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly filter: string;
  /** Applies one batch, in stream order; throws to have it retried. */
  readonly apply: (batch: StreamMessage[]) => Promise<void>;
  readonly log: (line: string) => void;
  /** Counts consumer (re)creations after the first. */
  readonly onRestart?: () => void;
}

/** Follows the stream from a sequence until stopped. */
export class StreamFollower {
  #next = 1;
  #buffer: StreamMessage[] = [];
  #messages: { close(): Promise<void | Error> } | null = null;
  #lastActivity = Date.now();
  #stopped = false;
  #running: Promise<void> | null = null;
  #applying: Promise<void> | null = null;
  #wakeApplier: (() => void) | null = null;
  #wakeReader: (() => void) | null = null;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #created = 0;
  #failures = 0;

  constructor(private readonly options: StreamFollowerOptions) {}

  /** The next sequence the consumer asks for. */
  get nextSeq(): number {
    return this.#next;
  }

  /** Messages received, not yet applied. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Starts following at `fromSeq` (1: the start of the stream). */
  start(fromSeq: number): void {
    if (this.#running) throw new Error("StreamFollower already started");
    this.#next = Math.max(1, fromSeq);
    this.#running = this.#run();
    this.#applying = this.#applyLoop();
    this.#watchdog = setInterval(() => {
      if (Date.now() - this.#lastActivity > WATCHDOG_SILENCE_MS) {
        this.restart(
          `no message or heartbeat for ${WATCHDOG_SILENCE_MS / 1000} s`,
        );
      }
    }, 1000);
    Deno.unrefTimer(this.#watchdog);
  }

  /**
   * Recreates the consumer from the next sequence (watchdog, reconnect), or from
   * `fromSeq` when that is earlier (a rewind: replaying applied messages is harmless).
   */
  restart(reason: string, fromSeq?: number): void {
    if (fromSeq !== undefined && fromSeq < this.#next) {
      this.#next = Math.max(1, fromSeq);
    }
    const m = this.#messages;
    if (!m || this.#stopped) return;
    this.#messages = null;
    this.#lastActivity = Date.now();
    this.options.log(
      `cluster: recreating the stream consumer at seq ${this.#next} (${reason})`,
    );
    void m.close().catch(() => {});
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#consumeOnce();
        this.#failures = 0;
      } catch (e) {
        if (this.#stopped) break;
        if (this.#failures++ % 10 === 0) {
          this.options.log(
            `cluster: stream consumer at seq ${this.#next} failed (${
              (e as Error)?.message ?? e
            }); retrying`,
          );
        }
        const delay = Math.min(
          CONSUMER_RETRY_MAX_MS,
          100 * 2 ** this.#failures,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async #consumeOnce(): Promise<void> {
    const { js, stream, filter } = this.options;
    const start = this.#next;
    const consumer = await js.consumers.get(stream, {
      // One subject, not an array: 2.9 servers refuse filter_subjects lists.
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start,
    });
    if (this.#stopped) return;
    const messages = await consumer.consume({
      expires: CONSUME_EXPIRES_MS,
      max_messages: CONSUME_MAX_MESSAGES,
    });
    if (this.#created++ > 0) this.options.onRestart?.();
    this.#messages = messages;
    this.#lastActivity = Date.now();
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === "heartbeat") this.#lastActivity = Date.now();
        // Two missed heartbeats: the node serving the consumer is likely gone.
        if (
          s.type === "heartbeats_missed" && s.count >= 2 &&
          this.#messages === messages
        ) this.restart(`${s.count} heartbeats missed`);
      }
    })().catch(() => {});
    for await (const m of messages) {
      this.#lastActivity = Date.now();
      if (m.seq < this.#next) continue; // replayed by a recreated consumer
      this.#next = m.seq + 1;
      this.#buffer.push(toStreamMessage(m));
      this.#wakeApplier?.();
      while (this.#buffer.length >= MAX_BUFFERED_MESSAGES && !this.#stopped) {
        await new Promise<void>((r) => this.#wakeReader = r);
        this.#lastActivity = Date.now();
      }
      if (this.#messages !== messages) break;
    }
    if (this.#messages === messages) this.#messages = null;
  }

  async #applyLoop(): Promise<void> {
    while (!this.#stopped) {
      if (this.#buffer.length === 0) {
        await new Promise<void>((r) => this.#wakeApplier = r);
        this.#wakeApplier = null;
        continue;
      }
      const batch = this.#buffer.slice(0, MAX_APPLY_BATCH);
      try {
        await this.options.apply(batch);
        this.#buffer.splice(0, batch.length);
        this.#wakeReader?.();
        this.#wakeReader = null;
      } catch (e) {
        if (this.#stopped) break;
        this.options.log(
          `cluster: applying stream messages ${batch[0].seq}-${
            batch.at(-1)!.seq
          } failed (${(e as Error)?.message ?? e}); retrying in 1 s`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Stops consuming; resolves once the batch being applied is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#watchdog);
    const m = this.#messages;
    this.#messages = null;
    await m?.close().catch(() => {});
    this.#wakeApplier?.();
    this.#wakeReader?.();
    await this.#applying;
    await Promise.race([
      this.#running,
      new Promise((r) => setTimeout(r, 1000)),
    ]);
  }
}

function toStreamMessage(m: JsMsg): StreamMessage {
  const msgId = m.headers?.get("Nats-Msg-Id");
  return {
    seq: m.seq,
    subject: m.subject,
    data: m.data,
    ...(msgId ? { msgId } : {}),
    pending: m.info.pending,
  };
}
