/**
 * Items by path: creating one (validated before anything is written) and finding one in
 * its open repository, with a fast path for a known key of an open repository.
 *
 * @module
 */

import { parsePath, randomItemKey, type RepoPath } from "../path.ts";
import type { Schema, SchemaRegistry } from "../schema/schema.ts";
import { type Item, itemHandle, type RawItem } from "./item.ts";
import type { CommitInfo } from "./item_history.ts";
import type { OpenRepositories } from "./open_repositories.ts";
import { OpenRepository } from "./open_repository.ts";
import { checkNewItem } from "./write_check.ts";

/** Creates and finds the items of a database's open repositories. */
export class Items {
  constructor(
    private readonly repos: OpenRepositories,
    private readonly schemas: SchemaRegistry,
    private readonly random: (bytes: Uint8Array) => void,
    /** True once the database is closed. */
    private readonly closed: () => boolean,
  ) {}

  /**
   * Creates an item at `path` (`/type/repo/item`, or `/type/repo` for a random key) with
   * `schema`. Validates every field first; nothing is written when any check fails.
   */
  create(
    path: string,
    schema: string | Schema,
    data: Record<string, unknown>,
  ): Item {
    const p = parsePath(path);
    const repo = this.repos.repository(p.repoPath);
    const s = this.schemas.resolve(schema);
    const key = p.item ?? randomItemKey(this.random);
    const existing = repo.items.entry(key);
    const itemPath = `${p.repoPath}/${key}`;
    if (existing) {
      const v = repo.items.valueOf(existing);
      if (v?.unreadable !== undefined) {
        throw new TypeError(
          `Cannot create ${itemPath}: it exists and cannot be written here: ${v.unreadable}`,
        );
      }
      if (v && !v.deleted) {
        throw new Error(`Cannot create ${itemPath}: it already exists`);
      }
    }
    const checked = checkNewItem(itemPath, s, data);
    const e = repo.items.ensureEntry(key);
    repo.writeLocal(e, OpenRepository.stateFor(s, checked));
    return itemHandle(repo, e);
  }

  /** The item at `path`, or undefined when absent (its repository must be open). */
  item(path: string): Item | undefined {
    // Fast path: an open repository and a known key need no validation.
    if (typeof path === "string" && !this.closed()) {
      const slash = path.lastIndexOf("/");
      const repo = this.repos.get(path.slice(0, slash) as RepoPath);
      const e = repo?.items.entry(path.slice(slash + 1));
      if (repo && e && e.path === path) {
        return repo.items.valueOf(e) === undefined
          ? undefined
          : itemHandle(repo, e);
      }
    }
    const p = parsePath(path);
    if (p.item === undefined) {
      throw new TypeError(
        `Invalid item path "${path}": expected "/type/repo/item"`,
      );
    }
    const repo = this.repos.repository(p.repoPath);
    const e = repo.items.entry(p.item);
    if (!e || repo.items.valueOf(e) === undefined) return undefined;
    return itemHandle(repo, e);
  }

  /**
   * The stored data of the item at `path` in raw form with its schema id, or undefined
   * when absent; also for items this replica cannot read (see `Item.raw`).
   */
  rawItem(path: string): RawItem | undefined {
    return this.item(path)?.raw();
  }

  /** The commit history of an item, oldest first. */
  history(path: string): CommitInfo[] {
    const p = parsePath(path);
    if (p.item === undefined) {
      throw new TypeError(`Invalid item path "${path}"`);
    }
    return this.repos.repository(p.repoPath).history(p.item);
  }
}
