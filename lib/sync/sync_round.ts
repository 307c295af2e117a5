/**
 * Stateless sync rounds between a replica and a peer. The initiator sends the fingerprint
 * of its whole commit-id set; each side answers with its reconciliation reply plus the
 * commit records the other side lacks, until neither has anything left to ask. All state
 * lives in the messages, so a server keeps nothing between rounds.
 *
 * @module
 */

import {
  type OpenRepository,
  openRepositoryOf,
} from "../core/open_repository.ts";
import type { Repository } from "../core/repository.ts";
import {
  beginIngest,
  type IngestResult,
  type PendingIngest,
  type RejectedRecord,
  type WriteCheck,
} from "../core/ingest.ts";
import {
  type CommitId,
  commitIdBytes,
  commitIdFromBytes,
} from "../commit/commit.ts";
import type { PeerHoldings, ReappliedEdits } from "../core/refused_edits.ts";
import { prunedParents, vouchedPruned } from "./pruned_ids.ts";
import type { IdSet } from "../idset/id_set.ts";
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
  type SyncError as SyncErrorInfo,
  type SyncMessage,
} from "./protocol.ts";

/** Sends one encoded message and returns the peer's encoded answer. */
export interface SyncTransport {
  request(message: Uint8Array): Promise<Uint8Array>;
}

/** A sync failure reported by the peer or found in its answer. */
export class SyncError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The server's error code, when it sent one (e.g. `session_expired`). */
    readonly serverCode?: string,
  ) {
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
  /**
   * The commit ids answered from (default the whole repository): a server passes what
   * the requesting session may read, so nothing else is sent or revealed.
   */
  syncSet?(repo: Repository): IdSet;
  /**
   * The history retention (ms) the peer announced (a server does in its session
   * response): its horizon is followed down to it, below this replica's own minimum
   * retention when it is shorter.
   */
  readonly peerRetentionMs?: number;
}

/** What one sync() did. */
export interface SyncStats {
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  commitsSent: number;
  commitsReceived: number;
  rejected: RejectedRecord[];
  /**
   * Local commits the peer could not take because it garbage-collected the history they
   * build on (older than its horizon, or built on a commit it collected). A database's
   * `syncWith` re-applies them on the peer's current state: see `reapplied`.
   */
  obsolete: number;
  /** Non-fatal errors the peer reported (refused or obsolete commits). */
  errors: SyncErrorInfo[];
  /** The peer's garbage-collection horizon (HLC timestamp; 0: it collected nothing). */
  peerHorizon: number;
  /** Refused local edits re-applied as new commits, per item (see `obsolete`). */
  reapplied: ReappliedEdits[];
}

/**
 * What sync passes learn about the peer's holdings (filled by {@link syncRepository}):
 * what it lacks of this replica's commits, which of those were held back (older than
 * its horizon: it would ignore them) and which it reported ignoring.
 */
export interface PeerKnowledge extends PeerHoldings {
  readonly lacking: Set<CommitId>;
  readonly heldBack: Set<CommitId>;
  readonly refused: Set<CommitId>;
}

/** Empty {@link PeerKnowledge}. */
export function peerKnowledge(): PeerKnowledge {
  return { lacking: new Set(), heldBack: new Set(), refused: new Set() };
}

/** Answers a transport already decoded (to validate them), by their bytes. */
const decodedAnswers = new WeakMap<Uint8Array, SyncMessage>();

/**
 * Decodes and validates a peer's answer, remembering the result for the sync loop that
 * receives these bytes next (the transports hand over fresh buffers nobody changes).
 */
export function decodeAnswer(bytes: Uint8Array): SyncMessage {
  let m = decodedAnswers.get(bytes);
  if (!m) {
    m = decodeSyncMessage(bytes);
    decodedAnswers.set(bytes, m);
  }
  return m;
}

/** Error codes of an answer that do not end the sync (they are reported in stats). */
const NON_FATAL = new Set(["rejected_commits", "obsolete_commits"]);

/**
 * The set of signed commit ids `repo` offers to peers, as reconciliation compares them
 * (built on first use, then kept current). Read it; never change it.
 */
export function syncSetOf(repo: Repository): IdSet {
  return openRepositoryOf(repo).syncSet();
}

/** Session ids of the authors of these commits. */
export function authorsOf(
  repo: Repository,
  ids: Iterable<CommitId>,
): Set<string> {
  const out = new Set<string>();
  for (const id of ids) {
    const s = repo.commitOf(id)?.session;
    if (s) out.add(s);
  }
  return out;
}

function recordsFor(
  repo: OpenRepository,
  ids: readonly Uint8Array[],
  hooks: SyncHooks,
  /** Commits older than this are not sent (the peer's horizon), but noted here. */
  holdBack?: { readonly before: number; readonly into: PeerKnowledge },
) {
  const out: Uint8Array[] = [];
  const sent: CommitId[] = [];
  let more = false;
  for (const raw of ids) {
    const id = commitIdFromBytes(raw);
    if (holdBack) {
      holdBack.into.lacking.add(id);
      const ts = repo.commitOf(id)?.ts;
      if (ts !== undefined && ts < holdBack.before) {
        holdBack.into.heldBack.add(id);
        continue;
      }
    }
    if (out.length >= MAX_COMMITS_PER_MESSAGE) {
      more = true;
      if (holdBack) continue; // noting what the peer lacks
      break;
    }
    const rec = repo.commitRecord(id);
    if (rec) {
      out.push(rec);
      sent.push(id);
    }
  }
  const sessions = hooks.sessionRecords && sent.length
    ? hooks.sessionRecords(authorsOf(repo, sent))
    : [];
  return {
    records: out,
    sent,
    more,
    sessions,
    pruned: prunedParents(repo, sent),
  };
}

/** Admits the message's session records, then ingests its commits. */
export async function ingestWith(
  repo: Repository,
  message: SyncMessage,
  hooks: SyncHooks,
): Promise<IngestResult> {
  const open = openRepositoryOf(repo);
  return await (await beginIngestWith(open, message, hooks)).finish();
}

/**
 * Admits the message's session records and starts ingesting its commits (see
 * {@link beginIngest}): their signatures are being verified when this resolves.
 */
async function beginIngestWith(
  repo: OpenRepository,
  message: SyncMessage,
  hooks: SyncHooks,
): Promise<PendingIngest> {
  if (message.sessions?.length && hooks.admitSessions) {
    await hooks.admitSessions(message.sessions);
  }
  const pruned = await vouchedPruned(repo, message, hooks.mayWrite);
  if (pruned.length) repo.admitPruned(pruned);
  repo.checkOpen();
  return beginIngest(repo, message.commits!, hooks.mayWrite, {
    vouchedPruned: new Set(pruned),
  });
}

/**
 * Answers one sync message for `repo` (the server side of a round): ingests the commits it
 * carries, then replies to its reconciliation with the commits the peer lacks.
 */
export async function answerSync(
  publicRepo: Repository,
  message: SyncMessage,
  hooks: SyncHooks = {},
): Promise<
  { answer: SyncMessage; accepted: CommitId[]; rejected: RejectedRecord[] }
> {
  const repo = openRepositoryOf(publicRepo);
  let rejected: RejectedRecord[] = [];
  let accepted: CommitId[] = [];
  let obsolete = 0;
  let obsoleteIds: CommitId[] = [];
  if (message.commits?.length) {
    ({ accepted, rejected, obsolete, obsoleteIds } = await ingestWith(
      repo,
      message,
      hooks,
    ));
  }
  // The sender re-applies these (it still holds the history they build on).
  const ignored = obsoleteIds.length
    ? {
      obsolete: obsoleteIds.slice(0, MAX_COMMITS_PER_MESSAGE).map(
        commitIdBytes,
      ),
    }
    : {};
  const error = rejected.length
    ? {
      error: {
        code: "rejected_commits",
        message: `${rejected.length} commit(s) refused: ${rejected[0].reason}`,
        ...ignored,
      },
    }
    : obsolete
    ? {
      error: {
        code: "obsolete_commits",
        message:
          `${obsolete} commit(s) need history of ${repo.path} that was garbage-collected (older than its horizon, ${
            new Date(Math.floor(repo.horizon / 1024)).toISOString()
          }, or built on a collected commit) and were ignored: the sender re-applies them on the current state`,
        ...ignored,
      },
    }
    : {};
  const horizon = repo.horizon > 0 ? { horizon: repo.horizon } : {};
  if (!message.rc) {
    return {
      answer: { repo: repo.path, ...horizon, ...error },
      accepted,
      rejected,
    };
  }
  await repo.flush();
  const set = hooks.syncSet ? hooks.syncSet(repo) : repo.syncSet();
  const r = respond(set, decodeMessage(message.rc));
  const { records, more, sessions, pruned } = recordsFor(repo, r.have, hooks);
  return {
    answer: {
      repo: repo.path,
      ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
      ...(records.length ? { commits: records } : {}),
      ...(sessions.length ? { sessions } : {}),
      ...(pruned.length ? { pruned } : {}),
      ...(more ? { more: true } : {}),
      ...horizon,
      ...error,
    },
    accepted,
    rejected,
  };
}

/**
 * Runs rounds with a peer until both sides hold the same commits of `repo`, except those
 * older than the peer's horizon (it would ignore them: they are held back, and noted in
 * `knowledge` with what else the rounds learned of the peer's holdings).
 */
export async function syncRepository(
  publicRepo: Repository,
  transport: SyncTransport,
  hooks: SyncHooks = {},
  knowledge: PeerKnowledge = peerKnowledge(),
): Promise<SyncStats> {
  const repo = openRepositoryOf(publicRepo);
  const stats: SyncStats = {
    rounds: 0,
    bytesSent: 0,
    bytesReceived: 0,
    commitsSent: 0,
    commitsReceived: 0,
    rejected: [],
    obsolete: 0,
    errors: [],
    peerHorizon: 0,
    reapplied: [],
  };
  for (let pass = 0; pass < 8; pass++) {
    await repo.flush();
    knowledge.lacking.clear(); // each pass learns the whole difference again
    if (!await runPass(repo, transport, hooks, stats, knowledge)) return stats;
  }
  return stats;
}

/** One pass of rounds from a fresh initiate; true when the peer left commits out. */
async function runPass(
  repo: OpenRepository,
  transport: SyncTransport,
  hooks: SyncHooks,
  stats: SyncStats,
  knowledge: PeerKnowledge,
): Promise<boolean> {
  let rounds = 0;
  const send = (msg: SyncMessage): Promise<Uint8Array> => {
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
    const answer = transport.request(out);
    answer.catch(() => {}); // awaited in the loop; not unhandled meanwhile
    return answer;
  };
  let request: Promise<Uint8Array> | null = send({
    repo: repo.path,
    rc: encodeMessage(initiate(repo.syncSet())),
  });
  let again = false;
  // A received batch is stored once its signatures verify, batches in order. Meanwhile
  // the next round is already on its way: the reply to the peer's reconciliation does
  // not depend on the batch (the peer's message settled the ranges of its ids), so the
  // peer, the network and the verification work at the same time.
  let storing: Promise<void> = Promise.resolve();
  try {
    while (request) {
      const raw = await request;
      request = null;
      stats.bytesReceived += raw.length;
      const answer = decodeAnswer(raw);
      if (answer.error && !NON_FATAL.has(answer.error.code)) {
        throw new SyncError(answer.error.code, answer.error.message);
      }
      if (answer.error) {
        const { obsolete, ...error } = answer.error;
        stats.errors.push(error);
        for (const id of obsolete ?? []) {
          knowledge.refused.add(commitIdFromBytes(id));
          stats.obsolete++;
        }
      }
      if (answer.horizon) {
        stats.peerHorizon = Math.max(stats.peerHorizon, answer.horizon);
      }
      if (answer.more) again = true;
      if (answer.rc) {
        const r = respond(repo.syncSet(), decodeMessage(answer.rc));
        const { records, more, sessions, pruned } = recordsFor(
          repo,
          r.have,
          hooks,
          { before: stats.peerHorizon, into: knowledge },
        );
        if (more) again = true;
        if (r.reply || records.length) {
          request = send({
            repo: repo.path,
            ...(r.reply ? { rc: encodeMessage(r.reply) } : {}),
            ...(records.length ? { commits: records } : {}),
            ...(sessions.length ? { sessions } : {}),
            ...(pruned.length ? { pruned } : {}),
          });
        }
      }
      if (answer.commits?.length) {
        stats.commitsReceived += answer.commits.length;
        const pending = await beginIngestWith(repo, answer, hooks);
        storing = storing.then(() => pending.finish()).then((result) => {
          stats.rejected.push(...result.rejected);
        });
        storing.catch(() => {}); // awaited below; not unhandled meanwhile
      }
    }
  } catch (e) {
    await storing.catch(() => {});
    throw e;
  }
  await storing;
  return again;
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
