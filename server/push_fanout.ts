/**
 * Fan-out of accepted commits to the sockets subscribed to their repository, at a cost
 * per commit, not per receiver. Accepted commits are collected per repository and sent
 * once per tick: the push message is encoded once for all receivers that may see the
 * same commits (all of them when the repository's reads are decided per repository;
 * with per-item rules one message per distinct visible subset) and every one of them
 * gets the same bytes. A receiver never gets back its own commits (it sent them).
 *
 * Ticks adapt to load: a flush happens as soon as the event loop is free, and the next
 * one waits {@link PUSH_FLUSH_SPACING} times as long as this one took, so under load
 * more commits share a message and the fan-out keeps to a bounded share of the loop; a
 * long flush yields every {@link PUSH_SLICE_MS}.
 *
 * @module
 */

import type { Repository } from "../lib/core/repository.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import type { SessionId } from "../lib/crypto/keys.ts";
import {
  encodeSyncMessage,
  MAX_SYNC_MESSAGE_BYTES,
} from "../lib/sync/protocol.ts";
import { encodeWsFrame } from "../lib/sync/ws_protocol.ts";
import type { RepoPath } from "../lib/path.ts";
import type { HubConnection } from "./ws_connection.ts";
import { PushFrame } from "./ws_connection.ts";
import type { SyncService } from "./sync_service.ts";

/** Most commits in one push message. */
export const MAX_COMMITS_PER_PUSH = 1024;
/** Bytes of commits and session records in one push message, at most (framing aside). */
export const MAX_PUSH_MESSAGE_BYTES = MAX_SYNC_MESSAGE_BYTES - 64 * 1024;
/** The pause after a flush, in multiples of its duration (the fan-out's loop share ≤ 1/(1+this)). */
export const PUSH_FLUSH_SPACING = 3;
/** Longest pause between two flushes, whatever the last one cost. */
export const PUSH_MAX_TICK_MS = 100;
/** A flush yields to the event loop after this long. */
export const PUSH_SLICE_MS = 8;

interface PendingCommit {
  readonly record: Uint8Array;
  /** Item key (the path's last segment). */
  readonly key: string;
  readonly author: SessionId;
  readonly origin: unknown;
}

interface PendingRepo {
  readonly path: RepoPath;
  readonly commits: PendingCommit[];
}

/** Where the fan-out finds receivers. */
export interface Subscribers {
  /** Open sockets subscribed to `repo`. */
  subscribersOf(repo: string): Iterable<HubConnection> & { size: number };
}

/** Collects accepted commits and pushes them once per tick. */
export class PushFanout {
  #pending = new Map<RepoPath, PendingRepo>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing = false;
  #nextAt = 0;

  constructor(
    private readonly subscribers: Subscribers,
    private readonly service: SyncService,
    private readonly now: () => number = Date.now,
  ) {}

  /** Commits waiting for the next flush. */
  get pendingCommits(): number {
    let n = 0;
    for (const p of this.#pending.values()) n += p.commits.length;
    return n;
  }

  /** Queues commits of `repo` accepted from `origin` (a socket, or undefined). */
  add(repo: Repository, ids: readonly CommitId[], origin: unknown): void {
    const subs = this.subscribers.subscribersOf(repo.path);
    if (!subs.size) return;
    if (subs.size === 1 && origin !== undefined) {
      // Only the sender follows it: nobody to push to.
      for (const c of subs) if (c === origin) return;
    }
    let pending = this.#pending.get(repo.path);
    const keyAt = repo.path.length + 1;
    for (const id of ids) {
      // Read now, while the repository is surely open.
      const record = repo.commitRecord(id);
      const commit = repo.commitOf(id);
      if (!record || !commit) continue;
      if (!pending) {
        pending = { path: repo.path, commits: [] };
        this.#pending.set(repo.path, pending);
      }
      pending.commits.push({
        record,
        key: commit.key.slice(keyAt),
        author: commit.session,
        origin,
      });
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#flushing || !this.#pending.size) {
      return;
    }
    const wait = Math.max(0, this.#nextAt - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, wait);
  }

  /** Pushes what is pending now (the timer calls it; tests may too). */
  async flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    const started = performance.now();
    try {
      const batch = this.#pending;
      this.#pending = new Map();
      let sliceStart = started;
      for (const repo of batch.values()) {
        const subs = [...this.subscribers.subscribersOf(repo.path)];
        const out = new FrameCache(repo, this.service);
        const valid = new Map<string, boolean>();
        const now = this.now();
        let delivered = 0;
        for (let i = 0; i < subs.length; i++) {
          delivered += this.#deliverTo(subs[i], repo, out, valid, now);
          if (
            (i & 63) === 63 && performance.now() - sliceStart > PUSH_SLICE_MS
          ) {
            // Let the event loop breathe (health checks, ingest) mid-fan-out.
            await new Promise((r) => setTimeout(r, 0));
            sliceStart = performance.now();
          }
        }
        this.service.metrics.pushDeliveries += delivered;
        this.service.metrics.pushMessages += out.messages;
      }
      // Let the sockets take their frames before measuring what this flush cost.
      await Promise.resolve();
    } finally {
      const took = performance.now() - started;
      this.#nextAt = performance.now() +
        Math.min(PUSH_MAX_TICK_MS, took * PUSH_FLUSH_SPACING);
      this.#flushing = false;
      this.#schedule();
    }
  }

  #deliverTo(
    conn: HubConnection,
    repo: PendingRepo,
    out: FrameCache,
    valid: Map<string, boolean>,
    now: number,
  ): number {
    const session = conn.session;
    if (!session || !conn.open) return 0;
    let ok = valid.get(session.id);
    if (ok === undefined) {
      ok = this.service.trust.lookup(session.id, now) !== undefined;
      valid.set(session.id, ok);
    }
    if (!ok) return 0;
    return conn.deliver(repo.path, out.framesFor(conn), now);
  }

  /** Stops the timer (pending commits are dropped: receivers reconcile on reconnect). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}

/** The push messages of one repository's tick, encoded once per distinct set of commits. */
class FrameCache {
  readonly #bySet = new Map<string, PushFrame[]>();
  #all: PushFrame[] | undefined;
  readonly #origins = new Set<unknown>();
  readonly #perItem: boolean;
  /** Visibility per session and item key (per-item rules only). */
  readonly #mayRead = new Map<string, boolean>();
  messages = 0;

  constructor(
    private readonly repo: PendingRepo,
    private readonly service: SyncService,
  ) {
    for (const c of repo.commits) {
      if (c.origin !== undefined) this.#origins.add(c.origin);
    }
    this.#perItem = service.rules.perItem(repo.path);
  }

  /** The messages `conn` gets: the commits it may read, its own left out. */
  framesFor(conn: HubConnection): PushFrame[] {
    const commits = this.repo.commits;
    if (!this.#perItem && !this.#origins.has(conn)) {
      return this.#all ??= this.#encode(commits);
    }
    const session = conn.session!;
    const picked: number[] = [];
    for (let i = 0; i < commits.length; i++) {
      const c = commits[i];
      if (c.origin === conn) continue;
      if (this.#perItem && c.author !== session.id) {
        const k = `${session.id}\u0000${c.key}`;
        let ok = this.#mayRead.get(k);
        if (ok === undefined) {
          ok = this.service.mayReadItem(this.repo.path, c.key, session);
          this.#mayRead.set(k, ok);
        }
        if (!ok) continue;
      }
      picked.push(i);
    }
    if (picked.length === commits.length) {
      return this.#all ??= this.#encode(commits);
    }
    const key = picked.join(",");
    let frames = this.#bySet.get(key);
    if (!frames) {
      frames = this.#encode(picked.map((i) => commits[i]));
      this.#bySet.set(key, frames);
    }
    return frames;
  }

  /** Push messages for `commits` (split by count and size), with their authors' records. */
  #encode(commits: readonly PendingCommit[]): PushFrame[] {
    const frames: PushFrame[] = [];
    let at = 0;
    while (at < commits.length) {
      let bytes = 0, end = at;
      while (
        end < commits.length && end - at < MAX_COMMITS_PER_PUSH &&
        (end === at ||
          bytes + commits[end].record.length <= MAX_PUSH_MESSAGE_BYTES)
      ) bytes += commits[end++].record.length;
      const part = commits.slice(at, end);
      at = end;
      const authors = new Set<string>(part.map((c) => c.author));
      const msg = encodeSyncMessage({
        repo: this.repo.path,
        commits: part.map((c) => c.record),
        sessions: this.service.sessionRecords(authors),
      });
      frames.push(
        new PushFrame(encodeWsFrame({ t: "push", msg }), part.length),
      );
      this.messages++;
    }
    return frames;
  }
}
