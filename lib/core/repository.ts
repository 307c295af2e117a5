/**
 * A repository `/type/repo`: the unit of loading, sync and access control. This is what
 * callers see of it; the object behind it is an {@link OpenRepository}
 * (open_repository.ts), which exists while the repository is open.
 *
 * @module
 */

import type { Commit, CommitId } from "../commit/commit.ts";
import type { RepoPath } from "../path.ts";
import type { IngestOptions, IngestResult, WriteCheck } from "./ingest.ts";
import type { ChangeListener } from "./item_entry.ts";
import type { CommitInfo } from "./item_history.ts";

/** Why a repository was closed: explicitly, or automatically (idle, memory budget, compaction). */
export type CloseReason = "explicit" | "idle" | "budget" | "compacted";

/** Memory-use counters of a repository (see {@link Repository.stats}). */
export interface RepositoryStats {
  readonly items: number;
  /** Commits decoded and held in memory (in item graphs). */
  readonly decodedCommits: number;
  /** Stored commits known only by their offsets (history not loaded). */
  readonly lazyCommits: number;
  /** Log bytes held in memory (the whole log, or only the records reads need). */
  readonly logBytesInMemory: number;
  /** Records read back from storage on demand since open. */
  readonly storageReads: number;
}

/**
 * An open repository of items.
 *
 * @example
 * ```ts ignore
 * const repo = await db.open("/todo/home");
 * console.log(repo.count(), repo.keys());
 * const off = repo.onChange((change) => console.log(change.path, change.local));
 * off();
 * ```
 */
export interface Repository {
  /** `/type/repo` */
  readonly path: RepoPath;
  /** Commits older than this timestamp (HLC) were garbage-collected and are refused. */
  readonly horizon: number;
  /** True once closed. */
  readonly closed: boolean;
  /** Why the repository was closed (null while open). */
  readonly closeReason: CloseReason | null;
  /** Number of repository-wide change listeners (lets tests check that none leak). */
  readonly listenerCount: number;
  /**
   * True while something depends on the repository staying in memory: change listeners
   * (live queries, item listeners) or writes not yet committed. Pinned repositories are
   * never closed automatically.
   */
  readonly pinned: boolean;
  /** Keys of the items in this repository (deleted items only when asked). */
  keys(options?: { includeDeleted?: boolean }): string[];
  /** Number of items that are not deleted. */
  count(): number;
  /** History of an item, oldest first. */
  history(key: string): CommitInfo[];
  /** Listens to every item change; returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void;
  /** Memory-use counters (tests and tools check that history stays on disk). */
  stats(): RepositoryStats;
  /**
   * Rough bytes of memory held: the log bytes read at open plus per-item and per-commit
   * bookkeeping. Used by the database's memory budget.
   */
  estimatedBytes(): number;
  /** Ids of every signed commit offered to peers (those collected in place excepted). */
  commitIds(): CommitId[];
  /** A commit of this repository by id (decoded on demand). */
  commitOf(id: CommitId): Commit | undefined;
  /**
   * The stored record (`[kind][sig][commit]`) of a signed commit: what sync sends and
   * what another replica's {@link Repository.ingest} takes.
   */
  commitRecord(id: CommitId): Uint8Array | undefined;
  /**
   * Ingests commit records from a peer: each is decoded, checked against its id, its
   * session's signature and the clock; accepted ones are stored and merged.
   */
  ingest(
    records: readonly Uint8Array[],
    mayWrite?: WriteCheck,
    options?: IngestOptions,
  ): Promise<IngestResult>;
  /** Resolves when every earlier write of this repository is durable. */
  flush(): Promise<void>;
}

/** A signed local commit as it was stored (see {@link CommitsListener}). */
export interface StoredCommit {
  /** The decoded commit. */
  readonly commit: Commit;
}

/** Called with signed local commits as they are stored (the sync layer pushes them). */
export type CommitsListener = (
  repo: Repository,
  commits: readonly StoredCommit[],
) => void;
