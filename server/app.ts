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

  return app;
}
