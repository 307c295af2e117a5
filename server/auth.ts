/**
 * Request authentication helpers of the HTTP routes: bounded body reading and signed
 * request verification mapped to HTTP errors.
 *
 * @module
 */

import type { SessionRecord } from "../lib/core/session.ts";
import {
  type NonceCache,
  RequestAuthError,
  verifyRequest,
} from "../lib/sync/request_signing.ts";
import type { RootSessionTrust } from "../lib/sync/root_trust.ts";
import { HttpError } from "./errors.ts";

/** Reads a request body, refusing (413) more than `max` bytes without buffering them. */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > max) {
    throw new HttpError(413, "too_large", `Body exceeds ${max} bytes`);
  }
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > max) {
      throw new HttpError(413, "too_large", `Body exceeds ${max} bytes`);
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Verifies a signed request; 401 (or 429) with a clear code otherwise. */
export async function requireSession(
  req: Request,
  path: string,
  body: Uint8Array,
  trust: RootSessionTrust,
  nonces: NonceCache,
  now: number,
): Promise<SessionRecord> {
  try {
    return await verifyRequest(
      (name) => req.headers.get(name),
      req.method,
      path,
      body,
      trust,
      nonces,
      now,
    );
  } catch (e) {
    if (e instanceof RequestAuthError) {
      throw new HttpError(e.status, e.code, e.message);
    }
    throw e;
  }
}
