/**
 * Passkeys (WebAuthn) through `@simplewebauthn/server`. A ceremony has two requests: the
 * options (`POST /v1/auth/passkey/options`, with the device's public key), then the
 * session request that carries the authenticator's answer. The challenge is kept here
 * for {@link CHALLENGE_TTL_MS}, used once, and bound to the device key that asked for
 * it: an answer travels only inside a session request signed by that same key, so a
 * captured answer cannot sign in another device.
 *
 * Sign-in uses discoverable credentials (no user name is sent, no credential list is
 * returned): the options never depend on whether a name exists.
 *
 * The relying party: `rpId` and origin come from the server's public URL
 * (`--public-url`) when it has one, else from the request's own URL (its Host), and the
 * request's `Origin` header, when sent, must be that origin. Browsers allow WebAuthn
 * on `https://` origins and on `http://localhost`; IP addresses are not valid RP IDs.
 *
 * @module
 */

import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import {
  decodeBase64Url,
  encodeBase64Url,
} from "../../lib/encoding/base64url.ts";
import { HttpError } from "../errors.ts";
import type { StoredPasskey } from "./records.ts";

/** How long a passkey challenge may be answered. */
export const CHALLENGE_TTL_MS = 5 * 60_000;
/** Most challenges waiting for an answer (the oldest are dropped beyond). */
export const MAX_PENDING_CHALLENGES = 10_000;
/** Largest encoded authenticator answer accepted (fields of the session request). */
export const MAX_PASSKEY_RESPONSE_CHARS = 16 * 1024;

/** Who the passkeys are for. */
export interface RelyingParty {
  readonly rpId: string;
  readonly origin: string;
  readonly rpName: string;
}

/**
 * The relying party of a request: from `publicUrl` when given, else from the request
 * URL. Throws 400 `bad_origin` when the request's Origin header names another origin.
 */
export function relyingPartyOf(
  request: Request,
  publicUrl: string | undefined,
  rpName: string,
): RelyingParty {
  const base = new URL(publicUrl ?? request.url);
  const origin = base.origin;
  const sent = request.headers.get("origin");
  if (sent !== null && sent !== origin) {
    throw new HttpError(
      400,
      "bad_origin",
      `Passkeys of this server belong to ${origin}, not ${sent} (set --public-url behind a proxy)`,
    );
  }
  return { rpId: base.hostname, origin, rpName };
}

/** What a challenge is for. */
export type ChallengePurpose = "sign-up" | "sign-in";

interface PendingChallenge {
  readonly challenge: string;
  readonly purpose: ChallengePurpose;
  /** The session id of the device key that asked. */
  readonly device: string;
  readonly rp: RelyingParty;
  readonly expiresAt: number;
  /** Sign-up: the user handle given to the authenticator. */
  readonly webauthnId?: string;
  readonly name?: string;
}

/** A verified new passkey. */
export interface NewPasskey {
  readonly id: string;
  readonly stored: StoredPasskey;
  readonly webauthnId: string;
  readonly name: string;
}

/** A verified passkey assertion: which credential, and its new counter. */
export interface PasskeyAssertion {
  readonly credentialId: string;
  readonly userHandle?: string;
  readonly response: unknown;
  readonly challenge: PendingChallenge;
}

/** Challenges waiting for an answer, and the ceremonies around them. */
export class PasskeyCeremonies {
  readonly #pending = new Map<string, PendingChallenge>();

  constructor(private readonly now: () => number = Date.now) {}

  #remember(id: string, c: PendingChallenge): void {
    const now = this.now();
    for (const [k, v] of this.#pending) {
      if (v.expiresAt > now && this.#pending.size < MAX_PENDING_CHALLENGES) {
        break;
      }
      this.#pending.delete(k);
    }
    this.#pending.set(id, c);
  }

  /** Challenges waiting. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Options for creating a passkey for a new user `name` (sign-up). */
  async registrationOptions(
    rp: RelyingParty,
    device: string,
    name: string,
  ): Promise<{ challengeId: string; options: unknown }> {
    const userId = crypto.getRandomValues(new Uint8Array(16));
    const options = await generateRegistrationOptions({
      rpName: rp.rpName,
      rpID: rp.rpId,
      userName: name,
      userID: userId as Uint8Array<ArrayBuffer>,
      attestationType: "none",
      authenticatorSelection: {
        residentKey: "required",
        userVerification: "preferred",
      },
      timeout: CHALLENGE_TTL_MS,
    });
    const challengeId = encodeBase64Url(
      crypto.getRandomValues(new Uint8Array(16)),
    );
    this.#remember(challengeId, {
      challenge: options.challenge,
      purpose: "sign-up",
      device,
      rp,
      expiresAt: this.now() + CHALLENGE_TTL_MS,
      webauthnId: encodeBase64Url(userId),
      name,
    });
    return { challengeId, options };
  }

  /** Options for signing in with a discoverable passkey. */
  async authenticationOptions(
    rp: RelyingParty,
    device: string,
  ): Promise<{ challengeId: string; options: unknown }> {
    const options = await generateAuthenticationOptions({
      rpID: rp.rpId,
      userVerification: "preferred",
      timeout: CHALLENGE_TTL_MS,
    });
    const challengeId = encodeBase64Url(
      crypto.getRandomValues(new Uint8Array(16)),
    );
    this.#remember(challengeId, {
      challenge: options.challenge,
      purpose: "sign-in",
      device,
      rp,
      expiresAt: this.now() + CHALLENGE_TTL_MS,
    });
    return { challengeId, options };
  }

  /** Takes (once) the challenge `id` for `purpose` asked by `device`; 401 otherwise. */
  take(
    id: unknown,
    purpose: ChallengePurpose,
    device: string,
  ): PendingChallenge {
    const c = typeof id === "string" ? this.#pending.get(id) : undefined;
    if (c) this.#pending.delete(id as string);
    if (
      !c || c.purpose !== purpose || c.device !== device ||
      c.expiresAt <= this.now()
    ) {
      throw new HttpError(
        401,
        "bad_challenge",
        "The passkey challenge is unknown, expired, used, or was asked by another device: ask for new options",
      );
    }
    return c;
  }

  /** Verifies a registration answer to a sign-up challenge; 401 `bad_passkey` if wrong. */
  async verifyRegistration(
    c: PendingChallenge,
    response: unknown,
  ): Promise<NewPasskey> {
    checkResponseShape(response);
    let result;
    try {
      result = await verifyRegistrationResponse({
        response: response as never,
        expectedChallenge: c.challenge,
        expectedOrigin: c.rp.origin,
        expectedRPID: c.rp.rpId,
        requireUserVerification: false,
      });
    } catch (e) {
      throw new HttpError(
        401,
        "bad_passkey",
        `The new passkey does not verify: ${(e as Error).message}`,
      );
    }
    if (!result.verified || !result.registrationInfo) {
      throw new HttpError(
        401,
        "bad_passkey",
        "The new passkey does not verify",
      );
    }
    const cred = result.registrationInfo.credential;
    return {
      id: cred.id,
      webauthnId: c.webauthnId!,
      name: c.name!,
      stored: {
        publicKey: encodeBase64Url(cred.publicKey),
        counter: cred.counter,
        ...(cred.transports ? { transports: [...cred.transports] } : {}),
        createdAt: this.now(),
      },
    };
  }

  /**
   * Verifies a sign-in answer against the stored passkey (or, for an unknown credential,
   * spends about the same work on a throw-away key and fails); returns the new counter.
   * Throws 401 `bad_credentials`.
   */
  async verifyAssertion(
    c: PendingChallenge,
    response: unknown,
    passkey: { id: string; stored: StoredPasskey } | undefined,
  ): Promise<number> {
    checkResponseShape(response);
    const stored = passkey?.stored ?? UNKNOWN_PASSKEY;
    let result;
    try {
      result = await verifyAuthenticationResponse({
        response: response as never,
        expectedChallenge: c.challenge,
        expectedOrigin: c.rp.origin,
        expectedRPID: c.rp.rpId,
        credential: {
          id: passkey?.id ?? (response as { id: string }).id,
          publicKey: decodeBase64Url(stored.publicKey) as Uint8Array<
            ArrayBuffer
          >,
          counter: stored.counter,
        },
        requireUserVerification: false,
      });
    } catch {
      result = undefined;
    }
    if (!passkey || !result?.verified) throw badCredentials();
    return result.authenticationInfo.newCounter;
  }
}

/** The one error of every failed sign-in, whatever failed. */
export function badCredentials(): HttpError {
  return new HttpError(
    401,
    "bad_credentials",
    "Sign-in failed: unknown user, wrong password or passkey",
  );
}

/**
 * A COSE EC2 P-256 public key nobody holds the private half of: unknown credentials are
 * checked against it, so they cost about what a real check costs.
 */
const UNKNOWN_PASSKEY: StoredPasskey = {
  publicKey:
    "pQECAyYgASFYIE19KPasCDG3KokagWKAouZqaclFr-8Zm-0ZxvFIkKZYIlggi3tKGuoV_naMjC00MNpecO4UlmNKTc_4aAiiS0N703k",
  counter: 0,
  createdAt: 0,
};

function checkResponseShape(response: unknown): void {
  const r = response as Record<string, unknown> | null;
  if (
    r === null || typeof r !== "object" || Array.isArray(r) ||
    typeof r.id !== "string" || typeof r.response !== "object" ||
    r.response === null || JSON.stringify(r).length > MAX_PASSKEY_RESPONSE_CHARS
  ) {
    throw new HttpError(
      400,
      "bad_request",
      `signIn.response must be the JSON of a WebAuthn credential (startRegistration / startAuthentication), at most ${MAX_PASSKEY_RESPONSE_CHARS} characters`,
    );
  }
}
