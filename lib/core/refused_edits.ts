/**
 * Local edits a sync peer cannot take because it garbage-collected the history they
 * build on (a replica that was offline longer than the peer's retention): they are
 * re-applied on the peer's current state as one new commit per item, never lost and
 * never left as a permanent fork.
 *
 * After a sync pass, the replica knows which of its commits the peer lacks, which of
 * them are older than the peer's horizon (it held those back) and which the peer
 * reported obsolete (built on a parent it collected). Per item:
 *
 * - A held-back commit that is an ancestor of a commit the peer holds is history the peer
 *   collected: it is collected here too (no longer offered).
 * - Any other held-back or reported commit is refused, with everything built on it. The
 *   replica still holds the history those edits build on, so its own value of the item
 *   (the merge of all its heads, refused ones included) is exactly what the merge would
 *   have been without garbage collection. That value becomes a new commit whose parents
 *   are the item's heads and the peer's (the newest commits the peer holds): the peer
 *   takes it (the refused parents are collected here, so the sync vouches for them), and
 *   it supersedes both branches everywhere. The refused commits are collected here: kept
 *   locally, no longer offered.
 *
 * Each re-application is reported ({@link ReappliedEdits}): which commits it carries,
 * which fields of the peer's value it overwrites, and which values of the refused edits
 * did not survive (a concurrent edit on the peer was newer).
 *
 * @module
 */

import {
  buildCommit,
  type CommitId,
  commitIdBytes,
  type FullBody,
} from "../commit/commit.ts";
import { type ItemState, rawValuesEqual } from "../merge/merge.ts";
import type { ItemPath } from "../path.ts";
import { fieldValuesEqual } from "../schema/field_types.ts";
import { schemaIdOf } from "../schema/schema.ts";
import type { RepoContext } from "./context.ts";
import type { ItemEntry } from "./item_entry.ts";
import { encodeItemState } from "./item_state.ts";
import { ancestorsOf, type CommitNode, type ItemGraph } from "./item_graph.ts";
import type { HistoryLoader } from "./lazy_history.ts";
import type { AddedCommits, ReceivedCommit } from "./received_commits.ts";

/** What re-applying refused edits needs of a repository (an `OpenRepository`). */
export interface RefusedEditsTarget {
  readonly ctx: RepoContext;
  readonly horizon: number;
  readonly gc: { readonly collected: ReadonlySet<CommitId> };
  readonly graphs: HistoryLoader;
  checkOpen(): void;
  flush(): Promise<void>;
  commitIndex(): ReadonlyMap<CommitId, ItemEntry>;
  addRemote(commits: readonly ReceivedCommit[]): AddedCommits;
  collectInPlace(cutoff: number, dropped: readonly CommitId[]): void;
}

/** What a sync pass found out about the peer's holdings. */
export interface PeerHoldings {
  /** Commits of this replica the peer lacks (the reconciliation's difference). */
  readonly lacking: ReadonlySet<CommitId>;
  /** Of those, the ones not sent because they are older than the peer's horizon. */
  readonly heldBack: ReadonlySet<CommitId>;
  /** Commits the peer reported ignoring because they need history it collected. */
  readonly refused: ReadonlySet<CommitId>;
}

/** One item's refused edits, re-applied as a new commit. */
export interface ReappliedEdits {
  /** `/type/repo/item` */
  readonly path: ItemPath;
  /** The local commits the peer could not take (and those built on them). */
  readonly refused: readonly CommitId[];
  /** The new commit that carries them. */
  readonly commit: CommitId;
  /** Fields whose value on the peer the re-applied edits replace. */
  readonly overwritten: readonly string[];
  /** Fields the refused edits changed whose value lost to a newer edit on the peer. */
  readonly superseded: readonly string[];
}

/** What {@link reapplyRefusedEdits} did. */
export interface RefusedEditsResult {
  readonly reapplied: ReappliedEdits[];
  /** Refused commits (re-applied). */
  readonly refused: number;
  /** Held-back commits the peer had collected, collected here too. */
  readonly collected: number;
}

/** Times an item is re-planned when a local write changes its heads meanwhile. */
const MAX_ATTEMPTS = 3;

/** Commits of `g` that are `ids` or their ancestors. */
function ancestryOf(g: ItemGraph, ids: Iterable<CommitId>): Set<CommitId> {
  const seen = new Set<CommitId>();
  const stack = [...ids];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    const n = g.nodes.get(id);
    if (!n) continue;
    seen.add(id);
    stack.push(...ancestorsOf(n.commit));
  }
  return seen;
}

/**
 * The commits of `set` that are no ancestor of another one of `set`. A set that holds
 * every ancestor of its commits needs only the direct links.
 */
function newestOf(
  g: ItemGraph,
  set: ReadonlySet<CommitId>,
  holdsAncestors: boolean,
): CommitNode[] {
  const below = new Set<CommitId>();
  for (const id of set) {
    const parents = ancestorsOf(g.nodes.get(id)!.commit);
    if (holdsAncestors) { for (const a of parents) below.add(a); }
    else for (const x of ancestryOf(g, parents)) below.add(x);
  }
  return [...set].filter((id) => !below.has(id)).map((id) => g.nodes.get(id)!);
}

function rawNames(s: ItemState | undefined): string[] {
  return s?.extra ? Object.keys(s.extra) : [];
}

/** Names of the fields where `a` and `b` differ. */
function differingFields(
  a: ItemState,
  b: ItemState | undefined,
): string[] {
  const out: string[] = [];
  for (const [name, def] of Object.entries(a.schema.fields)) {
    if (!fieldValuesEqual(def.type, a.data[name], b?.data[name])) {
      out.push(name);
    }
  }
  // Fields kept raw (unknown here): compared as stored.
  for (const name of new Set([...rawNames(a), ...rawNames(b)])) {
    if (!Object.hasOwn(a.schema.fields, name) && !out.includes(name)) {
      if (!rawValuesEqual(a.extra?.[name], b?.extra?.[name])) out.push(name);
    }
  }
  return out;
}

/** The plan for one item: what is refused and the commit that re-applies it. */
interface Plan {
  readonly refused: Set<CommitId>;
  readonly heads: readonly CommitId[];
  readonly parents: readonly CommitId[];
  readonly value: ItemState;
  readonly overwritten: string[];
  readonly superseded: string[];
}

function planItem(
  g: ItemGraph,
  peer: PeerHoldings,
  candidates: readonly CommitId[],
  collectedAtPeer: CommitId[],
): Plan | null {
  const held = [...g.nodes.keys()].filter((id) =>
    !peer.lacking.has(id) && !peer.refused.has(id)
  );
  const underPeer = ancestryOf(g, held);
  const refusedHere: CommitId[] = [];
  for (const id of candidates) {
    if (!peer.refused.has(id) && underPeer.has(id)) collectedAtPeer.push(id);
    else refusedHere.push(id);
  }
  if (!refusedHere.length) return null;
  // Everything built on a refused commit is refused with it.
  const children = new Map<CommitId, CommitId[]>();
  for (const [id, n] of g.nodes) {
    for (const a of ancestorsOf(n.commit)) {
      const list = children.get(a);
      if (list) list.push(id);
      else children.set(a, [id]);
    }
  }
  const refused = new Set<CommitId>();
  const stack = [...refusedHere];
  while (stack.length) {
    const id = stack.pop()!;
    if (refused.has(id)) continue;
    refused.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  const kept = new Set([...g.nodes.keys()].filter((id) => !refused.has(id)));
  const theirHeads = newestOf(g, kept, true);
  const forkIds = new Set<CommitId>();
  for (const id of refused) {
    for (const a of ancestorsOf(g.nodes.get(id)!.commit)) {
      if (kept.has(a)) forkIds.add(a);
    }
  }
  const value = g.value()!;
  const theirs = g.valueOf(theirHeads);
  const fork = g.valueOf(newestOf(g, forkIds, false));
  const offline = g.valueOf(g.heads.filter((h) => refused.has(h.commit.id)));
  // Changed by the refused edits, and the peer's value is what stays.
  const superseded = offline && theirs
    ? differingFields(offline, fork).filter((f) => {
      const def = Object.hasOwn(value.schema.fields, f)
        ? value.schema.fields[f]
        : undefined;
      if (!def) return false; // kept raw: not compared here
      const type = def.type;
      return fieldValuesEqual(type, value.data[f], theirs.data[f]) &&
        !fieldValuesEqual(type, value.data[f], offline.data[f]);
    })
    : [];
  const heads = g.heads.map((h) => h.commit.id);
  const parents = [
    ...new Set([...heads, ...theirHeads.map((h) => h.commit.id)]),
  ].sort();
  return {
    refused,
    heads,
    parents,
    value,
    overwritten: theirs ? differingFields(value, theirs) : [],
    superseded,
  };
}

function fullBodyOf(state: ItemState): FullBody {
  // Raw fields this replica cannot read are carried through (item_state.ts).
  return { kind: "full", data: encodeItemState(state), deleted: state.deleted };
}

/** Writes the commit of a plan: a full snapshot of the item's value on `parents`. */
async function reapply(
  repo: RefusedEditsTarget,
  e: ItemEntry,
  g: ItemGraph,
  plan: Plan,
): Promise<CommitNode | null> {
  const { clock, signer } = repo.ctx;
  for (const h of g.heads) clock.advance(h.commit.ts);
  const full = fullBodyOf(plan.value);
  const commit = buildCommit({
    key: e.path,
    parents: plan.parents as CommitId[],
    session: signer.sessionId,
    ts: clock.now(),
    schema: schemaIdOf(plan.value.schema),
    body: full,
  });
  const sig = await signer.sign(commitIdBytes(commit.id));
  repo.checkOpen();
  // A local write meanwhile changed the heads: plan again.
  const now = repo.graphs.fullGraphOf(e).heads.map((h) => h.commit.id);
  if (now.join() !== plan.heads.join()) return null;
  const node: CommitNode = { commit, sig, full, state: plan.value };
  const added = repo.addRemote([{ node, key: e.key }]);
  if (!added.accepted.includes(commit.id)) {
    throw new Error(
      `Re-applying refused edits of ${e.path} failed: ${
        added.rejected[0]?.reason ?? "the commit did not join its graph"
      }`,
    );
  }
  repo.ctx.onCommitsStored(repo, [node]);
  return node;
}

/**
 * Re-applies the local edits a peer refused (see the module doc) and collects what the
 * peer collected. Returns what was re-applied.
 */
export async function reapplyRefusedEdits(
  repo: RefusedEditsTarget,
  peer: PeerHoldings,
): Promise<RefusedEditsResult> {
  repo.checkOpen();
  await repo.flush();
  const index = repo.commitIndex();
  const byEntry = new Map<ItemEntry, CommitId[]>();
  for (const id of new Set([...peer.heldBack, ...peer.refused])) {
    const e = index.get(id);
    if (!e || repo.gc.collected.has(id)) continue;
    const list = byEntry.get(e);
    if (list) list.push(id);
    else byEntry.set(e, [id]);
  }
  const reapplied: ReappliedEdits[] = [];
  const collectHere: CommitId[] = [];
  let refusedCount = 0, collectedCount = 0;
  for (const [e, candidates] of byEntry) {
    for (let attempt = 1;; attempt++) {
      const g = repo.graphs.fullGraphOf(e);
      const collectedAtPeer: CommitId[] = [];
      const plan = planItem(g, peer, candidates, collectedAtPeer);
      if (!plan) {
        collectHere.push(...collectedAtPeer);
        collectedCount += collectedAtPeer.length;
        break;
      }
      const node = await reapply(repo, e, g, plan);
      if (!node && attempt < MAX_ATTEMPTS) continue;
      if (!node) {
        throw new Error(
          `Re-applying refused edits of ${e.path}: its heads kept changing`,
        );
      }
      collectHere.push(...collectedAtPeer, ...plan.refused);
      collectedCount += collectedAtPeer.length;
      refusedCount += plan.refused.size;
      reapplied.push({
        path: e.path,
        refused: [...plan.refused].sort(),
        commit: node.commit.id,
        overwritten: plan.overwritten,
        superseded: plan.superseded,
      });
      break;
    }
  }
  if (collectHere.length) repo.collectInPlace(repo.horizon, collectHere);
  return { reapplied, refused: refusedCount, collected: collectedCount };
}
