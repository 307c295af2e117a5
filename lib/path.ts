/**
 * Paths name repositories and items: `/type/repo` is a repository, `/type/repo/item`
 * an item in it. Every segment is lower-case `[a-z0-9_-]`, 1 to 64 characters.
 *
 * @module
 */

/** A validated repository path such as `/todo/groceries`. */
export type RepoPath = string & { readonly __brand: "RepoPath" };

/** A validated item path such as `/todo/groceries/milk`. */
export type ItemPath = string & { readonly __brand: "ItemPath" };

/** Longest allowed path segment, in characters. */
export const MAX_SEGMENT_LENGTH = 64;

const SEGMENT = /^[a-z0-9_-]{1,64}$/;

/** The parts of a parsed path. `item` is undefined for a repository path. */
export interface ParsedPath {
  readonly type: string;
  readonly repo: string;
  readonly item?: string;
  /** `/type/repo` */
  readonly repoPath: RepoPath;
}

/** True when `s` is a valid path segment. */
export function isValidSegment(s: string): boolean {
  return SEGMENT.test(s);
}

/**
 * Parses `/type/repo` or `/type/repo/item`; throws a TypeError naming the path otherwise.
 *
 * @example
 * ```ts
 * import { parsePath } from "./path.ts";
 * parsePath("/todo/home/milk").item; // "milk"
 * ```
 */
export function parsePath(path: string): ParsedPath {
  if (typeof path !== "string") {
    throw new TypeError(`Invalid path ${String(path)}: expected a string`);
  }
  const parts = path.split("/");
  if (parts[0] !== "" || parts.length < 3 || parts.length > 4) {
    throw new TypeError(
      `Invalid path "${path}": expected "/type/repo" or "/type/repo/item"`,
    );
  }
  for (let i = 1; i < parts.length; i++) {
    if (!SEGMENT.test(parts[i])) {
      throw new TypeError(
        `Invalid path "${path}": segment "${
          parts[i]
        }" must be 1-${MAX_SEGMENT_LENGTH} characters of [a-z0-9_-]`,
      );
    }
  }
  return {
    type: parts[1],
    repo: parts[2],
    item: parts[3],
    repoPath: `/${parts[1]}/${parts[2]}` as RepoPath,
  };
}

/** Validates a repository path (`/type/repo`) and returns it branded. */
export function repoPathOf(path: string): RepoPath {
  const p = parsePath(path);
  if (p.item !== undefined) {
    throw new TypeError(
      `Invalid repository path "${path}": expected "/type/repo", got an item path`,
    );
  }
  return p.repoPath;
}

/** Validates an item path (`/type/repo/item`) and returns it branded. */
export function itemPathOf(path: string): ItemPath {
  const p = parsePath(path);
  if (p.item === undefined) {
    throw new TypeError(
      `Invalid item path "${path}": expected "/type/repo/item", got a repository path`,
    );
  }
  return path as ItemPath;
}

/** Joins a repository path and an item key. */
export function joinItemPath(repo: RepoPath, key: string): ItemPath {
  if (!SEGMENT.test(key)) {
    throw new TypeError(
      `Invalid item key "${key}" in ${repo}: must be 1-${MAX_SEGMENT_LENGTH} characters of [a-z0-9_-]`,
    );
  }
  return `${repo}/${key}` as ItemPath;
}

const KEY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A random 12-character item key (about 62 bits), from the given random source. */
export function randomItemKey(random: (bytes: Uint8Array) => void): string {
  const bytes = new Uint8Array(12);
  random(bytes);
  let key = "";
  for (const b of bytes) key += KEY_ALPHABET[b % 36];
  return key;
}
