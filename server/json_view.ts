/**
 * JSON views of repositories and items: sets become sorted arrays, maps objects, dates
 * ISO strings. An item whose schema this server does not know (or cannot decode) is
 * not an error for the whole view: it is listed and marked `decoded: false` with its
 * schema id, the reason and its raw fields (what the stored snapshot holds, without the
 * schema's types and defaults).
 *
 * @module
 */

import type { FieldValue, Item, Repository } from "../mod.ts";
import type { Packable } from "../lib/encoding/msgpack.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import { openRepositoryOf } from "../lib/core/open_repository.ts";

/** A JSON-safe copy of a field value. */
export function jsonValue(v: FieldValue): unknown {
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Set) return [...v].sort();
  if (v instanceof Map) {
    return Object.fromEntries([...v].sort(([a], [b]) => a < b ? -1 : 1));
  }
  return v;
}

/** A JSON-safe copy of raw (undecoded) MessagePack data: bytes become base64url. */
export function jsonRaw(v: Packable): unknown {
  if (v instanceof Uint8Array) return encodeBase64Url(v);
  if (Array.isArray(v)) return v.map(jsonRaw);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      out[k] = jsonRaw((v as Record<string, Packable>)[k]);
    }
    return out;
  }
  return v;
}

/** The JSON view of an item. */
export function itemJson(item: Item): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item.toObject())) data[k] = jsonValue(v);
  const s = item.schema;
  return {
    path: item.path,
    schema: `${s.ns}/${s.version}`,
    deleted: item.isDeleted,
    heads: item.heads,
    data,
  };
}

/** What the view knows of an item it cannot decode. */
export function undecodedJson(
  repo: Repository,
  key: string,
  reason: string,
): Record<string, unknown> | undefined {
  const open = openRepositoryOf(repo);
  const e = open.items.entry(key);
  if (!e) return undefined;
  let graph;
  try {
    graph = open.graphs.graphOf(e);
  } catch (err) {
    return {
      path: `${repo.path}/${key}`,
      decoded: false,
      reason: `${reason}; its history cannot be read: ${
        (err as Error).message
      }`,
    };
  }
  const heads = graph.heads;
  const newest = heads[heads.length - 1];
  let raw: unknown, deleted: boolean | undefined;
  try {
    if (newest) {
      const full = graph.fullOf(newest);
      raw = jsonRaw(full.data);
      deleted = full.deleted;
    }
  } catch { /* the snapshot itself is unreadable: no raw data */ }
  return {
    path: `${repo.path}/${key}`,
    schema: newest?.commit.schema,
    decoded: false,
    reason,
    heads: heads.map((h) => h.commit.id),
    ...(deleted !== undefined ? { deleted } : {}),
    ...(raw !== undefined
      ? {
        raw,
        ...(heads.length > 1
          ? { rawOf: "the newest head (several heads are not merged)" }
          : {}),
      }
      : {}),
  };
}

/** One item key of a repository view. */
export interface RepoViewEntry {
  readonly key: string;
  /** Why the item cannot be decoded here, when it cannot. */
  readonly undecodable?: { readonly schema?: string; readonly reason: string };
}

/**
 * The live items of `repo` that `mayRead` admits, sorted: decoded ones, and those this
 * server cannot decode (unregistered schema), marked as such.
 */
export function repoEntries(
  repo: Repository,
  mayRead: (key: string) => boolean,
): RepoViewEntry[] {
  const out: RepoViewEntry[] = [];
  const open = openRepositoryOf(repo);
  for (const e of open.items.entries()) {
    if (!mayRead(e.key)) continue;
    try {
      const v = open.items.valueOf(e);
      if (v?.unreadable !== undefined) {
        // Kept and synced, but not readable here (a schema this server lacks).
        if (!v.deleted) {
          out.push({
            key: e.key,
            undecodable: {
              schema: `${v.schema.ns}/${v.schema.version}`,
              reason: v.unreadable,
            },
          });
        }
      } else if (v && !v.deleted) out.push({ key: e.key });
    } catch (err) {
      let schema: string | undefined;
      try {
        const heads = open.graphs.graphOf(e).heads;
        schema = heads[heads.length - 1]?.commit.schema;
      } catch { /* unknown */ }
      out.push({
        key: e.key,
        undecodable: {
          ...(schema !== undefined ? { schema } : {}),
          reason: (err as Error).message,
        },
      });
    }
  }
  return out.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}
