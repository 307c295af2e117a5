/**
 * The inbound side of a member, once its start sequence is decided: the stream follower
 * feeding the applier, the checkpoint written every {@link CHECKPOINT_INTERVAL_MS}
 * (after a flush), and, while the member catches up, a check that the stream did not
 * drop (max_age) messages not applied yet: those can never arrive, so they are skipped
 * and every repository is reconciled instead (persisted in the dirty set).
 *
 * @module
 */

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Database } from "../../mod.ts";
import type { RepoPath } from "../../lib/path.ts";
import type { SyncService } from "../sync_service.ts";
import type { CheckpointKeeper } from "./checkpoint.ts";
import type { ClusterMetrics } from "./cluster_metrics.ts";
import type { DirtySet } from "./dirty_set.ts";
import { StreamApplier } from "./stream_applier.ts";
import { StreamFollower } from "./stream_follower.ts";
import type { ClusterSubjects } from "./subjects.ts";

/** How often the checkpoint is written (after a flush) while messages are applied. */
export const CHECKPOINT_INTERVAL_MS = 250;
/** Messages read again after a reconnection (see {@link Inbound.restart}). */
export const REPLAY_AFTER_RECONNECT = 5_000;
/** How often a member still catching up checks whether the stream dropped messages. */
export const TRIM_CHECK_MS = 2_000;

/** What the inbound side needs. */
export interface InboundDeps {
  readonly db: Database;
  readonly sync: SyncService;
  readonly subjects: ClusterSubjects;
  readonly metrics: ClusterMetrics;
  readonly log: (line: string) => void;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly keeper: CheckpointKeeper;
  readonly dirty: DirtySet;
  /** False while NATS is unreachable. */
  readonly connected: () => boolean;
  /** True once the member is ready (the trim check then stops). */
  readonly ready: () => boolean;
  /** After each applied batch (and skipped range). */
  readonly onProgress: () => void;
  /** When every repository must be reconciled (already marked in `dirty`). */
  readonly onReconcileAll: () => void;
  /** A repository received new commits from the stream. */
  readonly onIngested?: (repo: RepoPath) => void;
}

/** Follows the stream into the database. */
export class Inbound {
  readonly #applier: StreamApplier;
  readonly #follower: StreamFollower;
  #checkpointTimer: ReturnType<typeof setInterval> | undefined;
  #trimTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: InboundDeps, startSeq: number) {
    this.#applier = new StreamApplier({
      db: deps.db,
      sync: deps.sync,
      subjects: deps.subjects,
      metrics: deps.metrics,
      log: deps.log,
      ...(deps.onIngested ? { onIngested: deps.onIngested } : {}),
      onGap: (from, to) => {
        deps.log(
          `cluster: the stream skipped seq ${from}-${to} (trimmed by max_age or purged): reconciling every repository with another member`,
        );
        deps.dirty.markAll();
        deps.onReconcileAll();
      },
    });
    this.#applier.applied = startSeq - 1;
    this.#follower = new StreamFollower({
      js: deps.js,
      stream: deps.stream,
      filter: deps.subjects.allCommits,
      apply: async (batch) => {
        await this.#applier.apply(batch);
        deps.onProgress();
      },
      log: deps.log,
      onRestart: () => deps.metrics.consumerRestarts++,
    });
  }

  /** Last applied sequence. */
  get applied(): number {
    return this.#applier.applied;
  }

  /** Messages known to be waiting (after the last applied one, and buffered). */
  get pending(): number {
    return this.#applier.pendingAfter + this.#follower.buffered;
  }

  /** Starts following at the start sequence. */
  start(): void {
    this.#follower.start(this.#applier.applied + 1);
    this.#checkpointTimer = setInterval(
      () => void this.deps.keeper.save(this.#applier.applied),
      CHECKPOINT_INTERVAL_MS,
    );
    this.#trimTimer = setInterval(
      () => void this.#checkTrimmed(),
      TRIM_CHECK_MS,
    );
    Deno.unrefTimer(this.#trimTimer);
  }

  /**
   * Recreates the consumer after a reconnection, {@link REPLAY_AFTER_RECONNECT} messages
   * back: when every NATS node went down at once, the stream may come back without its
   * last acknowledged messages and number new ones as they were; those must not be
   * skipped as already applied. Known commits cost an id lookup each.
   */
  restart(reason: string): void {
    const from = Math.max(1, this.#follower.nextSeq - REPLAY_AFTER_RECONNECT);
    this.#applier.rewind(from);
    this.#follower.restart(reason, from);
  }

  async #checkTrimmed(): Promise<void> {
    if (this.deps.ready()) return clearInterval(this.#trimTimer);
    if (!this.deps.connected() || this.#follower.buffered > 0) return;
    try {
      const info = await this.deps.jsm.streams.info(this.deps.stream);
      const first = info.state.first_seq;
      const applied = this.#applier.applied;
      if (first <= applied + 1 || this.#follower.buffered > 0) return;
      this.deps.log(
        `cluster: the stream dropped seq ${applied + 1}-${
          first - 1
        } before they were applied here (max_age): reconciling every repository with another member`,
      );
      this.deps.dirty.markAll();
      this.#applier.applied = first - 1;
      this.deps.onReconcileAll();
      this.deps.onProgress();
    } catch { /* checked again at the next tick */ }
  }

  /** Stops following and writes the final checkpoint. */
  async stop(): Promise<void> {
    clearInterval(this.#checkpointTimer);
    clearInterval(this.#trimTimer);
    await this.#follower.stop();
    await this.deps.keeper.save(this.#applier.applied);
  }
}
