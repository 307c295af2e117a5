/**
 * An item's history as callers see it: one summary per commit, oldest first.
 *
 * @module
 */

import { type CommitId, compareCommitOrder } from "../commit/commit.ts";
import type { ItemGraph } from "./item_graph.ts";

/** Summary of one commit of an item's history. */
export interface CommitInfo {
  readonly id: CommitId;
  readonly parents: readonly CommitId[];
  readonly session: string;
  /** Hybrid logical timestamp */
  readonly ts: number;
  readonly time: Date;
  readonly schema: string;
  readonly kind: "full" | "delta";
  /** The full snapshot a delta is relative to. */
  readonly base?: CommitId;
  readonly deleted: boolean;
  readonly signed: boolean;
  readonly head: boolean;
}

/** The commits of a whole graph, oldest first. */
export function historyOf(g: ItemGraph): CommitInfo[] {
  const heads = new Set(g.heads);
  return [...g.nodes.values()]
    .sort((a, b) => compareCommitOrder(a.commit, b.commit))
    .map((n) => {
      const c = n.commit;
      return {
        id: c.id,
        parents: c.parents,
        session: c.session,
        ts: c.ts,
        time: new Date(Math.floor(c.ts / 1024)),
        schema: c.schema,
        kind: c.body.kind,
        ...(c.body.kind === "delta" ? { base: c.body.base } : {}),
        deleted: c.body.deleted,
        signed: n.sig !== null,
        head: heads.has(n),
      };
    });
}
