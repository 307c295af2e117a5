/**
 * Ingress of commits from peers. Every record is checked before anything is stored:
 * well-formed canonical bytes (the id is the hash of exactly these bytes), an item of
 * this repository, a timestamp not too far in the future, a known and unexpired
 * session, and a valid Ed25519 signature over the id. Failures are reported per commit
 * and nothing of a failed commit is stored or forwarded.
 *
 * @module
 */

import {
  type CommitId,
  commitIdBytes,
  decodeCommit,
} from "../commit/commit.ts";
import { verifySignature } from "../crypto/keys.ts";
import { type ItemPath, parsePath } from "../path.ts";
import type { SessionRecord } from "./session.ts";
import type { CommitNode } from "./item_graph.ts";
import { COMMIT_RECORD_HEADER, RecordKind } from "./records.ts";
import type { Repository } from "./repository.ts";

/** Why a received commit was refused. */
export interface RejectedRecord {
  /** Index of the record in the ingested batch. */
  readonly index: number;
  readonly id?: CommitId;
  readonly reason: string;
}

/** Outcome of ingesting a batch of records. */
export interface IngestResult {
  /** Newly stored commits. */
  readonly accepted: CommitId[];
  /** Commits already present. */
  readonly duplicates: number;
  /** Commits older than the repository's garbage-collection horizon: ignored. */
  readonly obsolete: number;
  readonly rejected: RejectedRecord[];
}

/** Decides whether a commit's author may write its item (authorization rules). */
export type WriteCheck = (key: ItemPath, session: SessionRecord) => boolean;

/** @internal */
export async function ingestRecords(
  repo: Repository,
  records: readonly Uint8Array[],
  mayWrite?: WriteCheck,
): Promise<IngestResult> {
  const ctx = repo.ctx;
  const rejected: RejectedRecord[] = [];
  const candidates: { node: CommitNode; key: string; index: number }[] = [];
  const index = repo.commitIndex();
  let duplicates = 0;
  let obsolete = 0;
  const now = ctx.now();
  const seen = new Set<CommitId>();
  for (let i = 0; i < records.length; i++) {
    const rec = records[i];
    if (
      !(rec instanceof Uint8Array) || rec.length <= COMMIT_RECORD_HEADER ||
      rec[0] !== RecordKind.Commit
    ) {
      rejected.push({ index: i, reason: "not a commit record" });
      continue;
    }
    let node: CommitNode;
    try {
      const commit = decodeCommit(rec.slice(COMMIT_RECORD_HEADER));
      node = { commit, sig: rec.slice(1, COMMIT_RECORD_HEADER) };
    } catch (e) {
      rejected.push({ index: i, reason: (e as Error).message });
      continue;
    }
    const c = node.commit;
    if (index.has(c.id) || seen.has(c.id)) {
      duplicates++;
      continue;
    }
    const p = parsePath(c.key);
    if (p.repoPath !== repo.path) {
      rejected.push({
        index: i,
        id: c.id,
        reason: `item ${c.key} is not in ${repo.path}`,
      });
      continue;
    }
    if (c.ts < repo.horizon) {
      // History this repository garbage-collected: ignored, like a duplicate.
      obsolete++;
      continue;
    }
    try {
      ctx.clock.check(c.ts);
    } catch (e) {
      rejected.push({ index: i, id: c.id, reason: (e as Error).message });
      continue;
    }
    seen.add(c.id);
    candidates.push({ node, key: p.item!, index: i });
  }
  const verdicts = await Promise.all(candidates.map(async ({ node }) => {
    const c = node.commit;
    const session = ctx.trust.lookup(c.session, now) ??
      (c.session === ctx.ownSession.id ? ctx.ownSession : undefined);
    if (!session) return `session ${c.session} is unknown, expired or revoked`;
    if (mayWrite && !mayWrite(c.key, session)) {
      return `session ${c.session} may not write ${c.key}`;
    }
    const ok = await verifySignature(
      session.publicKey,
      node.sig!,
      commitIdBytes(c.id),
    );
    return ok ? null : `signature of commit ${c.id} does not verify`;
  }));
  repo.checkOpen();
  const valid: { node: CommitNode; key: string }[] = [];
  candidates.forEach((cand, j) => {
    const reason = verdicts[j];
    if (reason) {
      rejected.push({ index: cand.index, id: cand.node.commit.id, reason });
    } else valid.push(cand);
  });
  for (const { node } of valid) ctx.clock.observe(node.commit.ts);
  const added = repo.addRemote(valid);
  for (const r of added.rejected) {
    const cand = candidates.find((c) => c.node.commit.id === r.id);
    rejected.push({ index: cand?.index ?? -1, id: r.id, reason: r.reason });
  }
  rejected.sort((x, y) => x.index - y.index);
  return { accepted: added.accepted, duplicates, obsolete, rejected };
}
