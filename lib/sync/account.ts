/**
 * The client side of a server's user system, for apps built on Capra (Deno or browser):
 * what the server allows ({@link authConfig}), passkey options ({@link passkeyOptions};
 * the browser's WebAuthn call is the app's, e.g. `@simplewebauthn/browser`), and, once a
 * {@link ServerSession} is signed in, an {@link Account}: the user, their devices,
 * signing out here or everywhere, and the members of shared repositories. Signing in
 * itself is `ServerSession.create(db, url, { signIn })`: the credentials travel in the
 * session request, signed by the device's key.
 *
 * @example
 * ```ts ignore
 * const session = await ServerSession.create(db, url, {
 *   signIn: { method: "password", name: "alice", password: "correct horse" },
 *   device: "Alice's laptop",
 * });
 * const account = new Account(session);
 * console.log(await account.devices());
 * ```
 *
 * @module
 */

import { encodeBase64Url } from "../encoding/base64url.ts";
import type { FetchLike } from "./http_transport.ts";
import type { ServerSession } from "./server_session.ts";
import { SyncError } from "./sync_round.ts";

/** How a server signs users up and in (`GET /v1/auth/config`). */
export interface AuthConfig {
  /** "open": anyone may sign up; "invite": invite links only; "closed": operators. */
  readonly signUp: "open" | "invite" | "closed";
  readonly methods: readonly ("passkey" | "password")[];
  /** Anonymous sessions are issued too. */
  readonly anonymous: boolean;
  readonly minPasswordLength: number;
}

/** One of the user's devices. */
export interface Device {
  /** Session id of the device's key (revoke it with {@link Account.revokeDevice}). */
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly lastSeen: number;
  /** True for the device asking. */
  readonly current: boolean;
}

/** The owner and members of a shared repository. */
export interface Membership {
  readonly repo: string;
  readonly owner: string;
  readonly members: readonly string[];
}

/** What `GET /v1/auth/me` says. */
export interface Me {
  readonly session: string;
  readonly expiresAt?: number;
  readonly user: {
    readonly name: string;
    readonly role: "user" | "admin";
    readonly password: boolean;
    readonly passkeys: number;
  } | null;
  readonly device: { readonly name: string; readonly createdAt: number } | null;
}

async function answer<T>(res: Response, what: string): Promise<T> {
  const j = await res.json().catch(() => null);
  if (!res.ok) {
    throw new SyncError(
      String(j?.code ?? `http_${res.status}`),
      `${what}: ${j?.message ?? res.status}`,
      typeof j?.code === "string" ? j.code : undefined,
    );
  }
  return j as T;
}

const defaultFetch: FetchLike = (url, init) => fetch(url, init);

/** How `baseUrl` signs users up and in. */
export async function authConfig(
  baseUrl: string,
  fetchFn: FetchLike = defaultFetch,
): Promise<AuthConfig> {
  const base = baseUrl.replace(/\/$/, "");
  return await answer(
    await fetchFn(`${base}/v1/auth/config`, { method: "GET" }),
    "auth config",
  );
}

/**
 * WebAuthn options for signing up (`purpose: "sign-up"`, with the new `name` or an
 * `invite`) or in (`"sign-in"`), bound to the device key `publicKey` that will send the
 * session request. Pass `options` to the browser (`startRegistration({ optionsJSON })`
 * or `startAuthentication({ optionsJSON })`), then `challengeId` and the answer as
 * `signIn`.
 */
export async function passkeyOptions(
  baseUrl: string,
  request: {
    readonly purpose: "sign-up" | "sign-in";
    readonly publicKey: Uint8Array;
    readonly name?: string;
    readonly invite?: string;
  },
  fetchFn: FetchLike = defaultFetch,
): Promise<{ challengeId: string; options: Record<string, unknown> }> {
  const base = baseUrl.replace(/\/$/, "");
  return await answer(
    await fetchFn(`${base}/v1/auth/passkey/options`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        purpose: request.purpose,
        publicKey: encodeBase64Url(request.publicKey),
        ...(request.name !== undefined ? { name: request.name } : {}),
        ...(request.invite !== undefined ? { invite: request.invite } : {}),
      }),
    }),
    "passkey options",
  );
}

/** What an invite link grants (`GET /v1/auth/invites/:token`). */
export async function inviteInfo(
  baseUrl: string,
  token: string,
  fetchFn: FetchLike = defaultFetch,
): Promise<{ name: string; role: "user" | "admin" }> {
  const base = baseUrl.replace(/\/$/, "");
  return await answer(
    await fetchFn(`${base}/v1/auth/invites/${encodeURIComponent(token)}`, {
      method: "GET",
    }),
    "invite",
  );
}

/** The signed-in user's account, through signed requests of `session`. */
export class Account {
  constructor(readonly session: ServerSession) {}

  async #call<T>(method: string, path: string, json?: unknown): Promise<T> {
    const body = json === undefined
      ? new Uint8Array(0)
      : new TextEncoder().encode(JSON.stringify(json));
    const send = async () => {
      const fields = await this.session.sign(method, path, body);
      const fetchFn = this.session.fetch;
      return await fetchFn(`${this.session.baseUrl}${path}`, {
        method,
        headers: {
          ...fields,
          ...(json === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body.length ? { body: body as Uint8Array<ArrayBuffer> } : {}),
      });
    };
    let res = await send();
    if (res.status === 401) {
      const j = await res.clone().json().catch(() => null);
      if (j?.code === "session_expired") {
        await this.session.renew();
        res = await send();
      }
    }
    return await answer<T>(res, `${method} ${path}`);
  }

  /** The user, this device and the session. */
  me(): Promise<Me> {
    return this.#call("GET", "/v1/auth/me");
  }

  /** The user's devices (an admin may name another user). */
  async devices(user?: string): Promise<Device[]> {
    const q = user === undefined ? "" : `?user=${encodeURIComponent(user)}`;
    return (await this.#call<{ devices: Device[] }>(
      "GET",
      `/v1/auth/devices${q}`,
    )).devices;
  }

  /** Revokes one device: it loses access at its next request, for good. */
  async revokeDevice(id: string): Promise<void> {
    await this.#call("DELETE", `/v1/auth/devices/${encodeURIComponent(id)}`);
  }

  /**
   * Signs out this device (its key is revoked: the app then needs a new key), or every
   * device of the user with `everywhere`, or (admins) every device of `user`.
   */
  async signOut(
    options: { everywhere?: boolean; user?: string } = {},
  ): Promise<number> {
    return (await this.#call<{ signedOut: number }>(
      "POST",
      "/v1/auth/sign-out",
      options,
    )).signedOut;
  }

  /** Sets the user's password. */
  async setPassword(password: string): Promise<void> {
    await this.#call("POST", "/v1/auth/password", { password });
  }

  /** Shared repositories the user owns or belongs to. */
  async sharedRepositories(): Promise<Membership[]> {
    return (await this.#call<{ repos: Membership[] }>("GET", "/v1/members"))
      .repos;
  }

  /** Claims a shared repository (`/list/<id>`): the user becomes its owner. */
  claim(repo: string): Promise<Membership> {
    return this.#call("PUT", `/v1/members${repo}`);
  }

  /** Owner and members of a shared repository. */
  members(repo: string): Promise<Membership> {
    return this.#call("GET", `/v1/members${repo}`);
  }

  /** Adds a member by user name (owners only). */
  addMember(repo: string, name: string): Promise<Membership> {
    return this.#call("POST", `/v1/members${repo}`, { add: name });
  }

  /** Removes a member by user name (owners; members may remove themselves). */
  removeMember(repo: string, name: string): Promise<Membership> {
    return this.#call("POST", `/v1/members${repo}`, { remove: name });
  }
}
