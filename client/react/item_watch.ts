/**
 * Per-item change notifications for `useItem`: one repository listener per repository,
 * dispatching by item key, so a change to one item wakes only the components that show
 * it (a list of 1,000 rows does not run 1,000 filters per edit). A repository that is
 * not open yet is opened on first use; its subscribers hear when it is.
 *
 * @module
 */

import type { Database } from "../../lib/database/database.ts";
import { parsePath } from "../../lib/path.ts";

type Wake = () => void;

interface RepoWatch {
  readonly byKey: Map<string, Set<Wake>>;
  /** Removes the repository listener (null while the repository opens). */
  stop: (() => void) | null;
  opening: boolean;
}

/** Change counters by item path for one database. */
export class ItemWatch {
  readonly #db: Database;
  readonly #repos = new Map<string, RepoWatch>();
  readonly #versions = new Map<string, number>();
  readonly #onError: (e: unknown) => void;

  constructor(db: Database, onError: (e: unknown) => void) {
    this.#db = db;
    this.#onError = onError;
  }

  /** A number that changes whenever the item at `path` does. */
  version(path: string): number {
    return this.#versions.get(path) ?? 0;
  }

  #bump(path: string): void {
    this.#versions.set(path, this.version(path) + 1);
  }

  /** Calls `wake` after every change of the item at `path`; returns an unsubscribe. */
  subscribe(path: string, wake: Wake): () => void {
    const p = parsePath(path);
    if (p.item === undefined) {
      throw new TypeError(
        `Invalid item path "${path}": expected "/type/repo/item"`,
      );
    }
    const repo = p.repoPath;
    let w = this.#repos.get(repo);
    if (!w) {
      w = { byKey: new Map(), stop: null, opening: false };
      this.#repos.set(repo, w);
      this.#attach(repo, w);
    }
    let set = w.byKey.get(p.item);
    if (!set) w.byKey.set(p.item, set = new Set());
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size) return;
      w.byKey.delete(p.item!);
      if (w.byKey.size) return;
      w.stop?.();
      this.#repos.delete(repo);
    };
  }

  #attach(repo: string, w: RepoWatch): void {
    const listen = () => {
      if (this.#repos.get(repo) !== w || this.#db.closed) return;
      w.stop = this.#db.repository(repo).onChange((change) => {
        const wakes = w.byKey.get(change.key);
        if (!wakes) return;
        this.#bump(change.path);
        for (const wake of [...wakes]) wake();
      });
    };
    if (this.#db.isOpen(repo)) return listen();
    w.opening = true;
    this.#db.open(repo).then(() => {
      w.opening = false;
      listen();
      // The item may have been there all along: show it now.
      for (const [key, wakes] of w.byKey) {
        this.#bump(`${repo}/${key}`);
        for (const wake of [...wakes]) wake();
      }
    }, this.#onError);
  }
}
