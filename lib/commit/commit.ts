/**
 * Commits: the immutable, signed versions of an item. A commit is encoded canonically as
 * the MessagePack array `[1, key, parents, session, ts, schema, body]`; its id is the
 * SHA-256 of those bytes and its signature is Ed25519 over the id. The body is either a
 * full snapshot `[0, data, deleted]` or a delta `[1, baseId, changed, removed, deleted]`
 * against the last full snapshot in the commit's ancestry.
 *
 * @module
 */

import {
  MsgpackReader,
  MsgpackWriter,
  type Packable,
} from "../encoding/msgpack.ts";
import { sha256 } from "../crypto/sha256.ts";
import { decodeBase64Url, encodeBase64Url } from "../encoding/base64url.ts";
import { SESSION_ID_BYTES, type SessionId } from "../crypto/keys.ts";
import { type ItemPath, parsePath } from "../path.ts";
import { isTimestamp, type Timestamp } from "./clock.ts";
import { parseSchemaId, type SchemaId } from "../schema/schema.ts";

/** A commit id: base64url of the 32-byte SHA-256 of the commit's canonical bytes. */
export type CommitId = string & { readonly __brand: "CommitId" };

/** Version tag of the commit encoding. */
export const COMMIT_FORMAT_VERSION = 1;
/** Bytes in a binary commit id. */
export const COMMIT_ID_BYTES = 32;
/** Most parents one commit may name. */
export const MAX_PARENTS = 64;

/** Raw (encoded) field values of one schema version. */
export type RawData = Record<string, Packable>;

/** A full snapshot of the item. */
export interface FullBody {
  readonly kind: "full";
  readonly data: RawData;
  readonly deleted: boolean;
}

/** Changes against the full snapshot `base`. */
export interface DeltaBody {
  readonly kind: "delta";
  readonly base: CommitId;
  /** field → new raw value (text fields may hold a splice `[start, deleteCount, insert]`) */
  readonly changed: RawData;
  readonly removed: readonly string[];
  readonly deleted: boolean;
}

/** A commit body. */
export type CommitBody = FullBody | DeltaBody;

/** The signed content of a commit. */
export interface CommitContent {
  readonly key: ItemPath;
  readonly parents: readonly CommitId[];
  readonly session: SessionId;
  readonly ts: Timestamp;
  readonly schema: SchemaId;
  readonly body: CommitBody;
}

/** A decoded commit with its id and canonical bytes. */
export interface Commit extends CommitContent {
  readonly id: CommitId;
  /** Canonical encoding of the content (what the id hashes). */
  readonly bytes: Uint8Array;
}

const writer = new MsgpackWriter();

/** Converts a binary id into a CommitId. */
export function commitIdFromBytes(bytes: Uint8Array): CommitId {
  return encodeBase64Url(bytes) as CommitId;
}

/** Binary form of a commit id; throws a SyntaxError for a malformed id. */
export function commitIdBytes(id: CommitId): Uint8Array {
  const bytes = decodeBase64Url(id);
  if (bytes.length !== COMMIT_ID_BYTES) {
    throw new SyntaxError(`Invalid commit id "${id}": expected 32 bytes`);
  }
  return bytes;
}

/** Encodes commit content canonically (parents sorted). */
export function encodeCommitContent(c: CommitContent): Uint8Array {
  const w = writer;
  w.reset();
  w.writeArrayHeader(7);
  w.writeNumber(COMMIT_FORMAT_VERSION);
  w.writeString(c.key);
  const parents = [...c.parents].sort();
  w.writeArrayHeader(parents.length);
  for (const p of parents) w.writeBinary(commitIdBytes(p));
  w.writeBinary(decodeBase64Url(c.session));
  w.writeNumber(c.ts);
  w.writeString(c.schema);
  const b = c.body;
  if (b.kind === "full") {
    w.writeArrayHeader(3);
    w.writeNumber(0);
    w.writeValue(b.data);
    w.writeBoolean(b.deleted);
  } else {
    w.writeArrayHeader(5);
    w.writeNumber(1);
    w.writeBinary(commitIdBytes(b.base));
    w.writeValue(b.changed);
    w.writeValue([...b.removed].sort());
    w.writeBoolean(b.deleted);
  }
  return w.toBytes();
}

/** Builds a commit from its content: encodes it and computes the id. */
export function buildCommit(content: CommitContent): Commit {
  const bytes = encodeCommitContent(content);
  return {
    ...content,
    parents: [...content.parents].sort(),
    id: commitIdFromBytes(sha256(bytes)),
    bytes,
  };
}

function fail(what: string): never {
  throw new SyntaxError(`Invalid commit: ${what}`);
}

function readRawData(r: MsgpackReader, what: string): RawData {
  if (r.peekType() !== "map") fail(`${what} must be a map`);
  return r.readValue() as RawData;
}

function readBody(r: MsgpackReader): CommitBody {
  const n = r.readArrayHeader();
  const kind = r.readNumber();
  if (kind === 0 && n === 3) {
    const data = readRawData(r, "snapshot data");
    return { kind: "full", data, deleted: r.readBoolean() };
  }
  if (kind === 1 && n === 5) {
    const base = r.readBinary();
    if (base.length !== COMMIT_ID_BYTES) fail("delta base is not 32 bytes");
    const changed = readRawData(r, "delta changes");
    const removed = r.readValue();
    if (
      !Array.isArray(removed) || !removed.every((x) => typeof x === "string")
    ) fail("delta removals must be an array of strings");
    return {
      kind: "delta",
      base: commitIdFromBytes(base),
      changed,
      removed: removed as string[],
      deleted: r.readBoolean(),
    };
  }
  fail(`unknown body kind ${kind}/${n}`);
}

/**
 * Reads the schema and body of stored commit bytes without computing the id (fast path
 * for reading values of single-commit items after open; the bytes were checksummed).
 */
export function decodeStoredBody(
  bytes: Uint8Array,
  start: number,
  end: number,
): { schema: SchemaId; body: CommitBody } {
  const r = new MsgpackReader(bytes, start, end);
  if (r.readArrayHeader() !== 7) fail("expected a 7-element array");
  r.skipValue();
  r.skipValue();
  r.skipValue();
  r.skipValue();
  r.skipValue();
  const schema = r.readString();
  return { schema, body: readBody(r) };
}

/**
 * Decodes and validates canonical commit bytes; the id is recomputed from the bytes, so
 * content cannot disagree with its id. Throws a SyntaxError describing malformed input.
 */
export function decodeCommit(bytes: Uint8Array): Commit {
  return decodeCommitWithId(bytes).commit;
}

/** {@link decodeCommit}, also returning the binary id (the SHA-256 of the bytes). */
export function decodeCommitWithId(
  bytes: Uint8Array,
): { commit: Commit; idBytes: Uint8Array } {
  const r = new MsgpackReader(bytes);
  try {
    if (r.readArrayHeader() !== 7) fail("expected a 7-element array");
    const version = r.readNumber();
    if (version !== COMMIT_FORMAT_VERSION) {
      fail(`unsupported format version ${version}`);
    }
    const key = r.readString();
    const parsed = parsePath(key);
    if (parsed.item === undefined) fail(`key "${key}" is not an item path`);
    const nParents = r.readArrayHeader();
    if (nParents > MAX_PARENTS) {
      fail(`${nParents} parents exceed ${MAX_PARENTS}`);
    }
    const parents: CommitId[] = [];
    for (let i = 0; i < nParents; i++) {
      const p = r.readBinary();
      if (p.length !== COMMIT_ID_BYTES) fail("parent id is not 32 bytes");
      parents.push(commitIdFromBytes(p));
    }
    for (let i = 1; i < parents.length; i++) {
      if (parents[i - 1] >= parents[i]) {
        fail("parents are not sorted and unique");
      }
    }
    const session = r.readBinary();
    if (session.length !== SESSION_ID_BYTES) fail("session id is not 16 bytes");
    const ts = r.readNumber();
    if (!isTimestamp(ts)) fail(`timestamp ${ts} is not a non-negative integer`);
    const schema = r.readString();
    parseSchemaId(schema);
    const body = readBody(r);
    if (!r.atEnd) fail("trailing bytes");
    const idBytes = sha256(bytes);
    const commit: Commit = {
      id: commitIdFromBytes(idBytes),
      key: key as ItemPath,
      parents,
      session: encodeBase64Url(session) as SessionId,
      ts,
      schema,
      body,
      bytes,
    };
    return { commit, idBytes };
  } catch (e) {
    if (e instanceof SyntaxError && e.message.startsWith("Invalid commit")) {
      throw e;
    }
    fail(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Reads only the item key (the last path segment) of canonical commit bytes: the fast
 * path used when opening a log. Returns undefined when the bytes do not start like a
 * commit.
 */
export function peekItemKey(
  bytes: Uint8Array,
  start: number,
  end: number,
): string | undefined {
  if (bytes[start] !== 0x97 || bytes[start + 1] !== COMMIT_FORMAT_VERSION) {
    return undefined;
  }
  let p = start + 2;
  const h = bytes[p++];
  let len: number;
  if (h >= 0xa0 && h <= 0xbf) len = h & 0x1f;
  else if (h === 0xd9) len = bytes[p++];
  else return undefined;
  const stop = p + len;
  if (stop > end) return undefined;
  let s = stop - 1;
  while (s >= p && bytes[s] !== 0x2f) s--;
  if (s < p || stop - s - 1 < 1) return undefined;
  let key = "";
  for (let i = s + 1; i < stop; i++) key += ASCII[bytes[i]];
  return key;
}

const ASCII = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

/** Orders commits by `(ts, id)`: the deterministic order of last-writer-wins. */
export function compareCommitOrder(
  a: { ts: Timestamp; id: CommitId },
  b: { ts: Timestamp; id: CommitId },
): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
