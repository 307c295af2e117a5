/**
 * Bounded request body reading: a hard cap (413), a share of the global in-flight byte
 * budget (503 when exhausted), a read timeout (408), and, for signed requests, the
 * SHA-256 of the streamed bytes checked against the signed hash (401) before the body is
 * used.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { HttpError } from "./errors.ts";
import type { BudgetLease } from "./limits/byte_budget.ts";

/** How a body is read. */
export interface BodyOptions {
  /** Largest body accepted. */
  readonly max: number;
  /** The request's share of the in-flight byte budget. */
  readonly lease?: BudgetLease;
  /** The whole body must arrive within this time. */
  readonly timeoutMs?: number;
  /** The body must hash (base64url SHA-256) to this. */
  readonly expectHash?: string;
}

function tooLarge(max: number): HttpError {
  return new HttpError(413, "too_large", `Body exceeds ${max} bytes`);
}

function busy(): HttpError {
  return new HttpError(
    503,
    "server_busy",
    "Too many request bytes in flight; retry shortly",
    { "retry-after": "1" },
  );
}

/** Reads a request body under `options`; never buffers more than `max` bytes. */
export async function readBody(
  req: Request,
  options: BodyOptions,
): Promise<Uint8Array> {
  const { max, lease } = options;
  const declaredText = req.headers.get("content-length");
  const declared = declaredText === null ? -1 : Number(declaredText);
  if (declared > max) throw tooLarge(max);
  const upfront = declared >= 0;
  if (upfront && lease && !lease.tryReserve(declared)) throw busy();
  const hash = options.expectHash !== undefined ? createHash("sha256") : null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = options.timeoutMs === undefined
      ? null
      : new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.timeoutMs);
      });
    try {
      for (;;) {
        const next = timedOut
          ? await Promise.race([reader.read(), timedOut])
          : await reader.read();
        if (next === "timeout") {
          throw new HttpError(
            408,
            "body_timeout",
            `The body did not arrive within ${options.timeoutMs} ms`,
          );
        }
        if (next.done) break;
        const chunk = next.value;
        size += chunk.length;
        if (size > max || (upfront && size > declared)) throw tooLarge(max);
        if (!upfront && lease && !lease.tryReserve(chunk.length)) throw busy();
        hash?.update(chunk);
        chunks.push(chunk);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
  if (hash && hash.digest("base64url") !== options.expectHash) {
    throw new HttpError(
      401,
      "bad_signature",
      "The body does not match its signed hash",
    );
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
