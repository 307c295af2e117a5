/**
 * Stateless sync rounds between a replica and a peer. The initiator sends the fingerprint
 * of its whole commit-id set; each side answers with its reconciliation reply plus the
 * commit records the other side lacks, until neither has anything left to ask. All state
 * lives in the messages, so a server keeps nothing between rounds.
 *
 * @module
 */

import type { Repository } from "../core/repository.ts";
import type { RejectedRecord, WriteCheck } from "../core/ingest.ts";
import { type CommitId, commitIdFromBytes } from "../commit/commit.ts";
import {
  decodeMessage,
  encodeMessage,
  initiate,
  respond,
} from "./reconcile.ts";
import {
  decodeSyncMessage,
  encodeSyncMessage,
  MAX_COMMITS_PER_MESSAGE,
  MAX_SYNC_ROUNDS,
  type SyncMessage,
} from "./protocol.ts";

/** Sends one encoded message and returns the peer's encoded answer. */
export interface SyncTransport {
  request(message: Uint8Array): Promise<Uint8Array>;
}

/** A sync failure reported by the peer or found in its answer. */
export class SyncError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "SyncError";
  }
}

/**
 * Trust hooks of a sync peer: how session records travel with commits, and who may
 * write what. All optional: without them commits travel bare and every trusted session
 * may write (the pre-server behaviour).
 */
export interface SyncHooks {
  /** Verifies and trusts session records received with commits, before ingest. */
  admitSessions?(records: readonly Uint8Array[]): Promise<void>;
  /** Encoded session records of these authors, sent along with their commits. */
  sessionRecords?(ids: ReadonlySet<string>): Uint8Array[];
  /** May this commit's author write this item? Refused commits are not stored. */
  mayWrite?: WriteCheck;
}

/** What one sync() did. */
export interface SyncStats {
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  commitsSent: number;
  commitsReceived: number;
  rejected: RejectedRecord[];
}

/** Session ids of the authors of these commits. */
export function authorsOf(
  repo: Repository,
  ids: Iterable<CommitId>,
): Set<string> {
  const out = new Set<string>();
  const index = repo.commitIndex();
  for (const id of ids) {
    const e = index.get(id);
    const s = e && repo.graphOf(e).nodes.get(id)?.commit.session;
    if (s) out.add(s);
  }
  return out;
}

function recordsFor(
  repo: Repository,
  ids: readonly Uint8Array[],
  hooks: SyncHooks,
) {
  const out: Uint8Array[] = [];
  const sent: CommitId[] = [];
  let more = false;
  for (const raw of ids) {
    if (out.length >= MAX_COMMITS_PER_MESSAGE) {
      more = true;
      break;
    }
    const id = commitIdFromBytes(raw);
    const rec = repo.commitRecord(id);
    if (rec) {
      out.push(rec);
      sent.push(id);
    }
  }
  const sessions = hooks.sessionRecords && sent.length
    ? hooks.sessionRecords(authorsOf(repo, sent))
    : [];
  return { records: out, more, sessions };
}

async function ingestWith(
  repo: Repository,
  message: SyncMessage,
  hooks: SyncHooks,
) {
  if (message.sessions?.length && hooks.admitSessions) {
    await hooks.admitSessions(message.sessions);
  }
  return await repo.ingest(message.commits!, hooks.mayWrite);
}

/**
 * Answers one sync message for `repo` (the server side of a round): ingests the commits it
 * carries, then replies to its reconciliation with the commits the peer lacks.
 */
export async function answerSync(
  repo: Repository,
  message: SyncMessage,
  hooks: SyncHooks = {},
): Promise<
  { answer: SyncMessage; accepted: CommitId[]; rejected: RejectedRecord[] }
> {
  let rejected: RejectedRecord[] = [];
  let accepted: CommitId[] = [];
  if (message.commits?.length) {
    ({ accepted, rejected } = await ingestWith(repo, message, hooks));
  }
  const error = rejected.length
    ? {
      error: {
        code: "rejected_commits",
        message: `${rejected.length} commit(s) refused: ${rejected[0].reason}`,
      },
    }
    : {};
  if (!message.rc) {
    return { answer: { repo: repo.path, ...error }, accepted, rejected };
  }
  await repo.flush();
  const r = respond(repo.syncSet(), decodeMessage(message.rc));
  const { records, more, sessions } = recordsFor(repo, r.have, hooks);
  return {
    answer: {
      repo: repo.path,
      ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
      ...(records.length ? { commits: records } : {}),
      ...(sessions.length ? { sessions } : {}),
      ...(more ? { more: true } : {}),
      ...error,
    },
    accepted,
    rejected,
  };
}

/** Runs rounds with a peer until both sides hold the same commits of `repo`. */
export async function syncRepository(
  repo: Repository,
  transport: SyncTransport,
  hooks: SyncHooks = {},
): Promise<SyncStats> {
  const stats: SyncStats = {
    rounds: 0,
    bytesSent: 0,
    bytesReceived: 0,
    commitsSent: 0,
    commitsReceived: 0,
    rejected: [],
  };
  for (let pass = 0; pass < 8; pass++) {
    await repo.flush();
    let msg: SyncMessage | null = {
      repo: repo.path,
      rc: encodeMessage(initiate(repo.syncSet())),
    };
    let again = false;
    let rounds = 0;
    while (msg) {
      stats.rounds++;
      if (++rounds > MAX_SYNC_ROUNDS) {
        throw new SyncError(
          "too_many_rounds",
          `Sync of ${repo.path} did not converge`,
        );
      }
      const out = encodeSyncMessage(msg);
      stats.bytesSent += out.length;
      stats.commitsSent += msg.commits?.length ?? 0;
      const raw = await transport.request(out);
      stats.bytesReceived += raw.length;
      const answer = decodeSyncMessage(raw);
      if (answer.error && answer.error.code !== "rejected_commits") {
        throw new SyncError(answer.error.code, answer.error.message);
      }
      if (answer.commits?.length) {
        stats.commitsReceived += answer.commits.length;
        const result = await ingestWith(repo, answer, hooks);
        stats.rejected.push(...result.rejected);
      }
      if (answer.more) again = true;
      if (!answer.rc) break;
      const r = respond(repo.syncSet(), decodeMessage(answer.rc));
      const { records, more, sessions } = recordsFor(repo, r.have, hooks);
      if (more) again = true;
      msg = r.reply || records.length
        ? {
          repo: repo.path,
          ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
          ...(records.length ? { commits: records } : {}),
          ...(sessions.length ? { sessions } : {}),
        }
        : null;
    }
    if (!again) return stats;
  }
  return stats;
}

/** Encodes/decodes around {@link answerSync}: the handler a server mounts per transport. */
export async function answerSyncBytes(
  open: (repo: string) => Promise<Repository>,
  bytes: Uint8Array,
): Promise<Uint8Array> {
  const message = decodeSyncMessage(bytes);
  const repo = await open(message.repo);
  return encodeSyncMessage((await answerSync(repo, message)).answer);
}
