/**
 * Read-only access to the repository files of a data directory, for the operator
 * commands. Files are read with plain reads, never through `FileStorage` (which takes
 * the directory lock and cuts torn tails), so every command here works while a server
 * holds the directory and never modifies what it reads.
 *
 * @module
 */

import { type Commit, decodeCommit } from "../../lib/commit/commit.ts";
import {
  COMMIT_RECORD_HEADER,
  decodeCheckpointRecord,
  decodeHorizonRecord,
  RecordKind,
} from "../../testing.ts";
import { decodeSessionRecord, type SessionRecord } from "../../testing.ts";
import type { SessionId } from "../../lib/crypto/keys.ts";
import { parsePath, type RepoPath, repoPathOf } from "../../lib/path.ts";
import { scanFrames, type ScanResult } from "../../lib/storage/frames.ts";
import { repoFileName } from "../../lib/storage/file_storage.ts";
import { UsageError } from "./common.ts";

/** File names of repositories (the same pattern as the file storage). */
const REPO_FILE = /^([a-z0-9_-]{1,64})\.([a-z0-9_-]{1,64})\.capra$/;

/** One repository file of a data directory. */
export interface RepoFileRef {
  readonly repo: RepoPath;
  readonly path: string;
  readonly name: string;
}

/** A commit record as stored. */
export interface StoredCommit {
  readonly commit: Commit;
  readonly sig: Uint8Array;
  /** The whole record payload `[kind][sig][commit bytes]`. */
  readonly record: Uint8Array;
  /** File offset of the payload. */
  readonly offset: number;
}

/** A session record as stored. */
export interface StoredSession {
  readonly session: SessionRecord;
  /** The session record bytes (without the kind byte). */
  readonly bytes: Uint8Array;
}

/** Everything read from one repository file. */
export interface RepoFileContents extends RepoFileRef {
  readonly bytes: Uint8Array;
  readonly scan: ScanResult;
  /** Decodable commit records in file order (duplicates removed). */
  readonly commits: StoredCommit[];
  /** Sessions recorded in the file, by id. */
  readonly sessions: Map<SessionId, StoredSession>;
  /** Checksummed records that do not decode, or do not belong here. */
  readonly undecodable: { offset: number; reason: string }[];
  /** Intact records. */
  readonly records: number;
}

/** Lists the repository files of a data directory, sorted by repository path. */
export async function listRepoFiles(dir: string): Promise<RepoFileRef[]> {
  const out: RepoFileRef[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const m = entry.isFile ? REPO_FILE.exec(entry.name) : null;
    if (m) {
      out.push({
        repo: `/${m[1]}/${m[2]}` as RepoPath,
        path: `${dir}/${entry.name}`,
        name: entry.name,
      });
    }
  }
  return out.sort((a, b) => a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0);
}

/** An entry named like a repository file that is not a regular file. */
export interface MisplacedEntry extends RepoFileRef {
  /** What it is instead: `directory`, `symlink` or `other`. */
  readonly kind: "directory" | "symlink" | "other";
}

/**
 * Entries of a data directory named like repository files that are not regular files
 * (a directory, a symbolic link...): the storage cannot use them, so they are damage.
 */
export async function listMisplacedEntries(
  dir: string,
): Promise<MisplacedEntry[]> {
  const out: MisplacedEntry[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const m = entry.isFile ? null : REPO_FILE.exec(entry.name);
    if (m) {
      out.push({
        repo: `/${m[1]}/${m[2]}` as RepoPath,
        path: `${dir}/${entry.name}`,
        name: entry.name,
        kind: entry.isDirectory
          ? "directory"
          : entry.isSymlink
          ? "symlink"
          : "other",
      });
    }
  }
  return out.sort((a, b) => a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0);
}

/**
 * The repository files to work on: one (`repo` given; a UsageError when it is not a
 * valid path or has no file) or all of them.
 */
export async function selectRepoFiles(
  dir: string,
  repo?: string,
): Promise<RepoFileRef[]> {
  const all = await listRepoFiles(dir);
  if (repo === undefined) return all;
  let path: RepoPath;
  try {
    path = repoPathOf(repo);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const found = all.find((f) => f.repo === path);
  if (!found) {
    throw new UsageError(
      `repository ${path} has no file in "${dir}" (expected ${
        repoFileName(path)
      })`,
    );
  }
  return [found];
}

/** Reads a repository file and decodes its records (read-only). */
export async function readRepoFile(
  ref: RepoFileRef,
): Promise<RepoFileContents> {
  const bytes = await Deno.readFile(ref.path);
  const scan = scanFrames(bytes);
  const commits: StoredCommit[] = [];
  const seen = new Set<string>();
  const sessions = new Map<SessionId, StoredSession>();
  const undecodable: { offset: number; reason: string }[] = [];
  const frames = scan.frames;
  for (let i = 0; i < frames.length; i += 2) {
    const start = frames[i], end = frames[i + 1];
    const kind = bytes[start];
    try {
      if (kind === RecordKind.Commit && end - start > COMMIT_RECORD_HEADER) {
        const commit = decodeCommit(
          bytes.subarray(start + COMMIT_RECORD_HEADER, end),
        );
        if (parsePath(commit.key).repoPath !== ref.repo) {
          throw new Error(`item ${commit.key} is not in ${ref.repo}`);
        }
        if (seen.has(commit.id)) continue;
        seen.add(commit.id);
        commits.push({
          commit,
          sig: bytes.subarray(start + 1, start + COMMIT_RECORD_HEADER),
          record: bytes.subarray(start, end),
          offset: start,
        });
      } else if (kind === RecordKind.Session) {
        const body = bytes.subarray(start + 1, end);
        const session = decodeSessionRecord(body);
        sessions.set(session.id, { session, bytes: body });
      } else if (kind === RecordKind.Horizon) {
        decodeHorizonRecord(bytes.subarray(start + 1, end)); // validates it
      } else if (kind === RecordKind.Checkpoint) {
        decodeCheckpointRecord(bytes.subarray(start + 1, end));
      } else {
        throw new Error(`unknown record kind ${kind}`);
      }
    } catch (e) {
      undecodable.push({ offset: start, reason: (e as Error).message });
    }
  }
  return {
    ...ref,
    bytes,
    scan,
    commits,
    sessions,
    undecodable,
    records: frames.length / 2,
  };
}
