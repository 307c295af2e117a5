/**
 * The `pruned` ids of sync messages: the collected (garbage-collected) parents that the
 * commits a replica sends still name. The sender lists them so the receiver can treat
 * those commits as complete; the receiver takes them only for commits it would accept.
 *
 * @module
 */

import type { OpenRepository } from "../core/open_repository.ts";
import {
  type Commit,
  type CommitId,
  commitIdBytes,
  commitIdFromBytes,
  decodeCommitWithId,
} from "../commit/commit.ts";
import { COMMIT_RECORD_HEADER } from "../core/records.ts";
import { timestampMs } from "../commit/clock.ts";
import type { VerifyJob } from "../crypto/verifier.ts";
import type { SyncMessage } from "./protocol.ts";
import type { WriteCheck } from "../core/ingest.ts";

/** Collected ids that these commits name as parents (the receiver must know them). */
export function prunedParents(repo: OpenRepository, ids: readonly CommitId[]) {
  const { pruned, collected } = repo.gc;
  if ((!pruned.size && !collected.size) || !ids.length) return [];
  const out = new Set<CommitId>();
  for (const id of ids) {
    for (const p of repo.commitOf(id)?.parents ?? []) {
      if (pruned.has(p) || collected.has(p)) out.add(p);
    }
  }
  return [...out].map(commitIdBytes);
}

/**
 * The message's pruned ids that its own commits name as parents, counting only commits
 * that would be accepted: in this repository, by an author known at the commit's time,
 * allowed by the write rule, with a signature that verifies. A peer can only vouch for
 * the collected ancestry of what it may write, never grow this replica's set at will:
 * nothing of a message is stored before what it belongs to is verified and authorized.
 */
export async function vouchedPruned(
  repo: OpenRepository,
  message: SyncMessage,
  mayWrite: WriteCheck | undefined,
): Promise<CommitId[]> {
  if (!message.pruned?.length || !message.commits?.length) return [];
  const offered = new Set(message.pruned.map(commitIdFromBytes));
  const ctx = repo.ctx;
  const prefix = `${repo.path}/`;
  const candidates: { parents: CommitId[]; job: VerifyJob }[] = [];
  for (const rec of message.commits) {
    if (rec.length <= COMMIT_RECORD_HEADER) continue;
    let c: Commit, idBytes: Uint8Array;
    try {
      ({ commit: c, idBytes } = decodeCommitWithId(
        rec.subarray(COMMIT_RECORD_HEADER),
      ));
    } catch {
      continue; // ingest reports undecodable records
    }
    const parents = c.parents.filter((p) => offered.has(p));
    if (!parents.length || !c.key.startsWith(prefix)) continue;
    const author = (ctx.trust.author
      ? ctx.trust.author(c.session, timestampMs(c.ts))
      : ctx.trust.lookup(c.session, ctx.now())) ??
      (c.session === ctx.ownSession.id ? ctx.ownSession : undefined);
    if (!author || (mayWrite && !mayWrite(c.key, author))) {
      continue;
    }
    candidates.push({
      parents,
      job: {
        publicKey: author.publicKey,
        signature: rec.subarray(1, COMMIT_RECORD_HEADER),
        message: idBytes,
      },
    });
  }
  if (!candidates.length) return [];
  const oks = await ctx.verifier.verifyBatch(candidates.map((c) => c.job));
  const out = new Set<CommitId>();
  candidates.forEach((c, i) => {
    if (oks[i] === true) { for (const p of c.parents) out.add(p); }
  });
  return [...out];
}
