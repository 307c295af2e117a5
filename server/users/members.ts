/**
 * Membership of shared repositories: `/sys/members/<sha256 of the path>` names a
 * repository's owner and its members. A shared repository (one whose rule says
 * `"members"`) gets its owner when a signed-in user claims it first
 * (`PUT /v1/members/:type/:repo`, what creating a shared list does); only the owner adds
 * and removes members, by user name. The rules ask {@link MembershipStore.isMember}
 * (owner included) on every read and write.
 *
 * @module
 */

import type { Database, Item } from "../../mod.ts";
import type { MembershipLookup } from "../../lib/sync/rules.ts";
import { HttpError } from "../errors.ts";
import { KeyedLock } from "../limits/keyed_lock.ts";
import { hashKey, MEMBERS_REPO, SYS_MEMBER_SCHEMA } from "./records.ts";

/** Most members of one repository. */
export const MAX_MEMBERS = 1000;

/** Who belongs to a shared repository. */
export interface Membership {
  readonly repo: string;
  readonly owner: string;
  /** Members other than the owner, sorted. */
  readonly members: readonly string[];
}

function membershipOf(item: Item): Membership {
  const m = item.get("members");
  return {
    repo: String(item.get("repo")),
    owner: String(item.get("owner")),
    members: m instanceof Set ? [...m].map(String).sort() : [],
  };
}

/** Owners and members of shared repositories, indexed in memory. */
export class MembershipStore implements MembershipLookup {
  #ready: Promise<void> | undefined;
  readonly #byRepo = new Map<string, Membership>();
  readonly #keyToRepo = new Map<string, string>();
  readonly #lock = new KeyedLock();

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens `/sys/members`, indexes it and follows its changes (once). */
  ready(): Promise<void> {
    return this.#ready ??= (async () => {
      const repo = await this.db.open(MEMBERS_REPO);
      for (const key of repo.keys()) this.#reindex(key);
      repo.onChange((change) => this.#reindex(change.key));
    })();
  }

  #reindex(key: string): void {
    const old = this.#keyToRepo.get(key);
    if (old !== undefined) this.#byRepo.delete(old);
    const item = this.db.item(`${MEMBERS_REPO}/${key}`);
    if (!item || item.isDeleted) return;
    const m = membershipOf(item);
    this.#keyToRepo.set(key, m.repo);
    this.#byRepo.set(m.repo, m);
  }

  /** True when `user` owns or is a member of `repo` (synchronous: rules ask it). */
  isMember(repo: string, user: string): boolean {
    const m = this.#byRepo.get(repo);
    return m !== undefined && (m.owner === user || m.members.includes(user));
  }

  /** The membership of `repo`, if it has an owner. */
  async get(repo: string): Promise<Membership | undefined> {
    await this.ready();
    return this.#byRepo.get(repo);
  }

  /** Shared repositories `user` owns or belongs to, by path. */
  async reposOf(user: string): Promise<Membership[]> {
    await this.ready();
    return [...this.#byRepo.values()]
      .filter((m) => m.owner === user || m.members.includes(user))
      .sort((a, b) => a.repo < b.repo ? -1 : 1);
  }

  /**
   * Makes `owner` the owner of `repo` unless it has one; returns the membership and
   * whether it was created. 409 `already_owned` when someone else owns it.
   */
  async claim(
    repo: string,
    owner: string,
  ): Promise<{ membership: Membership; created: boolean }> {
    await this.ready();
    return await this.#lock.run(repo, async () => {
      const existing = this.#byRepo.get(repo);
      if (existing) {
        if (existing.owner !== owner) {
          throw new HttpError(
            409,
            "already_owned",
            `${repo} already has an owner: ask them to add you`,
          );
        }
        return { membership: existing, created: false };
      }
      const key = hashKey(repo);
      this.db.create(`${MEMBERS_REPO}/${key}`, SYS_MEMBER_SCHEMA, {
        repo,
        owner,
        createdAt: this.now(),
      });
      await this.db.flush();
      this.#reindex(key);
      return { membership: this.#byRepo.get(repo)!, created: true };
    });
  }

  /** Adds or removes a member (the caller checked that the requester is the owner). */
  async change(
    repo: string,
    user: string,
    add: boolean,
  ): Promise<Membership> {
    await this.ready();
    return await this.#lock.run(repo, async () => {
      const key = hashKey(repo);
      const item = this.db.item(`${MEMBERS_REPO}/${key}`);
      if (!item || item.isDeleted) {
        throw new HttpError(404, "no_owner", `${repo} has no owner yet`);
      }
      const members = new Set(item.get("members") as Set<string> ?? []);
      if (add && members.size >= MAX_MEMBERS && !members.has(user)) {
        throw new HttpError(
          409,
          "too_many_members",
          `${repo} has ${MAX_MEMBERS} members: at most ${MAX_MEMBERS}`,
        );
      }
      if (add) members.add(user);
      else members.delete(user);
      item.set("members", members);
      await this.db.flush();
      this.#reindex(key);
      return this.#byRepo.get(repo)!;
    });
  }

  /** Drops `user` from every repository they were a member of (user removal). */
  async forget(user: string): Promise<void> {
    for (const m of await this.reposOf(user)) {
      if (m.members.includes(user)) await this.change(m.repo, user, false);
    }
  }
}
