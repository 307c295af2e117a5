/**
 * Background repairs of what the stream alone cannot fix, every
 * {@link REPAIR_INTERVAL_MS} and at once after a reconnection:
 * - failed repositories of the dirty set (commits not published in time, or queued when
 *   the process died) are reconciled with a ready member, which publishes what it
 *   lacked; a member that is alone republishes their commits instead;
 * - "everything" (a gap in the stream, a damaged dirty set) reconciles every repository;
 * - a slow anti-entropy pass reconciles the repositories changed here since the last
 *   pass with a random ready member, bounding divergence from any bug in the bridge.
 * Members that are not ready yet are not used: they may lack what is being repaired.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import type { RepoPath } from "../../lib/path.ts";
import type { SyncService } from "../sync_service.ts";
import type { DirtySet } from "./dirty_set.ts";
import type { Publisher } from "./publisher.ts";
import type { Reconciler } from "./reconciler.ts";
import type { ClusterSubjects } from "./subjects.ts";
import { outboundMessage } from "./outbound.ts";

/** Pause between two repair passes. */
export const REPAIR_INTERVAL_MS = 5_000;
/** Pause between two anti-entropy passes. */
export const ANTI_ENTROPY_INTERVAL_MS = 10 * 60_000;
/** Most changed repositories remembered for the next anti-entropy pass. */
export const MAX_ANTI_ENTROPY_REPOS = 10_000;

/** What the repairs need. */
export interface RepairsDeps {
  readonly db: Database;
  readonly reconciler: Reconciler;
  readonly dirty: DirtySet;
  readonly publisher: Publisher;
  readonly sync: SyncService;
  readonly subjects: ClusterSubjects;
  readonly connected: () => boolean;
  readonly log: (line: string) => void;
}

/** Runs repair passes until stopped. */
export class Repairs {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;
  #changed = new Set<RepoPath>();
  #lastAntiEntropy = Date.now();
  #stopped = false;

  constructor(private readonly deps: RepairsDeps) {}

  /** Starts the periodic passes (the first one at once). */
  start(): void {
    this.#timer = setInterval(() => this.wake(), REPAIR_INTERVAL_MS);
    Deno.unrefTimer(this.#timer);
    this.wake();
  }

  /** Runs a pass now unless one is running. */
  wake(): void {
    if (this.#running || this.#stopped) return;
    this.#running = this.#pass().catch((e) =>
      this.deps.log(
        `cluster: repair pass failed: ${(e as Error)?.message ?? e}`,
      )
    ).finally(() => this.#running = null);
  }

  /** Remembers a repository changed here (for the anti-entropy pass). */
  changed(repo: RepoPath): void {
    if (this.#changed.size < MAX_ANTI_ENTROPY_REPOS) this.#changed.add(repo);
  }

  /** Every repository must be reconciled (persisted in the dirty set). */
  reconcileEverything(): void {
    this.deps.dirty.markAll();
    this.wake();
  }

  async #pass(): Promise<void> {
    const { dirty, reconciler, log } = this.deps;
    const antiEntropy =
      Date.now() - this.#lastAntiEntropy >= ANTI_ENTROPY_INTERVAL_MS &&
      this.#changed.size > 0;
    const failed = dirty.failed();
    if (
      !this.deps.connected() || (!failed.length && !dirty.all && !antiEntropy)
    ) {
      return;
    }
    const others = await reconciler.others();
    const ready = others.filter((m) => m.ready);
    if (this.#stopped) return;
    if (ready.length) {
      const peer = ready[Math.floor(Math.random() * ready.length)];
      if (dirty.all) {
        const repos = await reconciler.allRepositories(peer);
        const r = await reconciler.reconcile(peer, repos);
        for (const repo of r.done) dirty.resolved(repo);
        if (!r.failed.length) {
          dirty.clearAll();
          log(
            `cluster: reconciled all ${repos.length} repositories with member ${peer.id}`,
          );
        }
      } else if (failed.length) {
        const r = await reconciler.reconcile(peer, failed);
        for (const repo of r.done) dirty.resolved(repo);
        if (r.done.length) {
          log(
            `cluster: reconciled ${r.done.length} repositories whose commits had not reached the stream with member ${peer.id}`,
          );
        }
      }
      if (antiEntropy) {
        const repos = [...this.#changed];
        this.#changed = new Set();
        this.#lastAntiEntropy = Date.now();
        await reconciler.reconcile(peer, repos);
      }
    } else if (others.length === 0) {
      // Alone in the cluster: the stream is the only way to the members to come.
      const repos = dirty.all ? await this.deps.db.listRepositories() : failed;
      for (const repo of repos) {
        if (this.#stopped || !this.deps.connected()) return;
        await this.#republish(repo);
        dirty.resolved(repo);
      }
      if (dirty.all) dirty.clearAll();
      if (repos.length) {
        log(
          `cluster: no other member answered: republished the commits of ${repos.length} repositories to the stream`,
        );
      }
    }
  }

  /** Queues every commit of `repo` for publishing (duplicates are dropped by id). */
  async #republish(repo: RepoPath): Promise<void> {
    const { db, publisher, sync, subjects } = this.deps;
    const r = await db.open(repo);
    for (const id of r.commitIds()) {
      const message = outboundMessage(sync, r, id);
      if (!message) continue;
      while (!publisher.hasRoomForBulk() && !this.#stopped) {
        await new Promise((res) => setTimeout(res, 50));
      }
      if (this.#stopped) return;
      publisher.enqueue(repo, id, subjects.commits(repo), message);
    }
  }

  /** Stops the timer; a running pass ends at its next step. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }
}
