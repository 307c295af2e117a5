/**
 * Commits written into a cluster member's data directory while no server held it (an
 * operator's `capra user …` or `capra import` on a stopped member) never went through
 * the member's publisher, so the stream does not hold them. The command names their
 * repositories in the member's dirty set (dirty_set.ts), and the member reconciles them
 * with another member when it starts again, which carries them to the whole cluster.
 *
 * @module
 */

import { join } from "node:path";
import type { RepoPath } from "../../lib/path.ts";
import { CHECKPOINT_FILE } from "./checkpoint.ts";
import { DirtySet } from "./dirty_set.ts";

/**
 * Marks `repos` as needing reconciliation when `dir` belongs to a cluster member (it
 * holds the member's checkpoint). A directory that never joined a cluster is left
 * alone: a member that joins later reconciles everything anyway. True when marked.
 */
export async function markOfflineWrites(
  dir: string,
  repos: readonly RepoPath[],
): Promise<boolean> {
  try {
    await Deno.stat(join(dir, CHECKPOINT_FILE));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  const { set } = await DirtySet.load(dir);
  for (const repo of repos) set.markFailed(repo);
  await set.close();
  return true;
}
