/**
 * Member-to-member requests over NATS (request/reply, no stream): who is there
 * (`members`), which repositories a member holds (`list`) and sync rounds (`sync`, the
 * ordinary sync messages). Requests are signed with the cluster's shared root key like
 * a signed HTTP request (method `NATS`, path = subject), so only a member can ask a
 * member for history beyond the stream's window. Messages never exceed the connection's
 * `max_payload`: a sync answer that would is cut (`more` asks for another pass), a sync
 * request is split into commit-only messages followed by the one that reconciles.
 *
 * @module
 */

import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { SigningKey } from "../../lib/crypto/keys.ts";
import {
  decodeSyncMessage,
  encodeSyncMessage,
  type SyncMessage,
} from "../../lib/sync/protocol.ts";
import {
  SIGNED_HEADERS,
  type SignedFields,
  signRequest,
} from "../../lib/sync/request_signing.ts";

/** Method name in the signed bytes of a member request. */
export const PEER_METHOD = "NATS";
/** Header of an error reply: JSON `{ code, message }`. */
export const PEER_ERROR_HEADER = "capra-error";
/** Room left in a message for subject, headers and framing. */
export const PEER_PAYLOAD_HEADROOM = 8 * 1024;
/** How long a member waits for another's sync answer. */
export const PEER_SYNC_TIMEOUT_MS = 30_000;
/** Longest time `members` replies are collected. */
export const MEMBERS_WAIT_MS = 1000;
/** `members` replies are collected until none came for this long. */
export const MEMBERS_STALL_MS = 200;
/** Repositories per `list` answer. */
export const LIST_PAGE = 1000;

/** What a member says about itself. */
export interface MemberInfo {
  readonly id: string;
  /** Random per process: two processes with one id are a misconfiguration. */
  readonly instance: string;
  readonly ready: boolean;
  /** Last stream sequence applied by it. */
  readonly applied: number;
}

/** Checks a `members` reply. */
export function parseMemberInfo(bytes: Uint8Array): MemberInfo {
  const v = JSON.parse(new TextDecoder().decode(bytes));
  if (
    typeof v?.id !== "string" || typeof v.instance !== "string" ||
    typeof v.ready !== "boolean" || !Number.isSafeInteger(v.applied)
  ) {
    throw new SyntaxError(
      "Invalid member info: expected { id, instance, ready, applied }",
    );
  }
  return { id: v.id, instance: v.instance, ready: v.ready, applied: v.applied };
}

/** Signs a member request with the root key into NATS headers. */
export async function signedHeaders(
  root: SigningKey,
  rootRecord: Uint8Array,
  subject: string,
  body: Uint8Array,
): Promise<MsgHdrs> {
  const fields: SignedFields = await signRequest(
    root,
    rootRecord,
    PEER_METHOD,
    subject,
    body,
  );
  const h = headers();
  for (const name of Object.values(SIGNED_HEADERS)) h.set(name, fields[name]);
  return h;
}

/** An error reply's headers. */
export function errorHeaders(code: string, message: string): MsgHdrs {
  const h = headers();
  h.set(PEER_ERROR_HEADER, JSON.stringify({ code, message }));
  return h;
}

/**
 * Re-encodes a sync answer to fit `limit` bytes by leaving commits out (and asking for
 * another pass with `more`); throws a RangeError when even one commit does not fit.
 */
export function fitAnswer(encoded: Uint8Array, limit: number): Uint8Array {
  if (encoded.length <= limit) return encoded;
  const m = decodeSyncMessage(encoded);
  const commits = m.commits ?? [];
  let keep = commits.length;
  let out = encoded;
  while (out.length > limit) {
    if (keep <= 1) {
      throw new RangeError(
        keep === 1
          ? `A commit of ${m.repo} (${
            commits[0].length
          } bytes) is larger than the NATS max_payload allows (${limit} bytes): raise max_payload in the nats-server configuration`
          : `A sync answer for ${m.repo} does not fit the NATS max_payload (${limit} bytes) even without commits`,
      );
    }
    // Shrink proportionally (at least by one), so a few re-encodings suffice.
    keep = Math.max(
      1,
      Math.min(keep - 1, Math.floor(keep * limit / out.length)),
    );
    out = encodeSyncMessage({
      ...m,
      commits: commits.slice(0, keep),
      more: true,
    });
  }
  return out;
}

/**
 * Splits a sync request too large for `limit` into messages that fit: the commits in
 * commit-only messages first (each stored by the receiver as it arrives), then the
 * message that carries the reconciliation.
 */
export function splitRequest(encoded: Uint8Array, limit: number): Uint8Array[] {
  if (encoded.length <= limit) return [encoded];
  const m = decodeSyncMessage(encoded);
  const commits = [...(m.commits ?? [])];
  const base: SyncMessage = { ...m, commits: [] };
  const baseBytes = encodeSyncMessage(base).length;
  const out: Uint8Array[] = [];
  let chunk: Uint8Array[] = [];
  let size = baseBytes;
  const flush = (last: boolean) => {
    const msg: SyncMessage = last ? { ...m, commits: chunk } : {
      repo: m.repo,
      commits: chunk,
      ...(m.sessions ? { sessions: m.sessions } : {}),
      ...(m.pruned ? { pruned: m.pruned } : {}),
    };
    out.push(encodeSyncMessage(msg));
    chunk = [];
    size = baseBytes;
  };
  for (const c of commits) {
    if (c.length + baseBytes + 16 > limit) {
      throw new RangeError(
        `A commit of ${m.repo} (${c.length} bytes) is larger than the NATS max_payload allows (${limit} bytes): raise max_payload in the nats-server configuration`,
      );
    }
    if (size + c.length + 16 > limit) flush(false);
    chunk.push(c);
    size += c.length + 16;
  }
  flush(true);
  return out;
}
