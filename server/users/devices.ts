/**
 * Devices: session keys bound to a user at sign-in, as items of `/sys/devices` keyed like
 * their sessions. A device has a name (sent by the client at sign-in), the time it was
 * created and last seen, and a `revoked` flag set when it signs out or is revoked (its
 * session is revoked with it: final). "Last seen" is kept in memory at every
 * authenticated request and written at most once per {@link DEVICE_SEEN_WRITE_MS}.
 *
 * @module
 */

import type { Database, Item } from "../../mod.ts";
import type { SessionId } from "../../lib/crypto/keys.ts";
import { sessionItemKey } from "../sessions.ts";
import { DEVICES_REPO, SYS_DEVICE_SCHEMA } from "./records.ts";

/** Longest device name kept (longer ones are cut). */
export const MAX_DEVICE_NAME_LENGTH = 64;
/** "Last seen" is written to the device's record at most this often. */
export const DEVICE_SEEN_WRITE_MS = 5 * 60_000;

/** A device as its user (or an admin) sees it. */
export interface DeviceView {
  /** The session id of the device's key (what `DELETE /v1/auth/devices/:id` takes). */
  readonly id: string;
  readonly user: string;
  readonly name: string;
  readonly createdAt: number;
  readonly lastSeen: number;
  readonly revoked: boolean;
}

/** A printable device name of at most {@link MAX_DEVICE_NAME_LENGTH} characters. */
export function cleanDeviceName(v: unknown): string {
  if (typeof v !== "string") return "";
  // deno-lint-ignore no-control-regex
  const s = v.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return s.slice(0, MAX_DEVICE_NAME_LENGTH);
}

function viewOf(item: Item): DeviceView {
  return {
    id: String(item.get("session")),
    user: String(item.get("user")),
    name: String(item.get("name") ?? ""),
    createdAt: Number(item.get("createdAt") ?? 0),
    lastSeen: Number(item.get("lastSeen") ?? 0),
    revoked: item.get("revoked") === true,
  };
}

/** The devices of every user. */
export class DeviceStore {
  #ready: Promise<void> | undefined;
  /** user → item keys of their devices. */
  readonly #byUser = new Map<string, Set<string>>();
  /** session id → last time seen (not yet written). */
  readonly #seen = new Map<string, number>();
  readonly #written = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens `/sys/devices`, indexes it and follows its changes. */
  ready(): Promise<void> {
    return this.#ready ??= (async () => {
      const repo = await this.db.open(DEVICES_REPO);
      for (const key of repo.keys()) this.#reindex(key);
      repo.onChange((change) => this.#reindex(change.key));
    })();
  }

  #reindex(key: string): void {
    for (const keys of this.#byUser.values()) keys.delete(key);
    const item = this.#item(key);
    if (!item) return;
    const user = String(item.get("user"));
    let keys = this.#byUser.get(user);
    if (!keys) this.#byUser.set(user, keys = new Set());
    keys.add(key);
  }

  #item(key: string): Item | undefined {
    const item = this.db.item(`${DEVICES_REPO}/${key}`);
    return item && !item.isDeleted ? item : undefined;
  }

  #view(item: Item): DeviceView {
    const v = viewOf(item);
    const seen = this.#seen.get(v.id);
    return seen !== undefined && seen > v.lastSeen
      ? { ...v, lastSeen: seen }
      : v;
  }

  /** Records a device at sign-in (or renewal): its user, name and the time. */
  async record(id: SessionId, user: string, name: string): Promise<void> {
    await this.ready();
    const key = sessionItemKey(id);
    const now = this.now();
    const item = this.#item(key);
    if (item) {
      if (name && item.get("name") !== name) item.set("name", name);
      item.set("lastSeen", now);
    } else {
      this.db.create(`${DEVICES_REPO}/${key}`, SYS_DEVICE_SCHEMA, {
        user,
        session: id,
        name,
        createdAt: now,
        lastSeen: now,
      });
    }
    this.#written.set(id, now);
    await this.db.flush();
  }

  /** The device of a session, if that session's key was bound at sign-in. */
  async get(id: string): Promise<DeviceView | undefined> {
    await this.ready();
    let key: string;
    try {
      key = sessionItemKey(id as SessionId);
    } catch {
      return undefined; // not a session id
    }
    const item = this.#item(key);
    return item ? this.#view(item) : undefined;
  }

  /** The devices of `user`, most recently seen first (revoked ones when asked). */
  async list(user: string, withRevoked = false): Promise<DeviceView[]> {
    await this.ready();
    const out: DeviceView[] = [];
    for (const key of this.#byUser.get(user) ?? []) {
      const item = this.#item(key);
      if (!item) continue;
      const v = this.#view(item);
      if (v.user === user && (withRevoked || !v.revoked)) out.push(v);
    }
    return out.sort((a, b) =>
      b.lastSeen - a.lastSeen || (a.id < b.id ? -1 : 1)
    );
  }

  /** Notes that a device made an authenticated request now (cheap; written rarely). */
  seen(id: string): void {
    const now = this.now();
    this.#seen.set(id, now);
    const written = this.#written.get(id) ?? -Infinity;
    if (now - written < DEVICE_SEEN_WRITE_MS) return;
    this.#written.set(id, now);
    this.#persistSeen(id, now).catch((e) =>
      console.error("capra server: device last seen:", e)
    );
  }

  async #persistSeen(id: string, at: number): Promise<void> {
    await this.ready();
    let key: string;
    try {
      key = sessionItemKey(id as SessionId);
    } catch {
      return;
    }
    const item = this.#item(key);
    if (!item || Number(item.get("lastSeen") ?? 0) >= at) return;
    item.set("lastSeen", at);
  }

  /** Marks a device revoked (its session is revoked by the caller). */
  async markRevoked(id: string): Promise<void> {
    await this.ready();
    const item = this.#item(sessionItemKey(id as SessionId));
    if (item && item.get("revoked") !== true) {
      item.set("revoked", true);
      await this.db.flush();
    }
  }
}
