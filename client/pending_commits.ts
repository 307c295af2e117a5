/**
 * Counts this replica's commits that the server has not confirmed yet: the edits that
 * clearing local data would lose, and what the status line shows as pending.
 *
 * A commit is confirmed when a reconciliation that started after it was stored ends
 * without a refused commit (reconciliation ends when both sides hold the same commits).
 * The count survives reloads: after each confirmed sync the IndexedDB chunk key up to
 * which this tab held every chunk is kept in metadata (`synced-through:<repo>`), and on
 * start the own commits in later chunks are counted again. A count can be too high for
 * a moment (commits confirmed in memory but not yet in that key), never too low.
 *
 * Only the tab that talks to the server (the leader) keeps a count; the other tabs show
 * the leader's through its sync state.
 *
 * When the server revokes the device, the same commits are what {@link
 * PendingCommits.report} lists (how many, and which items): they stay in the database,
 * never dropped silently.
 *
 * @module
 */

import type { Database } from "../lib/database/database.ts";
import { COMMIT_RECORD_HEADER, RecordKind } from "../lib/core/records.ts";
import { type CommitId, decodeCommit } from "../lib/commit/commit.ts";
import { yieldToEventLoop } from "../lib/query/yield.ts";
import type { IdbStorage } from "./idb_storage.ts";
import type { RevokedReport } from "./sync_state.ts";

/**
 * Most ids per repository remembered as confirmed while their chunk may still lie after
 * the stored confirmed key (beyond it, a fresh count may again include them: too high,
 * never too low).
 */
export const MAX_REMEMBERED_CONFIRMED = 100_000;

/** Most item paths a {@link PendingCommits.report} lists. */
export const MAX_REPORTED_ITEMS = 1000;

/** A commit this replica authored: its id and, when known, its item's path. */
export interface OwnCommit {
  readonly id: string;
  readonly key?: string;
}

/** Metadata name of a repository's confirmed chunk key. */
export function syncedThroughMeta(repo: string): string {
  return `synced-through:${repo}`;
}

/** Where a sync started: the commits it will confirm when it ends cleanly. */
export interface PendingSnapshot {
  readonly repo: string;
  readonly ids: readonly string[];
  /** Chunk key through which the replica held every chunk when the sync started. */
  readonly heldThrough: number;
}

/** Own commits not yet confirmed by the server, per repository. */
export class PendingCommits {
  readonly #db: Database;
  readonly #storage: IdbStorage | null;
  /** Pending commit ids per repository, each with its item path when known. */
  readonly #byRepo = new Map<string, Map<string, string | undefined>>();
  readonly #loading = new Map<string, Promise<void>>();
  /** Ids confirmed in this page's lifetime, per repository (bounded). */
  readonly #confirmed = new Map<string, Set<string>>();
  /** Called whenever the count changes. */
  onChange: (() => void) | null = null;

  constructor(db: Database, storage: IdbStorage | null) {
    this.#db = db;
    this.#storage = storage;
  }

  /** Pending commits in every repository. */
  get count(): number {
    let n = 0;
    for (const s of this.#byRepo.values()) n += s.size;
    return n;
  }

  /** Pending commits of one repository. */
  countOf(repo: string): number {
    return this.#byRepo.get(repo)?.size ?? 0;
  }

  /** The pending ids of one repository: the number of those a report lists. */
  idsOf(repo: string): string[] {
    return [...this.#byRepo.get(repo)?.keys() ?? []];
  }

  /** Adds commits this replica authored (any tab of it). */
  add(repo: string, commits: readonly OwnCommit[]): void {
    if (!commits.length) return;
    let m = this.#byRepo.get(repo);
    if (!m) this.#byRepo.set(repo, m = new Map());
    const before = m.size;
    for (const c of commits) {
      if (c.key !== undefined || !m.has(c.id)) m.set(c.id, c.key);
    }
    if (m.size !== before) this.onChange?.();
  }

  /**
   * How many commits are pending, and the paths of the items they changed (at most
   * {@link MAX_REPORTED_ITEMS}, sorted): what a revoked device reports it kept.
   */
  report(): RevokedReport {
    let commits = 0;
    const items = new Set<string>();
    for (const [repo, m] of this.#byRepo) {
      commits += m.size;
      for (const [id, key] of m) {
        if (items.size >= MAX_REPORTED_ITEMS) break;
        const path = key ?? this.#keyOf(repo, id);
        if (path) items.add(path);
      }
    }
    return { commits, items: [...items].sort() };
  }

  /** The item path of a commit another tab made (looked up in the open repository). */
  #keyOf(repo: string, id: string): string | undefined {
    try {
      return this.#db.repository(repo).commitOf(id as CommitId)?.key;
    } catch {
      return undefined; // closed meanwhile: the count still has it
    }
  }

  /**
   * Counts the own commits stored after the repository's last confirmed chunk (once per
   * repository; later calls share the first). Decodes in slices that yield.
   */
  load(repo: string): Promise<void> {
    let p = this.#loading.get(repo);
    if (!p) {
      p = this.#load(repo).catch((e) => {
        this.#loading.delete(repo);
        throw e;
      });
      this.#loading.set(repo, p);
    }
    return p;
  }

  async #load(repo: string): Promise<void> {
    const storage = this.#storage;
    if (!storage || storage.discarded) return;
    const through = await storage.readValue<number>(syncedThroughMeta(repo));
    const payloads = await storage.readChunksAfter(
      repo,
      typeof through === "number" ? through : 0,
    );
    const me = this.#db.sessionId;
    const own: OwnCommit[] = [];
    let sliceStart = performance.now();
    for (const p of payloads) {
      if (p[0] !== RecordKind.Commit || p.length <= COMMIT_RECORD_HEADER) {
        continue;
      }
      try {
        const c = decodeCommit(p.subarray(COMMIT_RECORD_HEADER));
        if (c.session === me) own.push({ id: c.id, key: c.key });
      } catch { /* a damaged record: the repository reports it */ }
      if (performance.now() - sliceStart > 8) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
    this.add(repo, own);
  }

  /** Notes what a sync of `repo` starting now will confirm. */
  async begin(repo: string): Promise<PendingSnapshot> {
    await this.load(repo).catch(() => {});
    const heldThrough = this.#storage && !this.#storage.discarded
      ? await this.#storage.heldThrough(repo)
      : 0;
    return { repo, ids: this.idsOf(repo), heldThrough };
  }

  /** True when a sync of this page confirmed commit `id` of `repo`. */
  wasConfirmed(repo: string, id: string): boolean {
    return this.#confirmed.get(repo)?.has(id) ?? false;
  }

  /** A sync that began with `snap` ended without refused commits. */
  async confirm(snap: PendingSnapshot): Promise<void> {
    let done = this.#confirmed.get(snap.repo);
    if (!done) this.#confirmed.set(snap.repo, done = new Set());
    for (const id of snap.ids) {
      if (done.size >= MAX_REMEMBERED_CONFIRMED) {
        done.delete(done.values().next().value!); // the oldest
      }
      done.add(id);
    }
    const set = this.#byRepo.get(snap.repo);
    if (set) {
      const before = set.size;
      for (const id of snap.ids) set.delete(id);
      if (set.size !== before) this.onChange?.();
    }
    const storage = this.#storage;
    if (!storage || storage.discarded) return;
    let through = snap.heldThrough;
    // Nothing left unconfirmed: every chunk held now is confirmed, also the chunks of
    // this sync's own commits that were still being appended when it began (else other
    // tabs and reloads would count them until the next edit's sync).
    const heldNow = await storage.heldThrough(snap.repo);
    if (!this.#byRepo.get(snap.repo)?.size && heldNow > through) {
      through = heldNow;
    }
    if (through <= 0) return;
    const name = syncedThroughMeta(snap.repo);
    const old = await storage.readValue<number>(name);
    if (typeof old !== "number" || old < through) {
      await storage.writeValue(name, through);
    }
  }
}
