/**
 * Sign-in and sign-up, as the `authenticate` hook of session issuance: the credentials
 * travel in the body of the session request (`signIn`), which the device key signs, so
 * the session that comes out is bound to the user and to that key at once (proof of
 * possession of both). The forms of `signIn`:
 *
 * - `{ method: "password", name, password }`;
 * - `{ method: "passkey", challengeId, response }` (a discoverable passkey);
 * - `{ method: "sign-up", name?, invite?, password?, passkey?: { challengeId, response } }`:
 *   creates the user (with an invite its name and role come from the invite; without
 *   one only when the policy's `users.signUp` is `"open"`).
 *
 * Without `signIn`: a bearer token (`Authorization: Bearer`, from `capra user add`), or
 * the renewal of a device: a key bound to a user at sign-in renews its session with its
 * signature alone until it is revoked (so a device stays signed in across reconnects).
 *
 * Every failed sign-in answers 401 `bad_credentials`, the same for an unknown name, a
 * removed user, a wrong password or a passkey that does not verify; an unknown name
 * costs the same scrypt work as a known one. Attempts are rate-limited per address and
 * per name (429 `too_many_attempts`), known names or not.
 *
 * @module
 */

import { decodeBase64Url } from "../../lib/encoding/base64url.ts";
import { sessionIdOf } from "../../lib/crypto/keys.ts";
import { HttpError } from "../errors.ts";
import type { KeyedRateLimiter } from "../limits/token_bucket.ts";
import { tooMany } from "../quotas.ts";
import { tokenHash } from "../users.ts";
import type { DeviceStore } from "./devices.ts";
import type { InviteStore } from "./invites.ts";
import { badCredentials, type PasskeyCeremonies } from "./passkeys.ts";
import { checkNewPassword, type PasswordHasher } from "./passwords.ts";
import { checkUserName, type UserRole } from "./records.ts";
import type { UserStore } from "./user_store.ts";

/** Who may create an account: anyone, holders of an invite, or nobody (operators only). */
export type SignUpPolicy = "open" | "invite" | "closed";

/** What sign-in needs. */
export interface SignInDeps {
  readonly users: UserStore;
  readonly devices: DeviceStore;
  readonly invites: InviteStore;
  readonly passkeys: PasskeyCeremonies;
  readonly hasher: PasswordHasher;
  readonly signUp: SignUpPolicy;
  readonly perAddress: KeyedRateLimiter;
  readonly perName: KeyedRateLimiter;
}

type Json = Record<string, unknown>;

function field(o: Json, name: string, where = "signIn"): string {
  const v = o[name];
  if (typeof v !== "string" || v.length === 0 || v.length > 4096) {
    throw new HttpError(
      400,
      "bad_request",
      `${where}.${name} must be a non-empty string`,
    );
  }
  return v;
}

function checked<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      throw new HttpError(400, "bad_request", e.message);
    }
    throw e;
  }
}

/** Signs users in from session requests. */
export class SignIn {
  constructor(private readonly deps: SignInDeps) {}

  /** The `authenticate` hook: the user to bind the session to, or null (anonymous). */
  async authenticate(
    request: Request,
    body: Readonly<Json> | undefined,
    address: string,
  ): Promise<string | null> {
    const signIn = body?.signIn;
    if (signIn !== undefined) {
      if (
        signIn === null || typeof signIn !== "object" || Array.isArray(signIn)
      ) {
        throw new HttpError(
          400,
          "bad_request",
          'signIn must be an object { method: "password" | "passkey" | "sign-up", ... }',
        );
      }
      const device = sessionIdOf(decodeBase64Url(String(body!.publicKey)));
      return await this.#signIn(address, signIn as Json, device);
    }
    const header = request.headers.get("authorization");
    if (header) return await this.#bearer(header);
    if (body?.publicKey !== undefined) {
      // A device bound at sign-in renews with its key alone, until revoked.
      const id = sessionIdOf(decodeBase64Url(String(body.publicKey)));
      const d = await this.deps.devices.get(id);
      if (d && !d.revoked && await this.deps.users.get(d.user)) return d.user;
    }
    return null;
  }

  async #bearer(header: string): Promise<string> {
    const m = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header);
    if (!m) {
      throw new HttpError(401, "bad_token", "Expected Authorization: Bearer");
    }
    const name = await this.deps.users.byTokenHash(tokenHash(m[1]));
    if (!name) throw new HttpError(401, "bad_token", "Unknown bearer token");
    return name;
  }

  #limit(address: string, name?: string): void {
    const wait = this.deps.perAddress.take(address);
    if (wait > 0) {
      throw tooMany(
        "too_many_attempts",
        `Too many sign-in attempts from ${address}: wait and try again`,
        wait,
      );
    }
    if (name === undefined) return;
    // Charged for every name, existing or not, so the limit reveals nothing either.
    const w = this.deps.perName.take(name.toLowerCase().slice(0, 64));
    if (w > 0) {
      throw tooMany(
        "too_many_attempts",
        "Too many sign-in attempts for this name: wait and try again",
        w,
      );
    }
  }

  async #signIn(address: string, s: Json, device: string): Promise<string> {
    switch (s.method) {
      case "password": {
        const name = field(s, "name");
        const password = field(s, "password");
        this.#limit(address, name);
        return await this.#password(name, password);
      }
      case "passkey": {
        this.#limit(address);
        return await this.#passkey(s, device);
      }
      case "sign-up": {
        this.#limit(address);
        return await this.#signUp(s, device);
      }
      default:
        throw new HttpError(
          400,
          "bad_request",
          `signIn.method must be "password", "passkey" or "sign-up", got ${
            JSON.stringify(s.method)
          }`,
        );
    }
  }

  async #password(name: string, password: string): Promise<string> {
    const user = /^[a-z0-9_-]{1,64}$/.test(name)
      ? await this.deps.users.get(name)
      : undefined;
    // verify() does the full scrypt work even without a stored hash.
    const ok = await this.deps.hasher.verify(password, user?.password);
    if (!ok || !user) throw badCredentials();
    return user.name;
  }

  async #passkey(s: Json, device: string): Promise<string> {
    const c = await this.deps.passkeys.take(s.challengeId, "sign-in", device);
    const response = s.response as Json | undefined;
    const credentialId = typeof response?.id === "string" ? response.id : "";
    const name = await this.deps.users.byCredential(credentialId);
    const user = name ? await this.deps.users.get(name) : undefined;
    const stored = user?.passkeys.get(credentialId);
    const counter = await this.deps.passkeys.verifyAssertion(
      c,
      response,
      user && stored ? { id: credentialId, stored } : undefined,
    );
    if (counter !== stored!.counter) {
      await this.deps.users.updatePasskeyCounter(
        user!.name,
        credentialId,
        counter,
      );
    }
    return user!.name;
  }

  async #signUp(s: Json, device: string): Promise<string> {
    const invite = s.invite;
    const password = s.password === undefined
      ? undefined
      : checked(() => checkNewPassword(s.password));
    const passkeyAnswer = s.passkey as Json | undefined;
    if (password === undefined && passkeyAnswer === undefined) {
      throw new HttpError(
        400,
        "bad_request",
        "signIn of a sign-up needs a password or a passkey",
      );
    }
    if (
      passkeyAnswer !== undefined &&
      (passkeyAnswer === null || typeof passkeyAnswer !== "object")
    ) {
      throw new HttpError(
        400,
        "bad_request",
        "signIn.passkey must be { challengeId, response }",
      );
    }
    const create = async (name: string, role: UserRole) => {
      const hash = password === undefined
        ? undefined
        : await this.deps.hasher.hash(password);
      let passkey;
      if (passkeyAnswer) {
        const c = await this.deps.passkeys.take(
          passkeyAnswer.challengeId,
          "sign-up",
          device,
        );
        if (c.name !== name) {
          throw new HttpError(
            400,
            "bad_request",
            `The passkey was created for "${c.name}", not "${name}"`,
          );
        }
        passkey = await this.deps.passkeys.verifyRegistration(
          c,
          passkeyAnswer.response,
        );
      }
      const user = await this.deps.users.create({
        name,
        role,
        ...(hash !== undefined ? { password: hash } : {}),
        ...(passkey
          ? {
            passkey: { id: passkey.id, stored: passkey.stored },
            webauthnId: passkey.webauthnId,
          }
          : {}),
      });
      return user.name;
    };
    if (invite !== undefined) {
      return await this.deps.invites.use(invite, (grant) => {
        if (s.name !== undefined && s.name !== grant.name) {
          throw new HttpError(
            400,
            "bad_request",
            `This invite is for "${grant.name}", not ${JSON.stringify(s.name)}`,
          );
        }
        return create(grant.name, grant.role);
      });
    }
    if (this.deps.signUp !== "open") {
      throw new HttpError(
        403,
        "sign_up_closed",
        this.deps.signUp === "invite"
          ? "This server signs up invited users only: ask an operator for an invite link"
          : "This server does not sign up users: an operator creates them",
      );
    }
    const name = checked(() => checkUserName(s.name));
    return await create(name, "user");
  }
}
