/**
 * `GET /metrics`: Prometheus text of the server's counters and gauges. app.ts serves it
 * behind a bearer token, or on a separate metrics app meant for a private address.
 *
 * @module
 */

import type { Context } from "hono";
import { createHash, timingSafeEqual } from "node:crypto";
import type { ServerContext } from "../context.ts";

function memoryGauges(): { heapUsedBytes?: number; rssBytes?: number } {
  try {
    const m = Deno.memoryUsage();
    return { heapUsedBytes: m.heapUsed, rssBytes: m.rss };
  } catch {
    return {};
  }
}

/** True when `header` is `Bearer <token>` (compared in constant time). */
export function bearerMatches(
  header: string | undefined,
  token: string,
): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  const a = createHash("sha256").update(header.slice(7)).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The handler rendering the metrics of `ctx`. */
export function metricsHandler(ctx: ServerContext): (c: Context) => Response {
  return (c) =>
    c.text(
      ctx.metrics.render({
        connectedClients: ctx.secured?.hub.connected ?? 0,
        openRepositories: ctx.db.openRepositoryCount,
        ...memoryGauges(),
      }),
      200,
      { "content-type": "text/plain; version=0.0.4" },
    );
}
