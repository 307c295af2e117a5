/**
 * What the `capra user` commands do, in two ways: on the data directory itself when no
 * server holds it (the database opened with the root key, so its `/sys` writes are the
 * root's, as a server's are), or through the running server's `/v1/admin` routes,
 * signed by the root key, when `capra serve` holds the directory (found through its
 * serving file).
 *
 * @module
 */

import { DirectoryLockedError, FileStorage, openDatabase } from "../../mod.ts";
import { encodeSessionRecord } from "../../testing.ts";
import type { SigningKey } from "../../lib/crypto/keys.ts";
import { signRequest } from "../../lib/sync/request_signing.ts";
import { RootSessionTrust } from "../../lib/sync/root_trust.ts";
import { join } from "node:path";
import { DEFAULT_LIMITS } from "../limits/limits.ts";
import { SESSIONS_REPO, SessionService } from "../sessions.ts";
import { USERS_FILE } from "../users.ts";
import type { CreatedInvite } from "../users/invites.ts";
import { UserStore, type UserSummary } from "../users/user_store.ts";
import { UserService } from "../users/user_service.ts";
import { readServingFile } from "./serving_file.ts";
import { markOfflineWrites } from "../cluster/offline_writes.ts";
import {
  DEVICES_REPO,
  INVITES_REPO,
  MEMBERS_REPO,
  type UserRole,
  USERS_REPO,
} from "../users/records.ts";
import type { RepoPath } from "../../lib/path.ts";

/** The repositories the user system writes. */
const USER_SYSTEM_REPOS = [
  USERS_REPO,
  INVITES_REPO,
  DEVICES_REPO,
  MEMBERS_REPO,
  SESSIONS_REPO,
] as RepoPath[];

/** Users and pending invites, as `capra user list` shows them. */
export interface UserListing {
  readonly users: (UserSummary & { devices: number })[];
  readonly invites: { name: string; role: UserRole; expiresAt?: number }[];
}

/** The operations of `capra user`. */
export interface UserAdmin {
  /** Where the work happens: the directory, or the server's URL. */
  readonly via: string;
  /** The server's public URL, when a running server told it. */
  readonly publicUrl?: string;
  invite(name: string, role: UserRole): Promise<CreatedInvite>;
  list(): Promise<UserListing>;
  remove(name: string): Promise<boolean>;
  addToken(name: string): Promise<string>;
  close(): Promise<void>;
}

/** Opens the admin of `dir`: directly, or through the server holding it. */
export async function openUserAdmin(
  dir: string,
  root: SigningKey,
): Promise<UserAdmin> {
  let storage;
  try {
    storage = await FileStorage.open(dir);
  } catch (e) {
    if (!(e instanceof DirectoryLockedError)) throw e;
    const serving = await readServingFile(dir);
    if (!serving) {
      throw new Error(
        `${e.message}; no running server announced an address (${dir}/capra-serving.json): stop the process holding it and retry`,
      );
    }
    return remoteAdmin(serving.url, root, serving.publicUrl);
  }
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({ storage, signer: root, trust });
  const sessions = new SessionService(db, root, trust);
  const service = new UserService(db, sessions, DEFAULT_LIMITS, {
    legacyUsersFile: join(dir, USERS_FILE),
    scryptLog2N: 10, // the CLI hashes no password
  }, Date.now);
  await service.ready();
  return {
    via: dir,
    invite: async (name, role) => {
      if (await service.users.taken(name)) {
        throw new Error(`the user name "${name}" is taken`);
      }
      return await service.invites.create(name, role, service.inviteTtlMs);
    },
    list: async () => {
      const users = [];
      for (const u of await service.users.list()) {
        users.push({
          ...UserStore.summary(u),
          devices: (await service.devices.list(u.name)).length,
        });
      }
      return { users, invites: await service.invites.pending() };
    },
    remove: (name) => service.removeUser(name),
    addToken: (name) => service.users.addToken(name),
    close: async () => {
      await db.flush();
      await db.close();
      // A stopped cluster member publishes these /sys writes when it starts again.
      await markOfflineWrites(dir, USER_SYSTEM_REPOS);
    },
  };
}

function remoteAdmin(
  base: string,
  root: SigningKey,
  publicUrl: string | undefined,
): UserAdmin {
  const record = encodeSessionRecord({
    id: root.sessionId,
    publicKey: root.publicKey,
  });
  const call = async (method: string, path: string, json?: unknown) => {
    const body = json === undefined
      ? new Uint8Array(0)
      : new TextEncoder().encode(JSON.stringify(json));
    const headers = await signRequest(root, record, method, path, body);
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { ...headers, "content-type": "application/json" },
        ...(body.length ? { body: body as Uint8Array<ArrayBuffer> } : {}),
      });
    } catch (e) {
      throw new Error(
        `the server holding the directory does not answer at ${base}: ${
          (e as Error).message
        }`,
      );
    }
    const j = await res.json().catch(() => null);
    return { status: res.status, json: j };
  };
  const ok = (r: { status: number; json: { message?: string } | null }) => {
    if (r.status >= 300) {
      throw new Error(r.json?.message ?? `the server answered ${r.status}`);
    }
    return r.json as never;
  };
  return {
    via: base,
    ...(publicUrl ? { publicUrl } : {}),
    invite: async (name, role) =>
      ok(await call("POST", "/v1/admin/invites", { name, role })),
    list: async () => ok(await call("GET", "/v1/admin/users")),
    remove: async (name) => {
      const r = await call("DELETE", `/v1/admin/users/${name}`);
      if (r.status === 404) return false;
      ok(r);
      return true;
    },
    addToken: async (name) =>
      (ok(await call("POST", `/v1/admin/users/${name}/tokens`)) as {
        token: string;
      }).token,
    close: () => Promise.resolve(),
  };
}
