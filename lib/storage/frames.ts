/**
 * Record framing shared by every storage: `[0xCA][length: LEB128][crc32: u32 LE][payload]`.
 * Scanning finds every intact record; damage in the middle is skipped (the records after
 * it are kept) and a torn or corrupt tail is reported so storage can cut it at the exact
 * end of the last good record.
 *
 * @module
 */

import { crc32 } from "./crc32.ts";

/** First byte of every record frame. */
export const FRAME_MAGIC = 0xca;
/** Largest payload one record may have. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Frames one payload. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  if (n > MAX_RECORD_BYTES) {
    throw new RangeError(
      `Record of ${n} bytes exceeds the limit of ${MAX_RECORD_BYTES} bytes`,
    );
  }
  const lenBytes = n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
  const out = new Uint8Array(1 + lenBytes + 4 + n);
  out[0] = FRAME_MAGIC;
  let v = n, i = 1;
  while (v >= 0x80) {
    out[i++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[i++] = v;
  const c = crc32(payload);
  out[i++] = c & 0xff;
  out[i++] = (c >>> 8) & 0xff;
  out[i++] = (c >>> 16) & 0xff;
  out[i++] = c >>> 24;
  out.set(payload, i);
  return out;
}

/** A damaged byte range found while scanning. */
export interface DamagedRange {
  readonly start: number;
  readonly end: number;
}

/** What a scan found. */
export interface ScanResult {
  /** payload start/end offsets, two numbers per intact record, in file order */
  readonly frames: number[];
  /** end of the last intact record: everything after it is a torn or corrupt tail */
  readonly validEnd: number;
  /** damaged ranges between intact records (kept in place, skipped on every read) */
  readonly skipped: DamagedRange[];
}

/** Returns the payload end when a valid frame starts at `o`, else -1. */
function frameAt(bytes: Uint8Array, o: number, out: { start: number }): number {
  const end = bytes.length;
  if (bytes[o] !== FRAME_MAGIC) return -1;
  let n = 0, shift = 0, i = o + 1;
  for (;;) {
    if (i >= end || shift > 21) return -1;
    const b = bytes[i++];
    n |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  if (n > MAX_RECORD_BYTES) return -1;
  const start = i + 4;
  const stop = start + n;
  if (stop > end) return -1;
  const stored = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) |
    (bytes[i + 3] << 24)) >>> 0;
  if (crc32(bytes, start, stop) !== stored) return -1;
  out.start = start;
  return stop;
}

/** Scans a log for intact records. */
export function scanFrames(bytes: Uint8Array): ScanResult {
  const frames: number[] = [];
  const skipped: DamagedRange[] = [];
  const pos = { start: 0 };
  let o = 0, validEnd = 0;
  while (o < bytes.length) {
    const stop = frameAt(bytes, o, pos);
    if (stop >= 0) {
      frames.push(pos.start, stop);
      o = validEnd = stop;
      continue;
    }
    // Damage: look for the next intact record.
    let next = -1;
    for (let p = o + 1; p < bytes.length; p++) {
      if (bytes[p] === FRAME_MAGIC && frameAt(bytes, p, pos) >= 0) {
        next = p;
        break;
      }
    }
    if (next < 0) break;
    skipped.push({ start: o, end: next });
    o = next;
  }
  return { frames, validEnd, skipped };
}
