/**
 * The local commits the server has not confirmed yet, per repository: added as they are
 * stored, confirmed by an HTTP round that reconciled without a refused commit. When the
 * server revokes the device, they are what {@link UnsyncedCommits.report} lists: kept in
 * the database, never dropped silently. (In memory: commits pushed over the socket are
 * counted until the next HTTP round confirms them, so the report may count a commit the
 * server has, never miss one it lacks while the page is open.)
 *
 * @module
 */

import type { Commit } from "../lib/commit/commit.ts";
import type { RevokedReport } from "./sync_state.ts";

/** Most item paths a report lists. */
export const MAX_REPORTED_ITEMS = 1000;

/** Unconfirmed local commits by repository. */
export class UnsyncedCommits {
  readonly #byRepo = new Map<string, Map<string, string>>();

  /** Notes commits stored locally in `repo`. */
  add(repo: string, commits: readonly Commit[]): void {
    let m = this.#byRepo.get(repo);
    if (!m) this.#byRepo.set(repo, m = new Map());
    for (const c of commits) m.set(c.id, c.key);
  }

  /** The ids unconfirmed in `repo` now (before a round starts). */
  snapshot(repo: string): string[] {
    return [...this.#byRepo.get(repo)?.keys() ?? []];
  }

  /** A round that started with `ids` unconfirmed reconciled them all. */
  confirm(repo: string, ids: readonly string[]): void {
    const m = this.#byRepo.get(repo);
    if (!m) return;
    for (const id of ids) m.delete(id);
  }

  /** How many commits, and which items, are unconfirmed. */
  report(): RevokedReport {
    let commits = 0;
    const items = new Set<string>();
    for (const m of this.#byRepo.values()) {
      commits += m.size;
      for (const key of m.values()) {
        if (items.size < MAX_REPORTED_ITEMS) items.add(key);
      }
    }
    return { commits, items: [...items].sort() };
  }
}
