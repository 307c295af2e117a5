/**
 * Stateless sync rounds between a replica and a peer. The initiator sends the fingerprint
 * of its whole commit-id set; each side answers with its reconciliation reply plus the
 * commit records the other side lacks, until neither has anything left to ask. All state
 * lives in the messages, so a server keeps nothing between rounds.
 *
 * @module
 */

import type { Repository } from "../core/repository.ts";
import type { RejectedRecord } from "../core/ingest.ts";
import { commitIdFromBytes } from "../commit/commit.ts";
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

/** What one sync() did. */
export interface SyncStats {
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  commitsSent: number;
  commitsReceived: number;
  rejected: RejectedRecord[];
}

function recordsFor(repo: Repository, ids: readonly Uint8Array[]) {
  const out: Uint8Array[] = [];
  let more = false;
  for (const id of ids) {
    if (out.length >= MAX_COMMITS_PER_MESSAGE) {
      more = true;
      break;
    }
    const rec = repo.commitRecord(commitIdFromBytes(id));
    if (rec) out.push(rec);
  }
  return { records: out, more };
}

/**
 * Answers one sync message for `repo` (the server side of a round): ingests the commits it
 * carries, then replies to its reconciliation with the commits the peer lacks.
 */
export async function answerSync(
  repo: Repository,
  message: SyncMessage,
): Promise<{ answer: SyncMessage; rejected: RejectedRecord[] }> {
  let rejected: RejectedRecord[] = [];
  if (message.commits?.length) {
    rejected = (await repo.ingest(message.commits)).rejected;
  }
  if (!message.rc) return { answer: { repo: repo.path }, rejected };
  await repo.flush();
  const r = respond(repo.syncSet(), decodeMessage(message.rc));
  const { records, more } = recordsFor(repo, r.have);
  return {
    answer: {
      repo: repo.path,
      ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
      ...(records.length ? { commits: records } : {}),
      ...(more ? { more: true } : {}),
      ...(rejected.length
        ? {
          error: {
            code: "rejected_commits",
            message: `${rejected.length} commit(s) refused: ${
              rejected[0].reason
            }`,
          },
        }
        : {}),
    },
    rejected,
  };
}

/** Runs rounds with a peer until both sides hold the same commits of `repo`. */
export async function syncRepository(
  repo: Repository,
  transport: SyncTransport,
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
        const result = await repo.ingest(answer.commits);
        stats.rejected.push(...result.rejected);
      }
      if (answer.more) again = true;
      if (!answer.rc) break;
      const r = respond(repo.syncSet(), decodeMessage(answer.rc));
      const { records, more } = recordsFor(repo, r.have);
      if (more) again = true;
      msg = r.reply || records.length
        ? {
          repo: repo.path,
          ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
          ...(records.length ? { commits: records } : {}),
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
