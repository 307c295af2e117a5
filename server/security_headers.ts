/**
 * Security headers on every response: a Content-Security-Policy the web app passes
 * (its scripts, styles, sockets and workers come from this origin only, workers also
 * from Blob URLs the client makes; no inline code, no framing), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (older browsers'
 * `frame-ancestors`), `Referrer-Policy: no-referrer` and
 * `Cross-Origin-Opener-Policy: same-origin`.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";

/** The Content-Security-Policy of every response. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  // The offline shell (/sw.js) and the client's signing workers (started from a
  // Blob URL of the client's own code).
  "worker-src 'self' blob:",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The headers added to every response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze(
  {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
  },
);

/** Hono middleware adding {@link SECURITY_HEADERS} (errors and 404s included). */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) {
      try {
        c.res.headers.set(k, v);
      } catch {
        // Immutable headers (a WebSocket upgrade response): nothing to protect there.
      }
    }
  };
}
