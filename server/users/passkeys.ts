/**
 * Passkeys (WebAuthn) through `@simplewebauthn/server`. A ceremony has two requests: the
 * options (`POST /v1/auth/passkey/options`, with the device's public key), then the
 * session request that carries the authenticator's answer. The challenge is valid for
 * {@link CHALLENGE_TTL_MS}, used once, and bound to the device key that asked for it: an
 * answer travels only inside a session request signed by that same key, so a captured
 * answer cannot sign in another device.
 *
 * The challenge id is the challenge itself, sealed (signed) with the root key, which
 * every member of a cluster shares: the answer may reach another server than the one
 * that gave the options (a load balancer without sticky sessions), and that server
 * checks the seal instead of a memory it does not have. Each server remembers the
 * challenges taken there until they expire; across servers, "once" rests on the
 * device-key binding above and the authenticator's signature counter.
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
import { type SigningKey, verifySignature } from "../../lib/crypto/keys.ts";
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
  /** Sealed challenges taken here, until they expire: used once. */
  readonly #taken = new Map<string, number>();

  /**
   * `seal`: the key challenge ids are signed with (the root key, shared by a cluster's
   * members); without it, challenges live in this process only.
   */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly seal?: SigningKey,
  ) {}

  #remember(id: string, c: PendingChallenge): void {
    bounded(this.#pending, this.now(), (v) => v.expiresAt);
    this.#pending.set(id, c);
  }

  async #newId(c: PendingChallenge): Promise<string> {
    if (!this.seal) {
      return encodeBase64Url(crypto.getRandomValues(new Uint8Array(16)));
    }
    const payload = new TextEncoder().encode(JSON.stringify(c));
    const sig = await this.seal.sign(sealedBytes(payload));
    return `${encodeBase64Url(payload)}.${encodeBase64Url(sig)}`;
  }

  /** The challenge sealed in `id`, or undefined when the seal does not verify. */
  async #unseal(id: string): Promise<PendingChallenge | undefined> {
    if (!this.seal || id.length > MAX_CHALLENGE_ID_CHARS) return undefined;
    const dot = id.indexOf(".");
    if (dot < 0) return undefined;
    let payload, sig;
    try {
      payload = decodeBase64Url(id.slice(0, dot));
      sig = decodeBase64Url(id.slice(dot + 1));
    } catch {
      return undefined;
    }
    const ok = await verifySignature(
      this.seal.publicKey,
      sig,
      sealedBytes(payload),
    );
    if (!ok) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(payload)) as PendingChallenge;
    } catch {
      return undefined;
    }
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
    const c: PendingChallenge = {
      challenge: options.challenge,
      purpose: "sign-up",
      device,
      rp,
      expiresAt: this.now() + CHALLENGE_TTL_MS,
      webauthnId: encodeBase64Url(userId),
      name,
    };
    const challengeId = await this.#newId(c);
    this.#remember(challengeId, c);
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
    const c: PendingChallenge = {
      challenge: options.challenge,
      purpose: "sign-in",
      device,
      rp,
      expiresAt: this.now() + CHALLENGE_TTL_MS,
    };
    const challengeId = await this.#newId(c);
    this.#remember(challengeId, c);
    return { challengeId, options };
  }

  /**
   * Takes (once) the challenge `id` for `purpose` asked by `device`, given here or, when
   * sealed, by another server of the cluster; 401 otherwise.
   */
  async take(
    id: unknown,
    purpose: ChallengePurpose,
    device: string,
  ): Promise<PendingChallenge> {
    let c: PendingChallenge | undefined;
    if (typeof id === "string" && !this.#taken.has(id)) {
      c = this.#pending.get(id);
      if (c) this.#pending.delete(id);
      else c = await this.#unseal(id);
      if (c && this.seal) {
        bounded(this.#taken, this.now(), (expiresAt) => expiresAt);
        this.#taken.set(id, c.expiresAt);
      }
    }
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

/** Longest challenge id read (a sealed one is about 500 characters). */
const MAX_CHALLENGE_ID_CHARS = 4096;

/** What a challenge seal signs: a context string, then the challenge's JSON. */
function sealedBytes(payload: Uint8Array): Uint8Array {
  const context = new TextEncoder().encode("capra passkey challenge\n");
  const out = new Uint8Array(context.length + payload.length);
  out.set(context);
  out.set(payload, context.length);
  return out;
}

/**
 * Drops expired entries (oldest first) and, at {@link MAX_PENDING_CHALLENGES}, the
 * oldest ones, so the map never grows without bound.
 */
function bounded<V>(
  map: Map<string, V>,
  now: number,
  expiresAt: (v: V) => number,
): void {
  for (const [k, v] of map) {
    if (expiresAt(v) > now && map.size < MAX_PENDING_CHALLENGES) break;
    map.delete(k);
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
