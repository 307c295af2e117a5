/**
 * Proof of possession for session issuance. A replica asks for a session with
 * `POST /v1/sessions` and a JSON body `{ publicKey, ... }`; the request is signed by the
 * private key of that very public key, over the body's hash, the hash of its
 * `Authorization` header (the credentials that bind the session to a user), a time and
 * a random nonce. So only the holder of a key obtains (or renews) its session, nobody
 * can move a key to another user by replaying or rewriting someone else's request, and
 * a captured request is useless after `MAX_REQUEST_SKEW_MS` (request_signing.ts) or once its nonce was
 * seen.
 *
 * The body may carry more than the key (a sign-in proof, later): whatever it holds is
 * covered by the signature, so a user binding made from it is bound to the key too.
 *
 * @module
 */

import { sha256 } from "../crypto/sha256.ts";
import {
  PUBLIC_KEY_BYTES,
  sessionIdOf,
  type SigningKey,
  verifySignature,
} from "../crypto/keys.ts";
import { decodeBase64Url, encodeBase64Url } from "../encoding/base64url.ts";
import {
  checkTime,
  NONCE_BYTES,
  type NonceCache,
  RequestAuthError,
  SIGNED_HEADERS,
} from "./request_signing.ts";

/** Path of session issuance. */
export const SESSIONS_PATH = "/v1/sessions";

/** Fields of a signed session request, sent as headers. */
export type SessionRequestFields = Record<
  | typeof SIGNED_HEADERS.time
  | typeof SIGNED_HEADERS.nonce
  | typeof SIGNED_HEADERS.signature
  | typeof SIGNED_HEADERS.bodyHash,
  string
>;

const utf8 = new TextEncoder();

/** The bytes the key signs to ask for its session. */
export function sessionRequestSignedBytes(
  body: Uint8Array,
  authorization: string | null | undefined,
  time: number,
  nonce: string,
): Uint8Array {
  const bodyHash = encodeBase64Url(sha256(body));
  const authHash = encodeBase64Url(sha256(utf8.encode(authorization ?? "")));
  return utf8.encode(
    `capra-session-request-v1\nPOST\n${SESSIONS_PATH}\n${bodyHash}\n${authHash}\n${time}\n${nonce}`,
  );
}

/**
 * Builds a signed session request for `signer`'s key: the JSON body (the public key and
 * any `extra` fields) and the headers proving possession of the private key.
 *
 * @example
 * ```ts ignore
 * const { body, headers } = await signSessionRequest(key, { authorization: "Bearer t" });
 * await fetch(`${url}/v1/sessions`, { method: "POST", headers, body });
 * ```
 */
export async function signSessionRequest(
  signer: Pick<SigningKey, "sign" | "publicKey">,
  options: {
    readonly authorization?: string;
    readonly extra?: Readonly<Record<string, unknown>>;
    readonly now?: number;
  } = {},
): Promise<{ body: Uint8Array; headers: Record<string, string> }> {
  const body = utf8.encode(JSON.stringify({
    ...options.extra,
    publicKey: encodeBase64Url(signer.publicKey),
  }));
  const nonceBytes = new Uint8Array(NONCE_BYTES);
  crypto.getRandomValues(nonceBytes);
  const nonce = encodeBase64Url(nonceBytes);
  const time = options.now ?? Date.now();
  const sig = await signer.sign(
    sessionRequestSignedBytes(body, options.authorization, time, nonce),
  );
  const fields: SessionRequestFields = {
    [SIGNED_HEADERS.time]: String(time),
    [SIGNED_HEADERS.nonce]: nonce,
    [SIGNED_HEADERS.signature]: encodeBase64Url(sig),
    [SIGNED_HEADERS.bodyHash]: encodeBase64Url(sha256(body)),
  };
  return {
    body,
    headers: {
      "content-type": "application/json",
      ...(options.authorization
        ? { authorization: options.authorization }
        : {}),
      ...fields,
    },
  };
}

/** A verified session request: the key that signed it and its parsed body. */
export interface VerifiedSessionRequest {
  readonly publicKey: Uint8Array;
  readonly body: Readonly<Record<string, unknown>>;
}

function fail(code: string, message: string): never {
  throw new RequestAuthError(401, code, message);
}

/**
 * Checks a session request: a JSON object with a 32-byte base64url `publicKey`, signed
 * by that key over the body, the `Authorization` header, a time within
 * `MAX_REQUEST_SKEW_MS` (request_signing.ts) and a nonce not seen before. Throws a `SyntaxError` for a
 * malformed body and {@link RequestAuthError} (401) when the proof is missing or wrong.
 */
export async function verifySessionRequest(
  get: (name: string) => string | null | undefined,
  body: Uint8Array,
  nonces: NonceCache,
  now: number,
): Promise<VerifiedSessionRequest> {
  let parsed: Record<string, unknown>;
  let publicKey: Uint8Array;
  try {
    const j = JSON.parse(new TextDecoder().decode(body));
    if (j === null || typeof j !== "object" || Array.isArray(j)) {
      throw new Error();
    }
    parsed = j;
    publicKey = decodeBase64Url(String(parsed.publicKey));
  } catch {
    throw new SyntaxError(
      'Expected a JSON body { "publicKey": base64url of 32 bytes }',
    );
  }
  if (publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new SyntaxError(
      `publicKey must be ${PUBLIC_KEY_BYTES} bytes (Ed25519), got ${publicKey.length}`,
    );
  }
  const timeText = get(SIGNED_HEADERS.time);
  const nonce = get(SIGNED_HEADERS.nonce);
  const sigText = get(SIGNED_HEADERS.signature);
  if (!timeText || !nonce || !sigText) {
    fail(
      "unsigned",
      `A session request must be signed by the key it registers: headers ${SIGNED_HEADERS.time}, ${SIGNED_HEADERS.nonce} and ${SIGNED_HEADERS.signature} are required`,
    );
  }
  const time = checkTime(timeText, now);
  let sig: Uint8Array;
  try {
    sig = decodeBase64Url(sigText);
    if (decodeBase64Url(nonce).length !== NONCE_BYTES) throw new Error();
  } catch {
    fail("bad_signature", "Malformed nonce or signature field");
  }
  const ok = await verifySignature(
    publicKey,
    sig,
    sessionRequestSignedBytes(body, get("authorization"), time, nonce),
  );
  if (!ok) {
    fail(
      "bad_signature",
      "Session request is not signed by the private key of its publicKey",
    );
  }
  if (!nonces.remember(`issue:${sessionIdOf(publicKey)}`, nonce, time, now)) {
    fail("replayed_request", `Nonce ${nonce} was already used`);
  }
  return { publicKey, body: parsed };
}
