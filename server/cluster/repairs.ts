/**
 * Background repairs of what the stream alone cannot fix, every
 * {@link REPAIR_INTERVAL_MS} and at once after a reconnection:
 * - failed repositories of the dirty set (commits not published in time, or queued when
 *   the process died) are reconciled with a ready member, which publishes what it
 *   lacked; a member that is alone republishes their commits instead;
 * - "everything" (a gap in the stream, a damaged dirty set) reconciles every repository;
 * - after a reconnection (once the stream settled), the repositories active here in the
 *   minutes before are reconciled with a random ready member: when every NATS node went
 *   down at once the stream may have lost what it acknowledged last;
 * - a slow anti-entropy pass reconciles the repositories active here since the last
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
import { messageBuilder, outboundMessage } from "./outbound.ts";

/** Pause between two repair passes. */
export const REPAIR_INTERVAL_MS = 5_000;
/** Pause between two anti-entropy passes. */
export const ANTI_ENTROPY_INTERVAL_MS = 10 * 60_000;
/** Most active repositories remembered (for the passes above). */
export const MAX_ANTI_ENTROPY_REPOS = 10_000;
/** Repositories active this long before a reconnection are reconciled after it. */
export const RECENT_ACTIVITY_MS = 2 * 60_000;
/** Delay after a reconnection before that (the stream elects its leader first). */
export const RECONNECT_SETTLE_MS = 5_000;

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
  /** Repository -> last activity here (a local commit or one from the stream). */
  #active = new Map<RepoPath, number>();
  /** Repositories to reconcile once `#recheckAt` has passed (after a reconnection). */
  #recheck = new Set<RepoPath>();
  #recheckAt = 0;
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

  /** Remembers activity in a repository (local commits, commits from the stream). */
  active(repo: RepoPath): void {
    this.#active.delete(repo);
    this.#active.set(repo, Date.now());
    if (this.#active.size > MAX_ANTI_ENTROPY_REPOS) {
      this.#active.delete(this.#active.keys().next().value!);
    }
  }

  /**
   * After a reconnection: publishes again what the stream acknowledged last, and
   * rechecks the recently active repositories soon.
   */
  reconnected(): void {
    const since = Date.now() - RECENT_ACTIVITY_MS;
    for (const [repo, at] of this.#active) {
      if (at >= since) this.#recheck.add(repo);
    }
    this.#recheckAt = Date.now() + RECONNECT_SETTLE_MS;
    const { db, sync, publisher, log } = this.deps;
    void publisher.republishSuspects(messageBuilder(db, sync)).then((n) => {
      if (n) {
        log(
          `cluster: published again ${n} commits acknowledged just before the disconnection (the stream may have lost them)`,
        );
      }
    }, (e) => log(`cluster: republishing failed: ${(e as Error).message}`));
    this.wake();
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
      this.#active.size > 0;
    const recheck = this.#recheck.size > 0 && Date.now() >= this.#recheckAt;
    const failed = dirty.failed();
    if (
      !this.deps.connected() ||
      (!failed.length && !dirty.all && !antiEntropy && !recheck)
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
      if (recheck) {
        const repos = [...this.#recheck];
        this.#recheck = new Set();
        const r = await reconciler.reconcile(peer, repos);
        for (const repo of r.failed) this.#recheck.add(repo);
      }
      if (antiEntropy) {
        const since = this.#lastAntiEntropy;
        this.#lastAntiEntropy = Date.now();
        const repos = [...this.#active].filter(([, at]) => at >= since).map((
          [repo],
        ) => repo);
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
