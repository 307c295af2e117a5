/**
 * Schema-free resolution of item states from stored commits, for the operator
 * commands (which do not know the application's schemas). A head's data is its full
 * snapshot, or its delta applied to its base snapshot. Text splices in deltas are
 * recognised without the schema: a changed value that is an array
 * `[start, deleteCount, insert]` over a string base value can only be a splice, since
 * no other field type encodes a string as an array. Merging several heads needs the
 * schema's merge rules, so callers report every head instead.
 *
 * @module
 */

import type {
  Commit,
  CommitId,
  FullBody,
  RawData,
} from "../../lib/commit/commit.ts";
import { compareCommitOrder } from "../../lib/commit/commit.ts";
import { applySplice } from "../../lib/merge/text.ts";
import type { StoredCommit } from "./repo_file.ts";

/** The commits of one item. */
export interface ItemCommits {
  readonly path: string;
  readonly commits: Commit[];
}

/** Groups commits by item path (paths sorted; commits in `(ts, id)` order). */
export function groupByItem(commits: readonly StoredCommit[]): ItemCommits[] {
  const byPath = new Map<string, Commit[]>();
  for (const { commit } of commits) {
    let list = byPath.get(commit.key);
    if (!list) byPath.set(commit.key, list = []);
    list.push(commit);
  }
  return [...byPath.keys()].sort().map((path) => ({
    path,
    commits: byPath.get(path)!.sort(compareCommitOrder),
  }));
}

/** The heads of an item: commits no other commit of the item names as parent. */
export function headsOf(commits: readonly Commit[]): Commit[] {
  const parents = new Set<CommitId>();
  for (const c of commits) for (const p of c.parents) parents.add(p);
  return commits.filter((c) => !parents.has(c.id));
}

/** True when an item is live: one of its heads is not a delete (edits beat deletes). */
export function isLive(heads: readonly Commit[]): boolean {
  return heads.some((h) => !h.body.deleted);
}

/**
 * The full raw data of a commit: its snapshot, or its delta applied to its base.
 * Throws an Error when the base snapshot is missing.
 */
export function fullDataOf(
  commit: Commit,
  byId: ReadonlyMap<CommitId, Commit>,
): FullBody {
  const body = commit.body;
  if (body.kind === "full") return body;
  const base = byId.get(body.base)?.body;
  if (!base || base.kind !== "full") {
    throw new Error(
      `commit ${commit.id} of ${commit.key}: delta base ${body.base} is missing`,
    );
  }
  const data: RawData = { ...base.data };
  for (const name of body.removed) delete data[name];
  for (const [name, value] of Object.entries(body.changed)) {
    const old = data[name];
    if (
      Array.isArray(value) && typeof old === "string" && value.length === 3 &&
      typeof value[0] === "number" && typeof value[1] === "number" &&
      typeof value[2] === "string"
    ) {
      data[name] = applySplice(old, {
        start: value[0],
        deleteCount: value[1],
        insert: value[2],
      });
    } else data[name] = value;
  }
  return { kind: "full", data, deleted: body.deleted };
}
