/**
 * HTTP errors: one class carrying a status and a stable code, and the single mapping from
 * thrown errors to JSON responses `{ code, message }` used by `app.onError`.
 *
 * @module
 */

import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** An error with an HTTP status and a stable machine-readable code. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. `retry-after`). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Maps any thrown error to a JSON response. */
export function errorResponse(err: unknown, c: Context): Response {
  if (err instanceof HttpError) {
    return c.json(
      { code: err.code, message: err.message },
      err.status,
      err.headers ? { ...err.headers } : undefined,
    );
  }
  if (
    err instanceof TypeError || err instanceof SyntaxError ||
    err instanceof RangeError
  ) {
    return c.json({ code: "bad_request", message: err.message }, 400);
  }
  console.error("capra server:", err);
  return c.json({ code: "internal", message: "Internal server error" }, 500);
}
