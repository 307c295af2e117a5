/**
 * The Hono application as a function of its dependencies. Routes are tested in-process
 * with `app.request()`; only server/main.ts binds a socket.
 *
 * @module
 */

import { Hono } from "hono";
import type { Database } from "../mod.ts";
import { errorResponse, HttpError } from "./errors.ts";
import { itemJson } from "./json_view.ts";
import { answerSyncBytes } from "../lib/sync/sync_round.ts";
import { MAX_SYNC_MESSAGE_BYTES } from "../lib/sync/protocol.ts";

/** What the app needs. */
export interface AppDeps {
  readonly db: Database;
  /** Version string reported by /healthz. */
  readonly version?: string;
}

/** Builds the HTTP application. */
export function createApp(deps: AppDeps): Hono {
  const { db } = deps;
  const app = new Hono();
  app.onError(errorResponse);
  app.notFound((c) =>
    c.json({
      code: "not_found",
      message: `No route ${c.req.method} ${c.req.path}`,
    }, 404)
  );

  app.get(
    "/healthz",
    (c) =>
      c.json({
        status: "ok",
        version: deps.version ?? "dev",
        session: db.sessionId,
      }),
  );

  app.get("/v1/repos/:type/:repo", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}`;
    const repo = await db.open(path);
    const keys = repo.keys().sort();
    return c.json({ repo: path, count: keys.length, keys });
  });

  app.get("/v1/items/:type/:repo/:item", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}/${
      c.req.param("item")
    }`;
    const item = await db.load(path);
    if (!item) {
      throw new HttpError(404, "not_found", `Item ${path} does not exist`);
    }
    return c.json(itemJson(item));
  });

  app.post("/v1/sync/:type/:repo", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}`;
    const length = Number(c.req.header("content-length") ?? 0);
    if (length > MAX_SYNC_MESSAGE_BYTES) {
      throw new HttpError(
        413,
        "too_large",
        `Sync message exceeds ${MAX_SYNC_MESSAGE_BYTES} bytes`,
      );
    }
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length > MAX_SYNC_MESSAGE_BYTES) {
      throw new HttpError(
        413,
        "too_large",
        `Sync message exceeds ${MAX_SYNC_MESSAGE_BYTES} bytes`,
      );
    }
    const answer = await answerSyncBytes(async (repo) => {
      if (repo !== path) {
        throw new HttpError(
          400,
          "bad_request",
          `Message for ${repo} posted to ${path}`,
        );
      }
      return await db.open(repo);
    }, body);
    return c.body(answer as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
    });
  });

  return app;
}
