/**
 * Members of shared repositories (signed requests of signed-in users):
 *
 * - `GET /v1/members`: the shared repositories the user owns or belongs to;
 * - `PUT /v1/members/:type/:repo`: claim a shared repository (the caller becomes its
 *   owner unless it has one: 201 created, 200 already the caller's, 409 otherwise);
 * - `GET /v1/members/:type/:repo`: its owner and members (for them and admins);
 * - `POST /v1/members/:type/:repo` `{ add: NAME }` or `{ remove: NAME }`: the owner (or
 *   an admin) changes members by user name; a member may remove themselves (leave).
 *
 * A shared repository is one whose rule gives access to `"members"` (the default policy:
 * `/list/*`); others answer 400 `not_shared`.
 *
 * @module
 */

import type { Hono } from "hono";
import { repoPathOf } from "../../lib/path.ts";
import { HttpError } from "../errors.ts";
import type { ServerContext } from "../context.ts";
import type { UserService } from "../users/user_service.ts";
import {
  onlyKeys,
  type SignedCall,
  signedCall,
  userOf,
  userSystem,
} from "./auth_common.ts";

function sharedRepo(ctx: ServerContext, type: string, repo: string) {
  let path;
  try {
    path = repoPathOf(`/${type}/${repo}`);
  } catch (e) {
    throw new HttpError(400, "bad_request", (e as Error).message);
  }
  if (!ctx.rules.isShared(path)) {
    throw new HttpError(
      400,
      "not_shared",
      `${path} is not a shared repository: no rule gives it "members" access`,
    );
  }
  return path;
}

async function mayManage(
  call: SignedCall,
  users: UserService,
  owner: string,
): Promise<boolean> {
  return call.isRoot || call.session.userId === owner ||
    await users.isAdmin(call.session.userId);
}

/** Mounts `/v1/members*`. */
export function mountMemberRoutes(app: Hono, ctx: ServerContext): void {
  app.get("/v1/members", async (c) => {
    const { users } = userSystem(ctx);
    const user = userOf(await signedCall(c, ctx));
    return c.json({ user, repos: await users.members.reposOf(user) });
  });

  app.put("/v1/members/:type/:repo", async (c) => {
    const { users } = userSystem(ctx);
    const path = sharedRepo(ctx, c.req.param("type"), c.req.param("repo"));
    const call = await signedCall(c, ctx);
    const user = userOf(call);
    const { membership, created } = await users.members.claim(path, user);
    return c.json(membership, created ? 201 : 200);
  });

  app.get("/v1/members/:type/:repo", async (c) => {
    const { users } = userSystem(ctx);
    const path = sharedRepo(ctx, c.req.param("type"), c.req.param("repo"));
    const call = await signedCall(c, ctx);
    const m = await users.members.get(path);
    const user = call.session.userId;
    if (
      !m ||
      !(users.members.isMember(path, user ?? "") ||
        await mayManage(call, users, m.owner))
    ) {
      // The same answer for "no owner" and "not yours": membership stays private.
      throw new HttpError(
        404,
        "not_found",
        `${path} has no owner, or you are not one of its members`,
      );
    }
    return c.json(m);
  });

  app.post("/v1/members/:type/:repo", async (c) => {
    const { users } = userSystem(ctx);
    const path = sharedRepo(ctx, c.req.param("type"), c.req.param("repo"));
    const call = await signedCall(c, ctx);
    onlyKeys(call.body, ["add", "remove"]);
    const { add, remove } = call.body;
    if ((add === undefined) === (remove === undefined)) {
      throw new HttpError(
        400,
        "bad_request",
        'Send exactly one of { "add": NAME } or { "remove": NAME }',
      );
    }
    const name = add ?? remove;
    if (typeof name !== "string" || !/^[a-z0-9_-]{1,64}$/.test(name)) {
      throw new HttpError(
        400,
        "bad_request",
        `A member is a user name (1-64 characters of [a-z0-9_-]), got ${
          JSON.stringify(name)
        }`,
      );
    }
    const m = await users.members.get(path);
    const leaving = remove !== undefined && name === call.session.userId &&
      m !== undefined && m.members.includes(name);
    if (!m || !(leaving || await mayManage(call, users, m.owner))) {
      throw new HttpError(
        403,
        "forbidden",
        `Only the owner of ${path} changes its members`,
      );
    }
    if (add !== undefined) {
      if (name === m.owner) {
        throw new HttpError(400, "bad_request", `${name} owns ${path}`);
      }
      if (!await users.users.get(name)) {
        throw new HttpError(404, "no_such_user", `No user "${name}"`);
      }
    }
    return c.json(await users.members.change(path, name, add !== undefined));
  });
}
