/**
 * The read-only JSON views `GET /v1/repos/:type/:repo` and
 * `GET /v1/items/:type/:repo/:item`. On a secured server they need a signed session (the
 * signed-request headers over the GET, empty body) or a bearer user, and obey the read
 * rules per repository and per item; unsigned requests are served only where the policy
 * says a repository is public (401 elsewhere). Items this server cannot decode are
 * listed and marked, never an error for the whole view.
 *
 * @module
 */

import type { Hono } from "hono";
import type { SessionRecord } from "../../lib/core/session.ts";
import type { SessionId } from "../../lib/crypto/keys.ts";
import { parsePath, type RepoPath, repoPathOf } from "../../lib/path.ts";
import { callerOf } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { itemJson, repoEntries, undecodedJson } from "../json_view.ts";

/** The reader of an embedded server without a root key (no sessions exist there). */
const LOCAL_READER: SessionRecord = Object.freeze({
  id: "local" as SessionId,
  publicKey: new Uint8Array(32),
});

/** Mounts the JSON views. */
export function mountViewRoutes(app: Hono, ctx: ServerContext): void {
  const { db, rules } = ctx;

  /** The reader of a request; throws 401/403 unless it may read `repo` (and `item`). */
  const readerFor = async (
    req: Request,
    path: string,
    repo: RepoPath,
    item?: string,
  ): Promise<SessionRecord> => {
    const s = ctx.secured;
    const caller = s
      ? await callerOf(
        req,
        path,
        s.trust,
        ctx.nonces,
        ctx.now(),
        s.authenticate,
      )
      : { kind: "local" as const, session: LOCAL_READER };
    const reader = caller.session;
    if (caller.kind === "anonymous" && !rules.isPublic(repo)) {
      ctx.metrics.requestsRefused++;
      throw new HttpError(
        401,
        "unsigned",
        `${repo} is not public: sign the request with a session or send Authorization: Bearer <token>`,
      );
    }
    if (
      !rules.allows(repo, undefined, reader, "read") ||
      (item !== undefined && !rules.allows(repo, item, reader, "read"))
    ) {
      ctx.metrics.requestsRefused++;
      throw new HttpError(
        403,
        "forbidden",
        `Reading ${
          item === undefined ? repo : `${repo}/${item}`
        } is not allowed`,
      );
    }
    return reader;
  };

  app.get("/v1/repos/:type/:repo", async (c) => {
    const path = repoPathOf(`/${c.req.param("type")}/${c.req.param("repo")}`);
    const reader = await readerFor(c.req.raw, c.req.path, path);
    const repo = await db.open(path);
    const perItem = rules.perItem(repo.path);
    const entries = repoEntries(
      repo,
      (k) => !perItem || rules.allows(repo.path, k, reader, "read"),
    );
    const undecodable = entries.filter((e) => e.undecodable).map((e) => ({
      key: e.key,
      ...e.undecodable,
    }));
    return c.json({
      repo: path,
      count: entries.length,
      keys: entries.map((e) => e.key),
      ...(undecodable.length ? { undecodable } : {}),
    });
  });

  app.get("/v1/items/:type/:repo/:item", async (c) => {
    const path = `/${c.req.param("type")}/${c.req.param("repo")}/${
      c.req.param("item")
    }`;
    const parsed = parsePath(path);
    await readerFor(c.req.raw, c.req.path, parsed.repoPath, parsed.item);
    let item;
    try {
      item = await db.load(path);
      if (item) return c.json(itemJson(item));
    } catch (e) {
      const repo = await db.open(parsed.repoPath);
      const view = undecodedJson(repo, parsed.item!, (e as Error).message);
      if (view) return c.json(view);
      throw e;
    }
    throw new HttpError(404, "not_found", `Item ${path} does not exist`);
  });
}
