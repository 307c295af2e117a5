/**
 * The first scan of a query as a coroutine: candidates are evaluated in slices of
 * `SCAN_SLICE_MS`, each slice's matches sorted into a run, and the runs merged pairwise,
 * yielding to the event loop whenever a slice has used its time.
 *
 * @module
 */

import type { Item } from "../core/item.ts";
import type { SortKey } from "./sort_key.ts";
import { emptyRun, type RowRun, type SortedRows } from "./sorted_rows.ts";
import { WorkSlice, yieldToEventLoop } from "./yield.ts";

/** What a scan needs from its query. */
export interface ScanSteps<T> {
  /** The candidate's item when it is live and of the query's schema. */
  readonly toItem: (candidate: T) => Item | undefined;
  /** The item's sort key when it matches, else `noMatch`. Never throws. */
  readonly evaluate: (item: Item) => SortKey | symbol;
  readonly noMatch: symbol;
  /** True when the scan must stop (query closed, repository closed). */
  readonly stopped: () => boolean;
}

/**
 * Evaluates every candidate; resolves with the sorted matches, or undefined when stopped.
 *
 * @example
 * ```ts ignore
 * const run = await scanCandidates(repo.items.entries(), rows, steps);
 * if (run) rows.reset(run);
 * ```
 */
export async function scanCandidates<T>(
  candidates: Iterable<T>,
  rows: SortedRows,
  steps: ScanSteps<T>,
): Promise<RowRun | undefined> {
  const slice = new WorkSlice();
  const runs: RowRun[] = [];
  let run = emptyRun();
  for (const c of candidates) {
    const item = steps.toItem(c);
    const key = item ? steps.evaluate(item) : steps.noMatch;
    if (item && key !== steps.noMatch) {
      run.items.push(item);
      run.keys.push(key as SortKey);
      run.paths.push(item.path);
    }
    if (slice.due()) {
      runs.push(rows.sortRun(run));
      run = emptyRun();
      await yieldToEventLoop();
      if (steps.stopped()) return undefined;
      slice.restart();
    }
  }
  runs.push(rows.sortRun(run));
  while (runs.length > 1) {
    const next: RowRun[] = [];
    for (let i = 0; i < runs.length; i += 2) {
      next.push(
        i + 1 < runs.length ? rows.mergeRuns(runs[i], runs[i + 1]) : runs[i],
      );
      if (slice.expired()) {
        await yieldToEventLoop();
        if (steps.stopped()) return undefined;
        slice.restart();
      }
    }
    runs.splice(0, runs.length, ...next);
  }
  return runs[0];
}
