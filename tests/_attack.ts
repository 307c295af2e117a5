/**
 * Helpers of the attack tests (issue 11): raw session requests built independently of
 * lib/sync (so a test also checks the wire format), crafted signed commits, and small
 * utilities. Everything here also loads on the code before issue 11, so each attack test
 * can be run against it and seen to fail there.
 */

import { sha256 } from "../lib/crypto/sha256.ts";
import { generateSigningKey, type SigningKey } from "../lib/crypto/keys.ts";
import { encodeBase64Url } from "../lib/encoding/base64url.ts";
import {
  buildCommit,
  type Commit,
  type CommitId,
  commitIdBytes,
} from "../lib/commit/commit.ts";
import { RecordKind } from "../testing.ts";
import type { TestServer } from "./_sync_server.ts";

const utf8 = new TextEncoder();
const b64 = (b: Uint8Array) => encodeBase64Url(b);

/** A fresh key pair. */
export async function freshKey(): Promise<SigningKey> {
  return (await generateSigningKey()).key;
}

/** Options of {@link sessionRequest}. */
export interface SessionRequestOptions {
  /** `Authorization` header value. */
  readonly authorization?: string;
  /** The public key the body names (default: the signer's). */
  readonly publicKey?: Uint8Array;
  /** Sign over this Authorization value instead (a tampering test). */
  readonly signedAuthorization?: string;
  readonly now?: number;
  /** Leave the proof of possession out (the pre-issue-11 request). */
  readonly unsigned?: boolean;
}

/**
 * A `POST /v1/sessions` request as the README specifies it: JSON `{ publicKey }` signed
 * by the key over `capra-session-request-v1`, the body hash, the hash of the
 * Authorization header, the time and a nonce.
 */
export async function sessionRequest(
  signer: SigningKey,
  options: SessionRequestOptions = {},
): Promise<RequestInit> {
  const body = utf8.encode(
    JSON.stringify({ publicKey: b64(options.publicKey ?? signer.publicKey) }),
  );
  const headers: Record<string, string> = {
    "content-type": "application/json",
    ...(options.authorization ? { authorization: options.authorization } : {}),
  };
  if (!options.unsigned) {
    const time = options.now ?? Date.now();
    const nonce = b64(crypto.getRandomValues(new Uint8Array(16)));
    const auth = options.signedAuthorization ?? options.authorization ?? "";
    const signed = utf8.encode(
      `capra-session-request-v1\nPOST\n/v1/sessions\n${b64(sha256(body))}\n${
        b64(sha256(utf8.encode(auth)))
      }\n${time}\n${nonce}`,
    );
    headers["capra-time"] = String(time);
    headers["capra-nonce"] = nonce;
    headers["capra-signature"] = b64(await signer.sign(signed));
  }
  return { method: "POST", headers, body: body as Uint8Array<ArrayBuffer> };
}

/** Posts a session request to an in-process server (optionally from `address`). */
export async function issueRaw(
  server: TestServer,
  init: RequestInit,
  address?: string,
): Promise<Response> {
  return await server.app.request(
    "/v1/sessions",
    init,
    address ? { remoteAddr: { hostname: address, port: 1 } } : undefined,
  );
}

/** The stored form of a crafted commit, signed by `signer`. */
export async function signedRecord(
  signer: SigningKey,
  commit: Commit,
): Promise<Uint8Array> {
  const sig = await signer.sign(commitIdBytes(commit.id));
  const out = new Uint8Array(65 + commit.bytes.length);
  out[0] = RecordKind.Commit;
  out.set(sig, 1);
  out.set(commit.bytes, 65);
  return out;
}

/** A full-snapshot commit of `key` by `signer` naming `parents`. */
export function craftCommit(
  signer: SigningKey,
  key: string,
  parents: readonly CommitId[],
  ts: number,
): Commit {
  return buildCommit({
    key: key as never,
    parents,
    session: signer.sessionId,
    ts,
    schema: "all/1",
    body: { kind: "full", data: { n: 1 }, deleted: false },
  });
}

/** `n` random commit ids. */
export function randomIds(n: number): CommitId[] {
  const out: CommitId[] = [];
  for (let i = 0; i < n; i++) {
    out.push(b64(crypto.getRandomValues(new Uint8Array(32))) as CommitId);
  }
  return out;
}

/** The status and JSON error code of a response (body consumed). */
export async function statusOf(
  res: Response,
): Promise<{ status: number; code?: string }> {
  const text = await res.text();
  try {
    return { status: res.status, code: JSON.parse(text).code };
  } catch {
    return { status: res.status };
  }
}
