/**
 * Time-based garbage collection of an item's history. Commits older than the retention
 * cutoff are dropped per item, with the snapshots and deltas that depend on them, while
 * everything the current value needs stays: every head, every commit newer than the
 * cutoff, the state at the cutoff (the newest older commits: merge bases for peers that
 * synced within the window), the merge base of several heads and what lies between it
 * and the heads, and the full snapshot of every kept delta. Parents of kept commits that were dropped are
 * listed in a horizon record, so the graph treats them as present; commits older than
 * the horizon are refused from then on.
 *
 * @module
 */

import { type CommitId, compareCommitOrder } from "../commit/commit.ts";
import { encodeFrame } from "../storage/frames.ts";
import { ancestorsOf, type CommitNode, type ItemGraph } from "./item_graph.ts";
import { encodeHorizonRecord, RecordKind } from "./records.ts";
import { commitPayload } from "./log_writer.ts";
import type { OpenRepository } from "./open_repository.ts";
import { encodeSessionRecord } from "./session.ts";

/** The commits of one item that garbage collection must keep. */
export function commitsToKeep(g: ItemGraph, cutoffTs: number): Set<CommitId> {
  const keep = new Set<CommitId>();
  // The state at the cut-off: the newest commits older than it (no older child). A peer
  // that synced within the window holds them (or newer ones) as heads, so a commit it
  // makes later still finds its merge base here.
  const oldWithOldChild = new Set<CommitId>();
  for (const [id, n] of g.nodes) {
    if (n.commit.ts >= cutoffTs) keep.add(id);
    else for (const a of ancestorsOf(n.commit)) oldWithOldChild.add(a);
  }
  for (const [id, n] of g.nodes) {
    if (n.commit.ts < cutoffTs && !oldWithOldChild.has(id)) keep.add(id);
  }
  for (const h of g.heads) keep.add(h.commit.id);
  // Incomplete commits (waiting for parents) are kept: they are not history yet.
  const complete = new Set<CommitId>();
  const stack = g.heads.map((h) => h.commit.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (complete.has(id)) continue;
    complete.add(id);
    const n = g.nodes.get(id);
    if (n) stack.push(...ancestorsOf(n.commit));
  }
  for (const id of g.nodes.keys()) if (!complete.has(id)) keep.add(id);
  // Several heads: keep their merge base and everything newer, so the merge is unchanged.
  if (g.heads.length > 1) {
    const base = g.mergeBase(g.heads);
    if (base) {
      for (const id of complete) {
        const n = g.nodes.get(id);
        if (n && compareCommitOrder(n.commit, base.commit) >= 0) keep.add(id);
      }
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
 * commits need, a horizon record, and the kept commits in timestamp order.
 */
export function compactedLog(
  repo: OpenRepository,
  cutoffTs: number,
): {
  frames: Uint8Array[];
  kept: number;
  dropped: number;
  droppedIds: CommitId[];
} {
  const kept: CommitNode[] = [];
  const pruned = new Set<CommitId>();
  const droppedIds: CommitId[] = [];
  let dropped = 0;
  for (const g of repo.graphs.allGraphs(repo.items.entries())) {
    const keep = commitsToKeep(g, cutoffTs);
    for (const [id, n] of g.nodes) {
      if (!keep.has(id)) {
        if (!repo.gc.collected.has(id)) {
          dropped++;
          droppedIds.push(id);
        }
        continue;
      }
      if (!n.sig) continue; // unsigned local commits cannot exist after a flush
      kept.push(n);
      for (const p of n.commit.parents) if (!keep.has(p)) pruned.add(p);
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
  const horizon = Math.max(repo.horizon, dropped > 0 ? cutoffTs : 0);
  frames.push(
    frame(
      RecordKind.Horizon,
      encodeHorizonRecord({ ts: horizon, pruned: [...pruned] }),
    ),
  );
  for (const n of kept) frames.push(encodeFrame(commitPayload(n)));
  return { frames, kept: kept.length, dropped, droppedIds };
}

function frame(kind: number, body: Uint8Array): Uint8Array {
  const payload = new Uint8Array(body.length + 1);
  payload[0] = kind;
  payload.set(body, 1);
  return encodeFrame(payload);
}
