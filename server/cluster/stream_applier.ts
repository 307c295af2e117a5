/**
 * Applies batches of stream messages to this member: each message is one commit in the
 * sync codec (`{ repo, commits: [record], sessions: [author] }`), verified on ingest
 * like any peer's (id = hash, signature by a trusted session, write rule), then
 * announced to this member's WebSocket clients. Messages of one repository within a
 * batch are ingested together (one signature batch). Undecodable or misaddressed
 * messages are counted and skipped; refused commits are counted and logged. Order does
 * not matter (commits whose parents are missing wait for them), nor do duplicates.
 *
 * @module
 */

import type { Database } from "../../mod.ts";
import type { RepoPath } from "../../lib/path.ts";
import type { CommitId } from "../../lib/commit/commit.ts";
import type { Repository } from "../../lib/core/repository.ts";
import { decodeSyncMessage } from "../../lib/sync/protocol.ts";
import { answerSync } from "../../lib/sync/sync_round.ts";
import type { SyncService } from "../sync_service.ts";
import type { ClusterMetrics } from "./cluster_metrics.ts";
import type { ClusterSubjects } from "./subjects.ts";
import type { StreamMessage } from "./stream_follower.ts";

/** Marks commits announced by the bridge, so the publisher does not send them back. */
export const FROM_STREAM: unique symbol = Symbol("capra cluster stream");

/** Most refusal lines logged per minute (the counter keeps counting). */
export const MAX_REFUSAL_LOGS_PER_MINUTE = 10;

/** What the applier needs. */
export interface StreamApplierDeps {
  readonly db: Database;
  readonly sync: SyncService;
  readonly subjects: ClusterSubjects;
  readonly metrics: ClusterMetrics;
  readonly log: (line: string) => void;
  /** Called for each repository that received new commits. */
  readonly onIngested?: (repo: RepoPath) => void;
  /** Called when sequences were skipped (the stream no longer holds them). */
  readonly onGap: (from: number, to: number) => void;
}

/** Applies stream batches and tracks the last applied sequence. */
export class StreamApplier {
  /** Last sequence whose commits were ingested (not necessarily flushed yet). */
  applied = 0;
  /** Messages after the last applied one, as of its delivery. */
  pendingAfter = 0;
  /** Highest sequence applied before the last rewind: no gap is reported below it. */
  #replayUntil = 0;
  #refusalLogs = 0;
  #refusalWindow = 0;

  constructor(private readonly deps: StreamApplierDeps) {}

  /** Ingests a batch (stream order); throws on storage errors so it is retried. */
  async apply(batch: readonly StreamMessage[]): Promise<void> {
    if (!batch.length) return;
    const { db, sync, subjects, metrics } = this.deps;
    const first = batch[0].seq;
    if (
      this.applied > 0 && first > this.applied + 1 &&
      first > this.#replayUntil + 1
    ) {
      this.deps.onGap(this.applied + 1, first - 1);
    }
    const groups = new Map<
      RepoPath,
      { commits: Uint8Array[]; sessions: Uint8Array[] }
    >();
    const repos = new Map<RepoPath, Repository>();
    for (const m of batch) {
      if (m.seq <= this.applied) continue;
      try {
        const repo = subjects.repoOf(m.subject);
        let r = repos.get(repo);
        if (!r) repos.set(repo, r = await db.open(repo));
        // Known already (this member's own commits, replays): nothing to decode. The
        // id only ever skips a message, it never lets anything in unverified.
        if (m.msgId && r.commitOf(m.msgId as CommitId)) {
          metrics.known++;
          continue;
        }
        const msg = decodeSyncMessage(m.data);
        if (msg.repo !== repo || !msg.commits?.length) {
          throw new SyntaxError(
            `message for ${msg.repo} with ${
              msg.commits?.length ?? 0
            } commits on subject ${m.subject}`,
          );
        }
        let g = groups.get(repo);
        if (!g) groups.set(repo, g = { commits: [], sessions: [] });
        g.commits.push(...msg.commits);
        if (msg.sessions) g.sessions.push(...msg.sessions);
      } catch (e) {
        metrics.malformed++;
        this.#logRefusal(
          `cluster: skipped stream message ${m.seq}: ${(e as Error).message}`,
        );
      }
    }
    for (const [path, g] of groups) {
      const repo = await db.open(path);
      const { accepted, rejected } = await answerSync(
        repo,
        { repo: path, commits: g.commits, sessions: g.sessions },
        sync.hooks,
      );
      metrics.ingested += accepted.length;
      if (rejected.length) {
        metrics.refused += rejected.length;
        this.#logRefusal(
          `cluster: refused ${rejected.length} commit(s) of ${path} from the stream: ${
            rejected[0].reason
          }`,
        );
      }
      if (accepted.length) {
        sync.announce(repo, accepted, FROM_STREAM);
        this.deps.onIngested?.(path);
      }
    }
    metrics.consumed += batch.length;
    const last = batch[batch.length - 1];
    this.applied = Math.max(this.applied, last.seq);
    this.pendingAfter = last.pending;
  }

  /**
   * Applies again from `seq` (after a reconnection: if every NATS node restarted, the
   * stream may have lost its last messages and given their sequences to new ones).
   */
  rewind(seq: number): void {
    this.#replayUntil = Math.max(this.#replayUntil, this.applied);
    this.applied = Math.min(this.applied, Math.max(0, seq - 1));
  }

  #logRefusal(line: string): void {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.#refusalWindow) {
      this.#refusalWindow = minute;
      this.#refusalLogs = 0;
    }
    if (this.#refusalLogs++ < MAX_REFUSAL_LOGS_PER_MINUTE) this.deps.log(line);
  }
}
