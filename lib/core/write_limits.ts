/**
 * Size limits of local writes, checked at the call (`create`, `set`, `update`, `delete`)
 * before anything is recorded: a value or a commit too large to store and to sync is
 * refused with a RangeError naming the item, the field and the size, and nothing is
 * written. The commit is measured here, in one place: the encoded full snapshot the write
 * would produce (a delta is never larger: it is used only when under half the snapshot).
 *
 * Sizes are first bounded without encoding (3 bytes per UTF-16 unit, 9 per number), so a
 * write far below the limits costs a few additions per field; only a write whose bound
 * exceeds a limit is encoded to know its exact size.
 *
 * @module
 */

import { encode, type Packable } from "../encoding/msgpack.ts";
import type { ItemState } from "../merge/merge.ts";
import {
  encodedSizeBound,
  encodeFieldValue,
  type FieldType,
  type FieldValue,
  packedSizeBound,
} from "../schema/field_types.ts";
import { schemaIdOf } from "../schema/schema.ts";
import { MAX_RECORD_BYTES } from "../storage/frames.ts";
import { encodeItemState } from "./item_state.ts";
import { COMMIT_RECORD_HEADER } from "./records.ts";

/**
 * Largest encoded (canonical MessagePack) size of one field's value: 1 MiB − 4 KiB =
 * 1,044,480 bytes, so that a maximal value still fits a commit record with its item
 * path, parents and other fields.
 */
export const MAX_VALUE_BYTES = 1024 * 1024 - 4096;

/**
 * Largest commit record (`[kind][signature][commit bytes]`) a write may produce: 1 MiB =
 * 1,048,576 bytes. It is also the largest commit a sync message carries
 * (lib/sync/protocol.ts uses this constant), so every commit that can be written can be
 * synced. The storage's frames allow larger records (`MAX_RECORD_BYTES`, 16 MiB).
 */
export const MAX_COMMIT_RECORD_BYTES = 1024 * 1024;

// A commit record must fit a storage frame.
if (MAX_COMMIT_RECORD_BYTES > MAX_RECORD_BYTES) {
  throw new Error("MAX_COMMIT_RECORD_BYTES exceeds the storage frame limit");
}

/** Bytes of a MessagePack string header for `n` UTF-8 bytes. */
function strHeader(n: number): number {
  return n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** Bytes of a MessagePack array header for `n` elements. */
function arrayHeader(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

/**
 * Bytes of a commit record around its data: kind and signature, the commit's array
 * header and version, key, parents (34 bytes each), session (18), timestamp (at most 9),
 * schema id, and the full body's header, kind and deleted flag. Paths and schema ids are
 * ASCII, so their lengths are their byte counts.
 */
function commitOverhead(
  path: string,
  schemaId: string,
  parents: number,
): number {
  return COMMIT_RECORD_HEADER + 2 + strHeader(path.length) + path.length +
    arrayHeader(parents) + 34 * parents + 18 + 9 +
    strHeader(schemaId.length) + schemaId.length + 3;
}

function showBytes(n: number): string {
  return `${n.toLocaleString("en-US")} bytes`;
}

/**
 * Refuses a field value whose encoding exceeds {@link MAX_VALUE_BYTES} (RangeError naming
 * the item, the field and the size).
 */
export function checkValueSize(
  path: string,
  field: string,
  type: FieldType,
  value: FieldValue,
): void {
  if (encodedSizeBound(type, value) <= MAX_VALUE_BYTES) return;
  const size = encode(encodeFieldValue(type, value)).length;
  if (size <= MAX_VALUE_BYTES) return;
  throw new RangeError(
    `Cannot set field "${field}" of ${path}: its value takes ${
      showBytes(size)
    } encoded, more than MAX_VALUE_BYTES (${
      showBytes(MAX_VALUE_BYTES)
    }); nothing was written`,
  );
}

/**
 * Refuses a write whose commit record would exceed {@link MAX_COMMIT_RECORD_BYTES}:
 * `state` is the item's new state and `parents` the number of heads the commit will
 * name. The RangeError names the item, the size and the largest field.
 */
export function checkCommitSize(
  path: string,
  state: ItemState,
  parents: number,
): void {
  const schemaId = schemaIdOf(state.schema);
  const overhead = commitOverhead(path, schemaId, parents);
  // Map header (5) and the fingerprint field (4 + 9) of the data.
  let bound = overhead + 5 + 13;
  const fields = state.schema.fields;
  for (const name in state.data) {
    const def = fields[name];
    if (def) {
      bound += 6 + name.length + encodedSizeBound(def.type, state.data[name]);
    }
  }
  for (const name in state.extra) {
    bound += 5 + 3 * name.length + packedSizeBound(state.extra[name]);
  }
  if (bound <= MAX_COMMIT_RECORD_BYTES) return;
  const data = encodeItemState(state);
  const size = overhead + encode(data).length;
  if (size <= MAX_COMMIT_RECORD_BYTES) return;
  let largest = "", largestSize = -1;
  for (const name in data) {
    const n = encode(data[name] as Packable).length;
    if (n > largestSize) [largest, largestSize] = [name, n];
  }
  throw new RangeError(
    `Cannot write ${path}: its commit would take ${
      showBytes(size)
    }, more than MAX_COMMIT_RECORD_BYTES (${
      showBytes(MAX_COMMIT_RECORD_BYTES)
    }); the largest field is "${largest}" (${
      showBytes(largestSize)
    }); nothing was written`,
  );
}

/**
 * The last line of defence, when a commit is built: throws a RangeError when its record
 * would exceed {@link MAX_COMMIT_RECORD_BYTES} (the check at the call makes it unreachable).
 */
export function checkBuiltCommitSize(path: string, commitBytes: number): void {
  const size = COMMIT_RECORD_HEADER + commitBytes;
  if (size <= MAX_COMMIT_RECORD_BYTES) return;
  throw new RangeError(
    `Cannot commit ${path}: its record takes ${
      showBytes(size)
    }, more than MAX_COMMIT_RECORD_BYTES (${
      showBytes(MAX_COMMIT_RECORD_BYTES)
    })`,
  );
}
