/**
 * Accumulates the ranges of a reply while tracking its encoded size, merging neighbours
 * where that is safe: adjacent skips always, adjacent deferred ranges into one fingerprint.
 * A deferred range never merges with a skip, because a skip may cover a range whose
 * difference was just settled and must not be reconciled (and reported) a second time.
 *
 * @module
 */

import type { IdBound } from "../idset/id_bytes.ts";
import type { IdSet } from "../idset/id_set.ts";
import { FINGERPRINT_BYTES } from "../idset/fingerprint.ts";
import {
  boundSize,
  PROTOCOL_VERSION,
  rangeSize,
  type ReconcileMessage,
  type ReconcileRange,
} from "./message.ts";

/** Encoded size of a fingerprint range with this upper bound. */
export function fingerprintRangeSize(upper: IdBound): number {
  return boundSize(upper) + 1 + FINGERPRINT_BYTES;
}

/** Encoded size of a skip range with this upper bound. */
export function skipRangeSize(upper: IdBound): number {
  return boundSize(upper) + 1;
}

type Entry =
  | { kind: "done"; range: ReconcileRange }
  | { kind: "skip"; upper: IdBound }
  | { kind: "deferred"; upper: IdBound; startRank: number; endRank: number };

/** Builds one reply message. */
export class ReplyBuilder {
  readonly #entries: Entry[] = [];
  #bytes = 1; // the version byte
  #ids = 0;

  /** Encoded size so far, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Ranges so far. */
  get ranges(): number {
    return this.#entries.length;
  }

  /** Ids so far. */
  get ids(): number {
    return this.#ids;
  }

  /** Appends a settled range: nothing more to do up to `upper`. */
  skip(upper: IdBound): void {
    const last = this.#entries.at(-1);
    if (last?.kind === "skip") {
      this.#bytes += boundSize(upper) - boundSize(last.upper);
      last.upper = upper;
      return;
    }
    this.#entries.push({ kind: "skip", upper });
    this.#bytes += skipRangeSize(upper);
  }

  /** Appends a finished range (fingerprint, id list or difference). */
  push(range: ReconcileRange): void {
    this.#entries.push({ kind: "done", range });
    this.#bytes += rangeSize(range);
    if (range.mode === "idList") this.#ids += range.ids.length;
    if (range.mode === "difference") {
      this.#ids += range.have.length + range.need.length;
    }
  }

  /**
   * Appends a range left for a later round, as our fingerprint of our ids with ranks in
   * `[startRank, endRank)`; merges with a deferred range just before it.
   */
  defer(upper: IdBound, startRank: number, endRank: number): void {
    const last = this.#entries.at(-1);
    if (last?.kind === "deferred") {
      this.#bytes += boundSize(upper) - boundSize(last.upper);
      last.upper = upper;
      last.endRank = endRank;
      return;
    }
    this.#entries.push({ kind: "deferred", upper, startRank, endRank });
    this.#bytes += fingerprintRangeSize(upper);
  }

  /** The reply, or null when every range is settled. Trailing skips are implied. */
  finish(set: IdSet): ReconcileMessage | null {
    while (this.#entries.at(-1)?.kind === "skip") this.#entries.pop();
    if (this.#entries.length === 0) return null;
    const ranges = this.#entries.map((e): ReconcileRange => {
      switch (e.kind) {
        case "done":
          return e.range;
        case "skip":
          return { mode: "skip", upper: e.upper };
        case "deferred":
          return {
            mode: "fingerprint",
            upper: e.upper,
            fingerprint: set.fingerprintOfRanks(e.startRank, e.endRank),
          };
      }
    });
    return { version: PROTOCOL_VERSION, ranges };
  }
}
