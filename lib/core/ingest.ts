/**
 * Ingress of commits from peers. Every record is checked before anything is stored:
 * well-formed bytes in the canonical encoding (sorted map keys, smallest integer and
 * string forms: one logical commit has exactly one id, the hash of exactly these bytes),
 * an item of this repository, a timestamp not too far in the future, a session that may
 * author it (see below), the write rule, and a valid Ed25519 signature over the id.
 * Failures are reported per commit and nothing of a failed commit is stored or
 * forwarded. Copies of one commit in a batch are told apart after verification, so a
 * copy with a forged signature never displaces the genuine one.
 *
 * A verified commit whose parent (or delta base) has not arrived waits in memory, aside
 * from everything else (see received_commits.ts): it is not stored, not reported
 * accepted, not offered to peers and not forwarded until it is complete; the peer that
 * sent it still holds it and offers it again. Only complete commits are `accepted`.
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

import { canonicalDeviation } from "../encoding/msgpack_canonical.ts";
import {
  type Commit,
  type CommitId,
  decodeCommitWithId,
} from "../commit/commit.ts";
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
  /**
   * Newly stored commits: complete, verified and authorized (with commits received
   * earlier that were waiting for these).
   */
  readonly accepted: CommitId[];
  /**
   * Verified commits of the batch that wait for a parent or delta base not received yet:
   * kept in memory only, not stored, not offered to peers (see received_commits.ts).
   */
  readonly waiting: CommitId[];
  /** Commits already present. */
  readonly duplicates: number;
  /**
   * Commits ignored because they need history this repository garbage-collected: older
   * than its horizon, or built on a parent it collected (see {@link beginIngest}).
   */
  readonly obsolete: number;
  /** The ids of those commits (the sender re-applies them, see refused_edits.ts). */
  readonly obsoleteIds: CommitId[];
  readonly rejected: RejectedRecord[];
}

/** Decides whether a commit's author may write its item (authorization rules). */
export type WriteCheck = (key: ItemPath, session: SessionRecord) => boolean;

/** What ingesting needs of a repository (an `OpenRepository`). */
export interface IngestTarget {
  readonly ctx: RepoContext;
  readonly path: RepoPath;
  readonly horizon: number;
  /** What garbage collection left: the ids of collected commits kept ones name. */
  readonly gc: { readonly pruned: ReadonlySet<CommitId> };
  /** Commits already held, by id. */
  commitIndex(): ReadonlyMap<CommitId, unknown>;
  /** The signature of a received commit waiting for a dependency (undefined: none). */
  waitingSignature(id: CommitId): Uint8Array | null | undefined;
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
  /**
   * Collected commits the sender vouches for (its own garbage collection dropped them;
   * its commits still name them as parents): commits naming them are not obsolete.
   */
  readonly vouchedPruned?: ReadonlySet<CommitId>;
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
  const obsoleteIds: CommitId[] = [];
  const vouched = options.vouchedPruned ?? NOTHING;
  const now = ctx.now();
  const waiting: CommitId[] = [];
  /** Signatures of the batch's candidates by id: identical copies are checked once. */
  const copies = new Map<CommitId, Uint8Array[]>();
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
      if (index.has(c.id)) {
        duplicates++;
        continue;
      }
      const sig = node.sig!;
      const held = repo.waitingSignature(c.id);
      if (held && sameBytes(held, sig)) {
        waiting.push(c.id); // verified before, still waiting
        continue;
      }
      const earlier = copies.get(c.id);
      if (earlier?.some((s) => sameBytes(s, sig))) {
        duplicates++; // an identical copy in this batch
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
      const notCanonical = canonicalProblem(c);
      if (notCanonical) {
        rejected.push({ index: i, id: c.id, reason: notCanonical });
        continue;
      }
      if (needsCollectedHistory(c, index, repo, vouched, stored)) {
        // Merging it would need history this repository garbage-collected: ignored, and
        // reported to the sender, who still holds that history and re-applies it.
        obsolete++;
        obsoleteIds.push(c.id);
        continue;
      }
      try {
        if (!stored) ctx.clock.check(c.ts);
      } catch (e) {
        rejected.push({ index: i, id: c.id, reason: (e as Error).message });
        continue;
      }
      if (earlier) earlier.push(sig);
      else copies.set(c.id, [sig]);
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
      const verified = new Set<CommitId>();
      candidates.forEach((cand, j) => {
        const id = cand.node.commit.id;
        const reason = reasons[j];
        if (reason) {
          rejected.push({ index: cand.index, id, reason });
        } else if (verified.has(id)) {
          duplicates++; // another copy whose signature verifies too
        } else {
          verified.add(id);
          valid.push(cand);
        }
      });
      for (const { node } of valid) {
        ctx.clock.observe(node.commit.ts);
        noteReceivedSchema(ctx.registry, node.commit);
      }
      // Every signature verified: add in slices too (a commit waiting for a parent in
      // a later slice is completed, and reported accepted, when that slice adds it).
      const added: {
        accepted: CommitId[];
        waiting: CommitId[];
        rejected: AddedCommits["rejected"];
      } = { accepted: [], waiting: [], rejected: [] };
      for (let k = 0; k < valid.length; k += ADD_CHUNK) {
        if (k > 0 && slices) {
          await slices.pause();
          repo.checkOpen();
        }
        const part = repo.addRemote(valid.slice(k, k + ADD_CHUNK), !stored);
        for (const id of part.accepted) added.accepted.push(id);
        for (const id of part.waiting) added.waiting.push(id);
        for (const r of part.rejected) added.rejected.push(r);
      }
      if (valid.length > ADD_CHUNK && added.waiting.length) {
        const done = new Set(added.accepted);
        added.waiting = added.waiting.filter((id) => !done.has(id));
      }
      for (const r of added.rejected) {
        const cand = valid.find((c) => c.node.commit.id === r.id);
        rejected.push({ index: cand?.index ?? -1, id: r.id, reason: r.reason });
      }
      rejected.sort((x, y) => x.index - y.index);
      return {
        accepted: added.accepted,
        waiting: [...waiting, ...added.waiting],
        duplicates,
        obsolete,
        obsoleteIds,
        rejected,
      };
    },
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Why a decoded commit's bytes are not its canonical encoding (null when they are): the
 * writer puts map keys sorted and integers and headers in their smallest form, and a
 * delta's removed fields sorted (the decoder checked the parents' order already).
 */
function canonicalProblem(c: Commit): string | null {
  const d = canonicalDeviation(c.bytes);
  let why = d ? `at byte ${d.offset} of ${c.bytes.length}: ${d.reason}` : null;
  if (!why && c.body.kind === "delta") {
    const removed = c.body.removed;
    for (let i = 1; i < removed.length && !why; i++) {
      if (removed[i - 1] > removed[i]) {
        why = "its removed fields are not sorted";
      }
    }
  }
  return why === null
    ? null
    : `commit ${c.id} of ${c.key} is not in the canonical encoding (${why}): it would have several ids`;
}

const NOTHING: ReadonlySet<CommitId> = new Set();

/**
 * True when merging `c` would need history this repository garbage-collected: it is
 * older than the horizon (a collected commit coming back stays collected: re-admitting
 * it would make it a head beside its own kept children), or it names as parent a commit
 * collected here that the sender does not vouch it collected too (the commit was built on
 * state older than what this repository kept: its merge base is gone). Commits another tab stored
 * passed this check there.
 */
function needsCollectedHistory(
  c: Commit,
  index: ReadonlyMap<CommitId, unknown>,
  repo: IngestTarget,
  vouched: ReadonlySet<CommitId>,
  stored: boolean,
): boolean {
  const pruned = repo.gc.pruned;
  if (c.ts < repo.horizon) return true;
  if (stored || pruned.size === 0) return false;
  return c.parents.some((p) =>
    pruned.has(p) && !vouched.has(p) && !index.has(p)
  );
}
