/**
 * The outbound half of the bridge: every commit this member accepted is published to the
 * stream, one message per commit with `Nats-Msg-Id` = its id, asynchronously (the client
 * already has its answer from a replica that stores the commit), up to
 * {@link MAX_PUBLISHES_IN_FLIGHT} at a time. Failed publishes (timeouts, no stream leader
 * during an election, NATS down) are retried with the same id and a growing delay for
 * {@link PUBLISH_RETRY_WINDOW_MS}; then, or at once when the queue is full, the commit is
 * given up and its repository marked failed in the dirty set, to be reconciled with
 * another member (nothing is lost: the commit is in this member's log). Memory is bounded
 * by {@link MAX_PUBLISH_QUEUE} commits and {@link MAX_PUBLISH_QUEUE_BYTES}.
 *
 * @module
 */

import type { CommitId } from "../../lib/commit/commit.ts";
import type { RepoPath } from "../../lib/path.ts";
import type { DirtySet } from "./dirty_set.ts";
import type { ClusterMetrics } from "./cluster_metrics.ts";

/** Most commits waiting for a stream acknowledgement. */
export const MAX_PUBLISH_QUEUE = 10_000;
/** Most bytes of messages waiting for a stream acknowledgement. */
export const MAX_PUBLISH_QUEUE_BYTES = 64 * 1024 * 1024;
/** Publishes awaiting their acknowledgement at once (the knee of the measured curve). */
export const MAX_PUBLISHES_IN_FLIGHT = 64;
/** How long a commit is retried before its repository is left to reconciliation. */
export const PUBLISH_RETRY_WINDOW_MS = 30_000;
/** Longest pause between two attempts of one commit. */
export const PUBLISH_BACKOFF_MAX_MS = 1_000;
/** Shortest pause between two attempts of one commit. */
export const PUBLISH_BACKOFF_MIN_MS = 50;

/**
 * Commits acknowledged this long before a disconnection are published again after it:
 * when every NATS node dies at once, the stream may lose what it acknowledged last
 * (JetStream does not fsync each message); a duplicate still there is dropped by id.
 */
export const SUSPECT_WINDOW_MS = 10_000;
/** Most recently acknowledged commits remembered for that. */
export const MAX_RECENT_ACKS = 20_000;

/** Where messages go (the JetStream client, or a fake in tests). */
export interface PublishTarget {
  /** Resolves once the stream acknowledged the message; rejects otherwise. */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<void>;
  /** False while the connection is down (nothing is attempted then). */
  isConnected(): boolean;
}

/** Rebuilds the stream message of a commit (undefined: no longer stored). */
export type MessageBuilder = (
  repo: RepoPath,
  id: CommitId,
) => Promise<Uint8Array | undefined>;

interface Acked {
  readonly repo: RepoPath;
  readonly id: CommitId;
  readonly subject: string;
  readonly at: number;
}

interface Entry {
  readonly repo: RepoPath;
  readonly id: CommitId;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly queuedAt: number;
  attempts: number;
}

/** Publishes accepted commits, retrying, within bounds. */
export class Publisher {
  #queue: Entry[] = [];
  /** Entries waiting for their retry delay. */
  readonly #waiting = new Set<Entry>();
  #inFlight = 0;
  #bytes = 0;
  #failing = false;
  #givenUp = 0;
  readonly #givenUpRepos = new Set<RepoPath>();
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #idle: (() => void)[] = [];
  #closed = false;
  #recent: Acked[] = [];
  #suspects: Acked[] = [];

  constructor(
    private readonly target: PublishTarget,
    private readonly dirty: DirtySet,
    private readonly metrics: ClusterMetrics,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.#sweep = setInterval(() => this.#expire(), 1000);
    Deno.unrefTimer(this.#sweep);
  }

  /** Commits queued, in flight or waiting for a retry. */
  get size(): number {
    return this.#queue.length + this.#waiting.size + this.#inFlight;
  }

  /** True when a new commit of `bytes` would fit the queue now. */
  hasRoom(bytes: number): boolean {
    return this.size < MAX_PUBLISH_QUEUE &&
      this.#bytes + bytes <= MAX_PUBLISH_QUEUE_BYTES;
  }

  /** True when bulk work (republishing) may queue more: half the bounds stay for live commits. */
  hasRoomForBulk(): boolean {
    return this.size < MAX_PUBLISH_QUEUE / 2 &&
      this.#bytes < MAX_PUBLISH_QUEUE_BYTES / 2;
  }

  /** Queues one commit (its repository enters the dirty set before this returns). */
  enqueue(
    repo: RepoPath,
    id: CommitId,
    subject: string,
    payload: Uint8Array,
  ): void {
    if (this.#closed || !this.hasRoom(payload.length)) {
      this.#giveUp(repo);
      return;
    }
    this.dirty.queued(repo);
    this.#bytes += payload.length;
    this.#queue.push({
      repo,
      id,
      subject,
      payload,
      queuedAt: this.now(),
      attempts: 0,
    });
    this.pump();
  }

  /** Starts what the in-flight limit allows (called again on reconnect). */
  pump(): void {
    while (
      this.#inFlight < MAX_PUBLISHES_IN_FLIGHT && this.#queue.length &&
      this.target.isConnected() && !this.#closed
    ) {
      const e = this.#queue.shift()!;
      this.#inFlight++;
      void this.#attempt(e);
    }
    if (this.size === 0) { for (const f of this.#idle.splice(0)) f(); }
  }

  async #attempt(e: Entry): Promise<void> {
    e.attempts++;
    try {
      await this.target.publish(e.subject, e.payload, e.id);
      this.metrics.published++;
      this.#settle(e);
      this.#recent.push({
        repo: e.repo,
        id: e.id,
        subject: e.subject,
        at: this.now(),
      });
      if (this.#recent.length > 2 * MAX_RECENT_ACKS) {
        this.#recent = this.#recent.slice(-MAX_RECENT_ACKS);
      }
      this.dirty.published(e.repo);
      if (this.#failing) {
        this.#failing = false;
        this.log(
          `cluster: publishing to NATS works again (${this.size} commits queued)`,
        );
      }
    } catch (err) {
      this.metrics.publishFailures++;
      if (!this.#failing) {
        this.#failing = true;
        this.log(
          `cluster: publishing to NATS fails (${
            (err as Error)?.message ?? err
          }); ${this.size} commits queued, each retried for up to ${
            PUBLISH_RETRY_WINDOW_MS / 1000
          } s`,
        );
      }
      if (this.now() - e.queuedAt >= PUBLISH_RETRY_WINDOW_MS || this.#closed) {
        this.#settle(e);
        this.#giveUp(e.repo, true);
      } else {
        this.#retryLater(e);
      }
    } finally {
      this.#inFlight--;
      this.pump();
    }
  }

  #retryLater(e: Entry): void {
    const delay = Math.min(
      PUBLISH_BACKOFF_MAX_MS,
      PUBLISH_BACKOFF_MIN_MS * 2 ** (e.attempts - 1),
    ) * (0.5 + Math.random() / 2);
    this.#waiting.add(e);
    const t = setTimeout(() => {
      if (!this.#waiting.delete(e)) return;
      this.#queue.unshift(e);
      this.pump();
    }, delay);
    Deno.unrefTimer(t);
  }

  #settle(e: Entry): void {
    this.#bytes -= e.payload.length;
  }

  /** A commit left to reconciliation: counted, logged in batches. */
  #giveUp(repo: RepoPath, queued = false): void {
    this.metrics.publishGivenUp++;
    if (queued) this.dirty.giveUp(repo);
    else this.dirty.markFailed(repo);
    this.#givenUp++;
    this.#givenUpRepos.add(repo);
  }

  /** Gives up queued commits past the retry window (NATS down) and logs give-ups. */
  #expire(): void {
    const cutoff = this.now() - PUBLISH_RETRY_WINDOW_MS;
    if (this.#queue.length && this.#queue[0].queuedAt < cutoff) {
      const keep: Entry[] = [];
      for (const e of this.#queue) {
        if (e.queuedAt < cutoff) {
          this.#settle(e);
          this.#giveUp(e.repo, true);
        } else keep.push(e);
      }
      this.#queue = keep;
    }
    for (const e of this.#waiting) {
      if (e.queuedAt < cutoff) {
        this.#waiting.delete(e);
        this.#settle(e);
        this.#giveUp(e.repo, true);
      }
    }
    if (this.#givenUp) {
      this.log(
        `cluster: ${this.#givenUp} commits of ${this.#givenUpRepos.size} repositories were not published (NATS unreachable for ${
          PUBLISH_RETRY_WINDOW_MS / 1000
        } s or queue full): those repositories will be reconciled with another member`,
      );
      this.#givenUp = 0;
      this.#givenUpRepos.clear();
    }
    if (this.size === 0) { for (const f of this.#idle.splice(0)) f(); }
  }

  /** The connection was lost: what the stream acknowledged just before is suspect. */
  suspectRecent(): void {
    const cutoff = this.now() - SUSPECT_WINDOW_MS;
    const recent = this.#recent.filter((a) => a.at >= cutoff);
    this.#suspects = [...this.#suspects, ...recent].slice(-MAX_RECENT_ACKS);
    this.#recent = [];
  }

  /** Publishes the suspect commits again (after a reconnection); returns how many. */
  async republishSuspects(build: MessageBuilder): Promise<number> {
    const suspects = this.#suspects;
    this.#suspects = [];
    let n = 0;
    for (const a of suspects) {
      while (!this.hasRoomForBulk() && !this.#closed) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (this.#closed) break;
      const message = await build(a.repo, a.id);
      if (!message) continue;
      this.enqueue(a.repo, a.id, a.subject, message);
      n++;
    }
    return n;
  }

  /** Resolves when nothing is queued, or after `timeoutMs` (shutdown). */
  async drain(timeoutMs: number): Promise<void> {
    if (this.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => this.#idle.push(r)),
      new Promise<void>((r) => timer = setTimeout(r, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  /** Stops publishing; what is still queued stays in the dirty set for the next start. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const e of [...this.#queue, ...this.#waiting]) this.#settle(e);
    this.#queue = [];
    this.#waiting.clear();
  }
}
