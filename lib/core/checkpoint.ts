/**
 * Checkpoints: when a repository closes after long item histories grew, it appends a
 * checkpoint record naming, per item, the records reads need (heads and the snapshots they
 * are deltas of). The next open decodes only those; the item's other records before the
 * checkpoint become lazy history (byte offsets, see lazy_history.ts).
 *
 * @module
 */

import { fullBaseOf, type ItemGraph } from "./item_graph.ts";
import { type ItemEntry, offsetArray, recordCount } from "./item_entry.ts";
import { CHECKPOINT_ID_PREFIX, decodeCheckpointRecord } from "./records.ts";

/**
 * A checkpoint is written on close once this many commit records were stored since the
 * last one, and only if it leaves at least this many more records undecoded at next open.
 */
export const CHECKPOINT_MIN_RECORDS = 1024;
/** Items with fewer records are not decoded on close just to write a checkpoint. */
export const CHECKPOINT_MIN_HISTORY = 4;

/**
 * Splits the records of long histories per the checkpoint `body` found at log offset
 * `at`: those it names stay to be decoded, the item's other records before it become lazy
 * history. Returns how many records became lazy, or -1 when the checkpoint is unreadable
 * (then everything is decoded).
 */
export function applyCheckpoint(
  body: Uint8Array,
  at: number,
  entries: Iterable<ItemEntry>,
): number {
  let named: Map<number, string>;
  try {
    named = decodeCheckpointRecord(body).named;
  } catch {
    return -1;
  }
  let lazyCount = 0;
  for (const e of entries) {
    if (e.more === null || e.start > at) continue;
    const all = [e.start, e.end, ...e.more];
    let covered = 0;
    for (let i = 0; i < all.length; i += 2) if (all[i] < at) covered++;
    if (covered < 2) continue;
    const keep: number[] = [], lazy: number[] = [];
    let mine: Map<number, string> | null = null;
    for (let i = 0; i < all.length; i += 2) {
      const start = all[i];
      const prefix = start < at ? named.get(start) : undefined;
      if (start < at && prefix === undefined) lazy.push(start, all[i + 1]);
      else {
        keep.push(start, all[i + 1]);
        if (prefix !== undefined) (mine ??= new Map()).set(start, prefix);
      }
    }
    if (mine === null) continue; // nothing named for this item: decode it whole
    e.start = keep[0];
    e.end = keep[1];
    e.more = keep.length > 2 ? keep.slice(2) : null;
    e.hist = {
      records: offsetArray(lazy),
      named: mine,
      base: null,
      deltas: 0,
    };
    lazyCount += lazy.length / 2;
  }
  return lazyCount;
}

/**
 * The records a checkpoint written now would name (log offset → id prefix), or null when
 * it would not spare the next open from decoding at least {@link CHECKPOINT_MIN_RECORDS}
 * more records than the last one (`lazyAtOpen`). Per item with history: the offsets of its
 * heads and of the snapshots they are deltas of. Items with short histories that were
 * never read are not decoded for it (they are decoded whole at next open).
 */
export function planCheckpoint(
  entries: Iterable<ItemEntry>,
  graphOf: (e: ItemEntry) => ItemGraph,
  lazyAtOpen: number,
): Map<number, string> | null {
  const named = new Map<number, string>();
  let lazy = 0;
  for (const e of entries) {
    const records = recordCount(e);
    if (records < 2) continue;
    if (
      e.graph === null && e.hist === null &&
      records < CHECKPOINT_MIN_HISTORY
    ) continue;
    const g = graphOf(e);
    if (g.waitingCount > 0) continue; // decoded whole at next open
    const need = new Map<number, string>();
    let known = true;
    for (const h of g.heads) {
      for (const n of [h, g.nodes.get(fullBaseOf(h.commit))]) {
        if (!n) continue;
        if (n.at === undefined) known = false;
        else need.set(n.at, n.commit.id.slice(0, CHECKPOINT_ID_PREFIX));
      }
    }
    if (!known || need.size === 0) continue;
    for (const [at, prefix] of need) named.set(at, prefix);
    lazy += recordCount(e) - need.size;
  }
  return lazy - lazyAtOpen < CHECKPOINT_MIN_RECORDS ? null : named;
}
