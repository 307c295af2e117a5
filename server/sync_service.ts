/**
 * The server side of sync, shared by the HTTP and WebSocket routes: checks the session's
 * read access, ingests with the write rules (per commit), answers the reconciliation with
 * only what the session may read (per item where an app rule decides per item: the
 * reconciliation then runs over that subset, so the ids of other items never reach the
 * client), counts everything and announces accepted commits.
 *
 * @module
 */

import type { Database } from "../mod.ts";
import type { Repository } from "../lib/core/repository.ts";
import type { SessionRecord } from "../lib/core/session.ts";
import { type CommitId, commitIdBytes } from "../lib/commit/commit.ts";
import { IdSet } from "../lib/idset/id_set.ts";
import type { SessionId } from "../lib/crypto/keys.ts";
import { parsePath, type RepoPath } from "../lib/path.ts";
import { decodeSyncMessage, encodeSyncMessage } from "../lib/sync/protocol.ts";
import {
  answerSync,
  type SyncHooks,
  syncSetOf,
} from "../lib/sync/sync_round.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import type { AccessRules } from "../lib/sync/rules.ts";
import { HttpError } from "./errors.ts";
import type { ServerMetrics } from "./metrics.ts";
import type { SessionQuotas } from "./quotas.ts";

/** Called with commits accepted from `origin` (a socket, or undefined for HTTP). */
export type AcceptedListener = (
  repo: Repository,
  ids: readonly CommitId[],
  origin: unknown,
) => void;

/** Answers sync messages for authenticated sessions. */
export class SyncService {
  readonly #listeners = new Set<AcceptedListener>();
  readonly hooks: SyncHooks;

  constructor(
    readonly db: Database,
    readonly trust: RootSessionTrust,
    readonly rules: AccessRules,
    readonly metrics: ServerMetrics,
    /** Per-session quotas charged by every message (none when absent). */
    readonly quotas?: SessionQuotas,
  ) {
    this.hooks = {
      admitSessions: async (records) => {
        await trust.admit(records);
      },
      sessionRecords: (ids) => this.sessionRecords(ids),
      mayWrite: (key, session) => {
        const p = parsePath(key);
        return rules.allows(p.repoPath, p.item, session, "write");
      },
    };
  }

  /** Encoded records of these sessions (those the trust knows). */
  sessionRecords(ids: ReadonlySet<string>): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const id of ids) {
      const e = this.trust.encoded(id as SessionId);
      if (e) out.push(e);
    }
    return out;
  }

  /** Listens to accepted commits; returns an unsubscribe. */
  onAccepted(listener: AcceptedListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Announces commits stored by any path (remote ingest or local writes). */
  announce(repo: Repository, ids: readonly CommitId[], origin: unknown): void {
    for (const l of this.#listeners) {
      try {
        l(repo, ids, origin);
      } catch (e) {
        console.error("capra server:", e);
      }
    }
  }

  /** Throws a 403 unless `session` may read `repo`. */
  checkRead(repo: RepoPath, session: SessionRecord): void {
    if (!this.rules.allows(repo, undefined, session, "read")) {
      this.metrics.requestsRefused++;
      throw new HttpError(
        403,
        "forbidden",
        `Session ${session.id} may not read ${repo}`,
      );
    }
  }

  /**
   * Which of these commits of `repo` `session` may see: those of items it may read and
   * those it authored. All of them when reads are decided per repository.
   */
  readable(
    repo: Repository,
    ids: readonly CommitId[],
    session: SessionRecord,
  ): CommitId[] {
    if (!this.rules.perItem(repo.path)) return [...ids];
    const byKey = new Map<string, boolean>();
    const keyAt = repo.path.length + 1;
    return ids.filter((id) => {
      const c = repo.commitOf(id);
      if (!c) return false;
      const key = c.key.slice(keyAt);
      let ok = byKey.get(key);
      if (ok === undefined) {
        ok = this.rules.allows(repo.path, key, session, "read");
        byKey.set(key, ok);
      }
      return ok || c.session === session.id;
    });
  }

  /**
   * The set a session reconciles against: every signed commit of `repo`, or, when an app
   * rule decides reads per item, only those {@link readable} by it (rebuilt per round:
   * O(commits) for such repositories).
   */
  syncSetFor(repo: Repository, session: SessionRecord): IdSet {
    if (!this.rules.perItem(repo.path)) return syncSetOf(repo);
    const set = new IdSet();
    for (const id of this.readable(repo, repo.commitIds(), session)) {
      set.add(commitIdBytes(id));
    }
    return set;
  }

  /** May `session` read item `key` of `repo`? */
  mayReadItem(repo: RepoPath, key: string, session: SessionRecord): boolean {
    return this.rules.allows(repo, key, session, "read");
  }

  /** Answers one encoded sync message (optionally required to be for `expectedRepo`). */
  async answer(
    session: SessionRecord,
    bytes: Uint8Array,
    expectedRepo?: string,
    origin?: unknown,
  ): Promise<Uint8Array> {
    this.metrics.bytesIn += bytes.length;
    this.metrics.syncRounds++;
    // Over quota: refused before anything of the message is decoded, verified or stored.
    this.quotas?.checkBytes(session.id, bytes.length);
    const message = decodeSyncMessage(bytes);
    this.quotas?.charge(session.id, bytes.length, message.commits?.length ?? 0);
    if (expectedRepo !== undefined && message.repo !== expectedRepo) {
      throw new HttpError(
        400,
        "bad_request",
        `Message for ${message.repo} posted to ${expectedRepo}`,
      );
    }
    this.checkRead(message.repo, session);
    const repo = await this.db.open(message.repo);
    const { answer, accepted, rejected } = await answerSync(repo, message, {
      ...this.hooks,
      syncSet: (r) => this.syncSetFor(r, session),
    });
    this.metrics.commitsAccepted += accepted.length;
    this.metrics.commitsRejected += rejected.length;
    if (accepted.length) this.announce(repo, accepted, origin);
    const out = encodeSyncMessage(answer);
    this.metrics.bytesOut += out.length;
    return out;
  }
}
