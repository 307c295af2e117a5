/**
 * Operator routes (`/v1/admin/*`): signed by the root key (what `capra user …` uses
 * while a server holds the data directory) or by an admin user's session.
 *
 * - `GET /v1/admin/users`: users (name, role, credentials present), pending invites;
 * - `POST /v1/admin/invites` `{ name, role? }`: a one-time sign-up link's token;
 * - `DELETE /v1/admin/users/:name`: remove a user (sessions revoked, name retired);
 * - `POST /v1/admin/users/:name/tokens`: a bearer token for `name` (created if needed).
 *
 * @module
 */

import type { Hono } from "hono";
import { HttpError } from "../errors.ts";
import type { ServerContext } from "../context.ts";
import { checkUserName, type UserRole } from "../users/records.ts";
import { UserStore } from "../users/user_store.ts";
import {
  onlyKeys,
  requireAdmin,
  signedCall,
  stringField,
  userSystem,
} from "./auth_common.ts";

function nameParam(v: string): string {
  try {
    return checkUserName(v);
  } catch (e) {
    throw new HttpError(400, "bad_request", (e as Error).message);
  }
}

/** Mounts `/v1/admin/*`. */
export function mountAdminRoutes(app: Hono, ctx: ServerContext): void {
  app.get("/v1/admin/users", async (c) => {
    const { users } = userSystem(ctx);
    await requireAdmin(await signedCall(c, ctx), users);
    const list = await users.users.list();
    const out = [];
    for (const u of list) {
      out.push({
        ...UserStore.summary(u),
        role: (await users.isAdmin(u.name)) ? "admin" : "user",
        devices: (await users.devices.list(u.name)).length,
      });
    }
    return c.json({ users: out, invites: await users.invites.pending() });
  });

  app.post("/v1/admin/invites", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    await requireAdmin(call, users);
    onlyKeys(call.body, ["name", "role"]);
    const name = nameParam(stringField(call.body, "name", 64));
    const role = call.body.role ?? "user";
    if (role !== "user" && role !== "admin") {
      throw new HttpError(
        400,
        "bad_request",
        `role must be "user" or "admin", got ${JSON.stringify(role)}`,
      );
    }
    if (await users.users.taken(name)) {
      throw new HttpError(
        409,
        "name_taken",
        `The user name "${name}" is taken`,
      );
    }
    const invite = await users.invites.create(
      name,
      role as UserRole,
      users.inviteTtlMs,
    );
    return c.json(invite, 201);
  });

  app.delete("/v1/admin/users/:name", async (c) => {
    const { users } = userSystem(ctx);
    await requireAdmin(await signedCall(c, ctx), users);
    const name = nameParam(c.req.param("name"));
    if (!await users.removeUser(name)) {
      throw new HttpError(404, "no_such_user", `No user "${name}"`);
    }
    return c.json({ name, removed: true });
  });

  app.post("/v1/admin/users/:name/tokens", async (c) => {
    const { users } = userSystem(ctx);
    await requireAdmin(await signedCall(c, ctx), users);
    const name = nameParam(c.req.param("name"));
    const token = await users.users.addToken(name);
    return c.json({ name, token }, 201);
  });
}
