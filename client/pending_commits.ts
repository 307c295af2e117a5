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
 * @module
 */

import type { Database } from "../lib/database/database.ts";
import { COMMIT_RECORD_HEADER, RecordKind } from "../lib/core/records.ts";
import { decodeCommit } from "../lib/commit/commit.ts";
import { yieldToEventLoop } from "../lib/query/yield.ts";
import type { IdbStorage } from "./idb_storage.ts";

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
  readonly #byRepo = new Map<string, Set<string>>();
  readonly #loading = new Map<string, Promise<void>>();
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

  /** The pending commit ids of one repository. */
  idsOf(repo: string): string[] {
    return [...this.#byRepo.get(repo) ?? []];
  }

  /** Adds commits this replica authored (any tab of it). */
  add(repo: string, ids: readonly string[]): void {
    if (!ids.length) return;
    let set = this.#byRepo.get(repo);
    if (!set) this.#byRepo.set(repo, set = new Set());
    const before = set.size;
    for (const id of ids) set.add(id);
    if (set.size !== before) this.onChange?.();
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
    const ids: string[] = [];
    let sliceStart = performance.now();
    for (const p of payloads) {
      if (p[0] !== RecordKind.Commit || p.length <= COMMIT_RECORD_HEADER) {
        continue;
      }
      try {
        const c = decodeCommit(p.subarray(COMMIT_RECORD_HEADER));
        if (c.session === me) ids.push(c.id);
      } catch { /* a damaged record: the repository reports it */ }
      if (performance.now() - sliceStart > 8) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
    this.add(repo, ids);
  }

  /** Notes what a sync of `repo` starting now will confirm. */
  async begin(repo: string): Promise<PendingSnapshot> {
    await this.load(repo).catch(() => {});
    const heldThrough = this.#storage && !this.#storage.discarded
      ? await this.#storage.heldThrough(repo)
      : 0;
    return { repo, ids: [...this.#byRepo.get(repo) ?? []], heldThrough };
  }

  /** A sync that began with `snap` ended without refused commits. */
  async confirm(snap: PendingSnapshot): Promise<void> {
    const set = this.#byRepo.get(snap.repo);
    if (set) {
      const before = set.size;
      for (const id of snap.ids) set.delete(id);
      if (set.size !== before) this.onChange?.();
    }
    const storage = this.#storage;
    if (!storage || storage.discarded || snap.heldThrough <= 0) return;
    const name = syncedThroughMeta(snap.repo);
    const old = await storage.readValue<number>(name);
    if (typeof old !== "number" || old < snap.heldThrough) {
      await storage.writeValue(name, snap.heldThrough);
    }
  }
}
