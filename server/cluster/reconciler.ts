/**
 * Peer reconciliation: range-based sync of repositories with one other member over NATS,
 * for what the stream cannot give (a gap past its retention, a new or restored member,
 * commits this member could not publish). Both directions travel: commits this member
 * lacks are announced to its clients; commits the other lacks are published by it.
 * A repository already in sync costs one round of a few dozen bytes.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import type { CommitId } from "../../lib/commit/commit.ts";
import { commitIdFromBytes } from "../../lib/commit/commit.ts";
import { COMMIT_RECORD_HEADER } from "../../lib/core/records.ts";
import { sha256 } from "../../lib/crypto/sha256.ts";
import type { RepoPath } from "../../lib/path.ts";
import type { SyncService } from "../sync_service.ts";
import type { ClusterMetrics } from "./cluster_metrics.ts";
import type { PeerClient } from "./peer_client.ts";
import type { MemberInfo } from "./peer_protocol.ts";
import type { DirtySet } from "./dirty_set.ts";

/** Repositories reconciled at the same time. */
export const RECONCILE_CONCURRENCY = 4;

/** Marks commits pulled from another member (not published again: it has them). */
export const FROM_RECONCILIATION: unique symbol = Symbol(
  "capra cluster reconciliation",
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pause before retry `attempt` (0, 1, ...): 250 ms doubling up to 5 s. */
const backoff = (attempt: number) =>
  Math.min(5000, 250 * 2 ** Math.min(attempt, 5));

/** Two processes claim one member id. */
export class DuplicateMemberError extends Error {
  constructor(id: string) {
    super(
      `Another running member uses the server id "${id}": give every member its own --server-id (or data directory)`,
    );
    this.name = "DuplicateMemberError";
  }
}

/** What {@link Reconciler.reconcile} did. */
export interface ReconcileResult {
  readonly done: RepoPath[];
  readonly failed: RepoPath[];
}

/** Reconciles repositories with other members. */
export class Reconciler {
  constructor(
    private readonly db: Database,
    private readonly sync: SyncService,
    private readonly peers: PeerClient,
    private readonly self: { readonly id: string; readonly instance: string },
    private readonly metrics: ClusterMetrics,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The other members, best first: ready ones, then by position in the stream. Throws
   * {@link DuplicateMemberError} when another process answers with this member's id.
   */
  async others(): Promise<MemberInfo[]> {
    const all = await this.peers.members();
    if (
      all.some((m) =>
        m.id === this.self.id && m.instance !== this.self.instance
      )
    ) throw new DuplicateMemberError(this.self.id);
    return all.filter((m) => m.id !== this.self.id).sort((a, b) =>
      Number(b.ready) - Number(a.ready) || b.applied - a.applied ||
      (a.id < b.id ? -1 : 1)
    );
  }

  /** {@link others}, retried while NATS hiccups; null once `stopped()`. */
  async othersRetrying(stopped: () => boolean): Promise<MemberInfo[] | null> {
    for (let attempt = 0; !stopped(); attempt++) {
      try {
        return await this.others();
      } catch (e) {
        if (e instanceof DuplicateMemberError) throw e;
        if (attempt % 10 === 0) {
          this.log(
            `cluster: asking the other members failed (${
              (e as Error)?.message ?? e
            }); retrying`,
          );
        }
        await sleep(backoff(attempt));
      }
    }
    return null;
  }

  /**
   * At start, while `dirty.all` (a gap, a new member, an unfinished earlier attempt):
   * reconciles everything with a ready member if any, else any member, until done.
   * With no other member, what the stream gave is all there is.
   */
  async reconcileAtStart(
    others: MemberInfo[],
    dirty: DirtySet,
    stopped: () => boolean,
  ): Promise<void> {
    for (let attempt = 0; dirty.all && !stopped(); attempt++) {
      const peer = others.find((m) => m.ready) ?? others[0];
      if (!peer) {
        this.log(
          "cluster: no other member to reconcile with: serving what the stream holds",
        );
        return;
      }
      try {
        await this.reconcileEverything(peer, dirty, stopped);
      } catch (e) {
        this.log(
          `cluster: reconciling with member ${peer.id} failed (${
            (e as Error)?.message ?? e
          }); retrying`,
        );
      }
      if (!dirty.all) return;
      await sleep(backoff(attempt));
      others = await this.othersRetrying(stopped) ?? [];
    }
  }

  /** Every repository `peer` holds or this member holds. */
  async allRepositories(peer: MemberInfo): Promise<RepoPath[]> {
    const theirs = await this.peers.repositories(peer.id);
    const ours = await this.db.listRepositories();
    return [...new Set([...theirs, ...ours])].sort();
  }

  /** Reconciles `repos` with `peer`, a few at a time. */
  async reconcile(
    peer: MemberInfo,
    repos: readonly RepoPath[],
  ): Promise<ReconcileResult> {
    const done: RepoPath[] = [], failed: RepoPath[] = [];
    let next = 0;
    let firstError: unknown;
    const worker = async () => {
      while (next < repos.length) {
        const repo = repos[next++];
        try {
          await this.reconcileOne(peer, repo);
          done.push(repo);
          this.metrics.reconciled++;
        } catch (e) {
          failed.push(repo);
          this.metrics.reconcileFailures++;
          firstError ??= e;
        }
      }
    };
    await Promise.all(
      Array.from({ length: RECONCILE_CONCURRENCY }, () => worker()),
    );
    if (failed.length) {
      this.log(
        `cluster: reconciling ${failed.length} of ${repos.length} repositories with member ${peer.id} failed (${
          (firstError as Error)?.message ?? firstError
        }); they are retried`,
      );
    }
    return { done, failed };
  }

  /**
   * Reconciles every repository with `peer` (retrying failures with the best other
   * member) until done or `stopped()`; clears `dirty.all` once everything was.
   */
  async reconcileEverything(
    peer: MemberInfo,
    dirty: DirtySet,
    stopped: () => boolean,
  ): Promise<void> {
    let repos = await this.allRepositories(peer);
    const total = repos.length;
    const t = Date.now();
    for (let attempt = 0; !stopped(); attempt++) {
      const { done, failed } = await this.reconcile(peer, repos);
      for (const repo of done) dirty.resolved(repo);
      if (!failed.length) {
        dirty.clearAll();
        this.log(
          `cluster: reconciled ${total} repositories with member ${peer.id} in ${
            Date.now() - t
          } ms`,
        );
        return;
      }
      repos = failed;
      await sleep(backoff(attempt));
      const others = await this.others().catch(() => []);
      if (!others.length) {
        this.log(
          `cluster: no member left to reconcile ${failed.length} repositories with; the repairs retry them`,
        );
        return;
      }
      peer = others[0];
    }
  }

  /** Reconciles one repository with `peer` and announces what arrived. */
  async reconcileOne(peer: MemberInfo, repo: RepoPath): Promise<void> {
    const received: CommitId[] = [];
    const transport = this.peers.transport(peer.id, (answer) => {
      for (const rec of answer.commits ?? []) {
        if (rec.length > COMMIT_RECORD_HEADER) {
          received.push(
            commitIdFromBytes(sha256(rec.subarray(COMMIT_RECORD_HEADER))),
          );
        }
      }
    });
    await this.db.syncWith(repo, transport, this.sync.hooks);
    if (!received.length) return;
    const r = await this.db.open(repo);
    const stored = received.filter((id) => r.commitOf(id) !== undefined);
    if (stored.length) this.sync.announce(r, stored, FROM_RECONCILIATION);
  }
}
