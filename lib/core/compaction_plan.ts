/**
 * Time-based garbage collection of an item's history. Commits older than the retention
 * cutoff are dropped per item, with the snapshots and deltas that depend on them, while
 * everything the current value needs stays: every head, every commit newer than the
 * cutoff, the state at the cutoff (the newest older commits: merge bases for peers that
 * synced within the window), every base a later merge can take and what lies between it
 * and the heads, and the full snapshot of every kept delta. Parents of kept commits that were dropped are
 * listed in a horizon record, so the graph treats them as present; commits older than
 * the horizon are refused from then on.
 *
 * @module
 */

import { type CommitId, compareCommitOrder } from "../commit/commit.ts";
import { encodeFrame } from "../storage/frames.ts";
import { ancestorsOf, type CommitNode, type ItemGraph } from "./item_graph.ts";
import { lowestCommonAncestors } from "./merge_base.ts";
import { encodeHorizonRecord, RecordKind } from "./records.ts";
import { commitPayload } from "./log_writer.ts";
import type { OpenRepository } from "./open_repository.ts";
import { encodeSessionRecord } from "./session.ts";

/**
 * Every commit some merge among `seeds` can take as a base: the lowest common ancestors
 * of every two of them, and of every two of those, and so on (a merge of several heads
 * folds them pairwise and merges several lowest common ancestors into a virtual base,
 * see head_merge.ts; every base it meets is the lowest common ancestor of two commits
 * met before).
 */
export function mergeBaseClosure(
  g: ItemGraph,
  seeds: readonly CommitNode[],
): CommitNode[] {
  const lookup = (id: CommitId) => g.nodes.get(id);
  const all: CommitNode[] = [];
  const seen = new Set<CommitId>();
  const add = (n: CommitNode) => {
    if (seen.has(n.commit.id)) return;
    seen.add(n.commit.id);
    all.push(n);
  };
  for (const n of seeds) add(n);
  for (let j = 1; j < all.length; j++) {
    for (let i = 0; i < j; i++) {
      for (const b of lowestCommonAncestors(lookup, [all[i]], [all[j]])) add(b);
    }
  }
  return all;
}

/** The commits of one item that garbage collection must keep. */
export function commitsToKeep(
  g: ItemGraph,
  cutoffTs: number,
  alsoKeep?: ReadonlySet<CommitId>,
): Set<CommitId> {
  const keep = new Set<CommitId>();
  if (alsoKeep) {
    for (const id of g.nodes.keys()) if (alsoKeep.has(id)) keep.add(id);
  }
  // The state at the cut-off: the newest commits older than it (no older child). A peer
  // that synced within the window holds them (or newer ones) as heads, so a commit it
  // makes later still finds its merge base here.
  const oldWithOldChild = new Set<CommitId>();
  const oldWithNewChild = new Set<CommitId>();
  for (const [id, n] of g.nodes) {
    const into = n.commit.ts >= cutoffTs ? oldWithNewChild : oldWithOldChild;
    if (into === oldWithNewChild) keep.add(id);
    for (const a of ancestorsOf(n.commit)) into.add(a);
  }
  const boundary: CommitNode[] = [];
  for (const [id, n] of g.nodes) {
    if (n.commit.ts >= cutoffTs) continue;
    if (!oldWithOldChild.has(id)) keep.add(id);
    if (!oldWithOldChild.has(id) || oldWithNewChild.has(id)) boundary.push(n);
  }
  for (const h of g.heads) keep.add(h.commit.id);
  // Where kept history meets collected history: the state at the cut-off and the older
  // commits newer ones build on. Any version a later merge meets descends from some of
  // them (or is newer), so every base such a merge can take that is older than the
  // cut-off is one of them or in their merge-base closure. Keep that closure and
  // everything newer: merges give the same values after the compaction, and the walks
  // that find their bases meet the same commits.
  if (boundary.length > 1) {
    let oldest: CommitNode | undefined;
    for (const n of mergeBaseClosure(g, boundary)) {
      if (!oldest || compareCommitOrder(n.commit, oldest.commit) < 0) {
        oldest = n;
      }
    }
    for (const [id, n] of g.nodes) {
      if (compareCommitOrder(n.commit, oldest!.commit) >= 0) keep.add(id);
    }
  }
  // A kept delta needs its full snapshot (an ancestor by construction: the graph treats
  // the base link as an ancestry edge, so the snapshot never becomes a head).
  for (const id of [...keep]) {
    const body = g.nodes.get(id)?.commit.body;
    if (body?.kind === "delta") keep.add(body.base);
  }
  return keep;
}

/**
 * The framed records of a compacted log for `repo`: the session records its kept
 * commits need, a horizon record, and the kept commits in timestamp order. `alsoKeep`
 * names commits to keep beyond what the cut-off needs (those a sync peer holds, so that
 * both replicas hold the same history). Kept commits that were collected in place stay
 * collected (a horizon record lists them).
 */
export function compactedLog(
  repo: OpenRepository,
  cutoffTs: number,
  alsoKeep?: ReadonlySet<CommitId>,
): {
  frames: Uint8Array[];
  kept: number;
  /** Commits dropped that were offered to peers until now. */
  dropped: number;
  droppedIds: CommitId[];
  /** Commits dropped in all (those collected in place before included). */
  removed: number;
} {
  const kept: CommitNode[] = [];
  const pruned = new Set<CommitId>();
  const stillCollected: CommitId[] = [];
  const droppedIds: CommitId[] = [];
  let dropped = 0, removed = 0;
  const { collected } = repo.gc;
  for (const g of repo.graphs.allGraphs(repo.items.entries())) {
    const keep = commitsToKeep(g, cutoffTs, alsoKeep);
    for (const [id, n] of g.nodes) {
      if (!keep.has(id)) {
        removed++;
        if (!collected.has(id)) {
          dropped++;
          droppedIds.push(id);
        }
        continue;
      }
      if (!n.sig) continue; // unsigned local commits cannot exist after a flush
      kept.push(n);
      if (collected.has(id)) stillCollected.push(id);
      // Only parents that were held (or collected before) are collected now: one that
      // never arrived is not history, and its children keep waiting for it.
      for (const p of n.commit.parents) {
        if (!keep.has(p) && (g.nodes.has(p) || repo.gc.pruned.has(p))) {
          pruned.add(p);
        }
      }
    }
  }
  kept.sort((a, b) => compareCommitOrder(a.commit, b.commit));
  const frames: Uint8Array[] = [];
  const sessions = new Set(kept.map((n) => n.commit.session));
  for (const id of sessions) {
    const s = repo.ctx.knownSessions.get(id) ??
      repo.ctx.trust.lookup(id, repo.ctx.now());
    if (s) frames.push(frame(RecordKind.Session, encodeSessionRecord(s)));
  }
  const horizon = Math.max(repo.horizon, removed > 0 ? cutoffTs : 0);
  frames.push(
    frame(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: horizon, pruned: [...pruned] }),
    ),
  );
  if (stillCollected.length) {
    frames.push(frame(
      RecordKind.Horizon,
      encodeHorizonRecord({
        ts: horizon,
        pruned: stillCollected,
        inPlace: true,
      }),
    ));
  }
  for (const n of kept) frames.push(encodeFrame(commitPayload(n)));
  return { frames, kept: kept.length, dropped, droppedIds, removed };
}

function frame(kind: number, body: Uint8Array): Uint8Array {
  const payload = new Uint8Array(body.length + 1);
  payload[0] = kind;
  payload.set(body, 1);
  return encodeFrame(payload);
}
