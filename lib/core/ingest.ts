/**
 * Ingress of commits from peers. Every record is checked before anything is stored:
 * well-formed canonical bytes (the id is the hash of exactly these bytes), an item of
 * this repository, a timestamp not too far in the future, a session that may author it
 * (see below), the write rule, and a valid Ed25519 signature over the id. Failures are
 * reported per commit and nothing of a failed commit is stored or forwarded.
 *
 * Session validity is judged at the commit's own time, not at arrival: a commit is
 * accepted when its session is known (its record verified), not revoked, and the
 * commit's timestamp lies before the session's expiry ({@link SessionTrust.author}). So
 * a commit made while its session was valid is accepted by every replica whenever it
 * arrives (relayed a week later, or sent late by an offline client), and replicas do not
 * diverge on it; a commit stamped after the expiry is refused everywhere. Requests are
 * different: one signed by an expired session is refused (`session_expired`, see
 * request_signing.ts), so a client must renew its session before it talks again, then
 * delivers its offline edits. The cost of the rule: an expired session's key can still
 * sign commits back-dated before the expiry, so a leaked key must be revoked, not merely
 * left to expire (a revoked session's commits are refused whatever their time).
 *
 * @module
 */

import { type CommitId, decodeCommitWithId } from "../commit/commit.ts";
import type { VerifyJob } from "../crypto/verifier.ts";
import type { ItemPath } from "../path.ts";
import type { SessionRecord } from "./session.ts";
import { timestampMs } from "../commit/clock.ts";
import type { CommitNode } from "./item_graph.ts";
import { COMMIT_RECORD_HEADER, RecordKind } from "./records.ts";
import type { RepoPath } from "../path.ts";
import type { RepoContext } from "./context.ts";
import type { AddedCommits, ReceivedCommit } from "./received_commits.ts";
import {
  noteReceivedSchema,
  receivedDataProblem,
  receivedRecordProblem,
} from "./received_checks.ts";

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

/** What ingesting needs of a repository (an `OpenRepository`). */
export interface IngestTarget {
  readonly ctx: RepoContext;
  readonly path: RepoPath;
  readonly horizon: number;
  /** Commits already held, by id. */
  commitIndex(): ReadonlyMap<CommitId, unknown>;
  /** Throws when the repository or its database is closed. */
  checkOpen(): void;
  /** Adds verified commits (see received_commits.ts). */
  addRemote(
    commits: readonly ReceivedCommit[],
    persist?: boolean,
  ): AddedCommits;
}

/** Records checked between two clock reads when ingesting in slices. */
const RECORDS_PER_CHECK = 128;
/** Verified commits added per slice. */
const ADD_CHUNK = 512;

/** Options of `Repository.ingest`. */
export interface IngestOptions {
  /**
   * The records are already in this database's storage (another browser tab of the same
   * database stored them): apply them in memory only, without appending them again and
   * without re-checking sessions, signatures and the clock, as when a log is opened.
   */
  readonly alreadyStored?: boolean;
}

/** Checks, verifies and adds a batch of records (see {@link beginIngest}). */
export async function ingestRecords(
  repo: IngestTarget,
  records: readonly Uint8Array[],
  mayWrite?: WriteCheck,
  options: IngestOptions = {},
): Promise<IngestResult> {
  return await beginIngest(repo, records, mayWrite, options).finish();
}

/**
 * A batch of records checked up to their signatures, whose verification has started.
 * Nothing of it is stored or visible until {@link PendingIngest.finish} has verified
 * every signature.
 */
export interface PendingIngest {
  /** Waits for the signatures, then stores the commits whose signature verifies. */
  finish(): Promise<IngestResult>;
}

/**
 * The first half of {@link ingestRecords}: decodes and checks the records
 * (id = hash of the bytes, item, clock, author, write rule) and starts verifying their
 * signatures, without waiting. A caller may do other work (e.g. ask its peer for the
 * next batch) while the signatures are verified, then calls `finish`.
 */
export function beginIngest(
  repo: IngestTarget,
  records: readonly Uint8Array[],
  mayWrite?: WriteCheck,
  options: IngestOptions = {},
): PendingIngest {
  const stored = options.alreadyStored === true;
  const ctx = repo.ctx;
  const rejected: RejectedRecord[] = [];
  const candidates: {
    node: CommitNode;
    key: string;
    index: number;
    /** The binary id (what the signature signs). */
    idBytes: Uint8Array;
    /** The stored form of the record (`[kind][sig][commit]`): our private copy. */
    record: Uint8Array;
  }[] = [];
  const index = repo.commitIndex();
  let duplicates = 0;
  let obsolete = 0;
  const now = ctx.now();
  const seen = new Set<CommitId>();
  const prefix = `${repo.path}/`;
  /** The author session of a commit, or why it may not have written it. */
  const authorOf = (node: CommitNode): SessionRecord | string => {
    const c = node.commit;
    const session =
      (ctx.trust.author
        ? ctx.trust.author(c.session, timestampMs(c.ts))
        : ctx.trust.lookup(c.session, now)) ??
        (c.session === ctx.ownSession.id ? ctx.ownSession : undefined);
    if (!session) {
      return `session ${c.session} is unknown, expired or revoked at the time of commit ${c.id}`;
    }
    if (mayWrite && !mayWrite(c.key, session)) {
      return `session ${c.session} may not write ${c.key}`;
    }
    return session;
  };
  const slices = ctx.slices;
  // Decoding and hashing a large batch runs in slices (no long task in a browser); the
  // signatures start verifying once every record is checked.
  const prepare = async () => {
    let sliceStart = performance.now();
    for (let i = 0; i < records.length; i++) {
      if (
        slices && i % RECORDS_PER_CHECK === 0 && i > 0 &&
        performance.now() - sliceStart > slices.sliceMs
      ) {
        await slices.pause();
        repo.checkOpen();
        sliceStart = performance.now();
      }
      const rec = records[i];
      if (
        !(rec instanceof Uint8Array) || rec.length <= COMMIT_RECORD_HEADER ||
        rec[0] !== RecordKind.Commit
      ) {
        rejected.push({ index: i, reason: "not a commit record" });
        continue;
      }
      let node: CommitNode;
      let idBytes: Uint8Array;
      // One private copy: the caller's buffer may change after the checks.
      const own = rec.slice();
      try {
        const decoded = decodeCommitWithId(own.subarray(COMMIT_RECORD_HEADER));
        idBytes = decoded.idBytes;
        node = {
          commit: decoded.commit,
          sig: own.subarray(1, COMMIT_RECORD_HEADER),
        };
      } catch (e) {
        rejected.push({ index: i, reason: (e as Error).message });
        continue;
      }
      const c = node.commit;
      if (index.has(c.id) || seen.has(c.id)) {
        duplicates++;
        continue;
      }
      // decodeCommit validated the key as `/type/repo/item`: the prefix decides.
      if (!c.key.startsWith(prefix)) {
        rejected.push({
          index: i,
          id: c.id,
          reason: `item ${c.key} is not in ${repo.path}`,
        });
        continue;
      }
      // Size and data (received_checks.ts).
      const problem = receivedRecordProblem(rec) ?? receivedDataProblem(c);
      if (problem) {
        rejected.push({ index: i, id: c.id, reason: problem });
        continue;
      }
      if (c.ts < repo.horizon) {
        // History this repository garbage-collected: ignored, like a duplicate.
        obsolete++;
        continue;
      }
      try {
        if (!stored) ctx.clock.check(c.ts);
      } catch (e) {
        rejected.push({ index: i, id: c.id, reason: (e as Error).message });
        continue;
      }
      seen.add(c.id);
      candidates.push({
        node,
        key: c.key.slice(prefix.length),
        index: i,
        idBytes,
        record: own,
      });
    }
    // Authors and rules first (synchronous), then every signature in one batch.
    const reasons: (string | null)[] = [];
    const jobs: VerifyJob[] = [];
    const jobOf: number[] = [];
    if (!stored) {
      candidates.forEach(({ node, idBytes }, j) => {
        const author = authorOf(node);
        if (typeof author === "string") {
          reasons[j] = author;
          return;
        }
        if (!ctx.knownSessions.has(author.id)) {
          // So the log records the session even once it has expired (see addRemote).
          ctx.knownSessions.set(author.id, author);
        }
        reasons[j] = null;
        jobOf.push(j);
        jobs.push({
          publicKey: author.publicKey,
          signature: node.sig!,
          message: idBytes,
        });
      });
    } else candidates.forEach((_, j) => reasons[j] = null);
    const verifying =
      (jobs.length
        ? ctx.verifier.verifyBatch(jobs)
        : Promise.resolve([] as boolean[])).then((oks) => {
          if (oks.length !== jobs.length) {
            throw new Error(
              "signature verifier answered the wrong number of jobs",
            );
          }
          oks.forEach((ok, k) => {
            if (!ok) {
              const j = jobOf[k];
              reasons[j] = `signature of commit ${
                candidates[j].node.commit.id
              } does not verify`;
            }
          });
          return reasons;
        });
    return verifying;
  };
  const verifying = prepare();
  // finish() reports a failure; until it is called, it is not unhandled.
  verifying.catch(() => {});
  return {
    finish: async () => {
      const reasons = await verifying;
      repo.checkOpen();
      const valid: typeof candidates = [];
      candidates.forEach((cand, j) => {
        const reason = reasons[j];
        if (reason) {
          rejected.push({ index: cand.index, id: cand.node.commit.id, reason });
        } else valid.push(cand);
      });
      for (const { node } of valid) {
        ctx.clock.observe(node.commit.ts);
        noteReceivedSchema(ctx.registry, node.commit);
      }
      // Every signature verified: add in slices too (commits waiting for a parent in
      // a later slice are linked when it arrives).
      const added: {
        accepted: CommitId[];
        rejected: AddedCommits["rejected"];
      } = { accepted: [], rejected: [] };
      for (let k = 0; k < valid.length; k += ADD_CHUNK) {
        if (k > 0 && slices) {
          await slices.pause();
          repo.checkOpen();
        }
        const part = repo.addRemote(valid.slice(k, k + ADD_CHUNK), !stored);
        added.accepted.push(...part.accepted);
        added.rejected.push(...part.rejected);
      }
      for (const r of added.rejected) {
        const cand = candidates.find((c) => c.node.commit.id === r.id);
        rejected.push({ index: cand?.index ?? -1, id: r.id, reason: r.reason });
      }
      rejected.sort((x, y) => x.index - y.index);
      return { accepted: added.accepted, duplicates, obsolete, rejected };
    },
  };
}
