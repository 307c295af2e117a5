/**
 * The user's side of the user system (`/v1/auth/*`); signing in itself is a session
 * request (`POST /v1/sessions` with `signIn`, see server/users/sign_in.ts).
 *
 * - `GET /v1/auth/config`: how to sign up and in here (public);
 * - `POST /v1/auth/passkey/options`: WebAuthn options for a sign-up or a sign-in,
 *   bound to the asking device's key (public, rate-limited per address);
 * - `GET /v1/auth/invites/:token`: what an invite grants (public);
 * - `GET /v1/auth/me`: the signed-in user and this device (signed);
 * - `GET /v1/auth/devices[?user=NAME]`: the devices of the user (admins: of NAME);
 * - `DELETE /v1/auth/devices/:id`: revoke one (own devices; admins: any);
 * - `POST /v1/auth/sign-out` `{ everywhere?, user? }`: this device, every device of the
 *   user, or (admins) every device of `user`;
 * - `POST /v1/auth/password` `{ password }`: set the signed-in user's password.
 *
 * @module
 */

import type { Hono } from "hono";
import { decodeBase64Url } from "../../lib/encoding/base64url.ts";
import { PUBLIC_KEY_BYTES, sessionIdOf } from "../../lib/crypto/keys.ts";
import { clientAddress, type ServerContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { tooMany } from "../quotas.ts";
import { checkNewPassword } from "../users/passwords.ts";
import { checkUserName } from "../users/records.ts";
import {
  MAX_AUTH_BODY_BYTES,
  onlyKeys,
  requireAdmin,
  signedCall,
  stringField,
  userOf,
  userSystem,
} from "./auth_common.ts";
import { readBody } from "../body.ts";

async function unsignedJson(
  req: Request,
  ctx: ServerContext,
): Promise<Record<string, unknown>> {
  const lease = ctx.budget.lease();
  let bytes: Uint8Array;
  try {
    bytes = await readBody(req, {
      max: Math.min(MAX_AUTH_BODY_BYTES, ctx.limits.preAuthBodyBytes),
      lease,
      timeoutMs: ctx.limits.bodyTimeoutMs,
    });
  } finally {
    lease.release();
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpError(400, "bad_request", "The body must be JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new HttpError(400, "bad_request", "The body must be a JSON object");
  }
  return v as Record<string, unknown>;
}

/** Mounts `/v1/auth/*`. */
export function mountAuthRoutes(app: Hono, ctx: ServerContext): void {
  app.get("/v1/auth/config", (c) => {
    const { s, users } = userSystem(ctx);
    return c.json({
      signUp: users.signUp,
      methods: ["passkey", "password"],
      anonymous: s.anonymousSessions,
      minPasswordLength: 8,
    });
  });

  app.post("/v1/auth/passkey/options", async (c) => {
    const { users } = userSystem(ctx);
    const address = clientAddress(c);
    const wait = users.optionsPerAddress.take(address);
    if (wait > 0) {
      throw tooMany(
        "too_many_attempts",
        `Too many passkey requests from ${address}`,
        wait,
      );
    }
    const body = await unsignedJson(c.req.raw, ctx);
    onlyKeys(body, ["purpose", "publicKey", "name", "invite"]);
    let key: Uint8Array;
    try {
      key = decodeBase64Url(stringField(body, "publicKey", 64));
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(400, "bad_request", "publicKey must be base64url");
    }
    if (key.length !== PUBLIC_KEY_BYTES) {
      throw new HttpError(
        400,
        "bad_request",
        `publicKey must be ${PUBLIC_KEY_BYTES} bytes (Ed25519), got ${key.length}`,
      );
    }
    const device = sessionIdOf(key);
    const rp = users.relyingParty(c.req.raw);
    if (body.purpose === "sign-in") {
      return c.json(await users.passkeys.authenticationOptions(rp, device));
    }
    if (body.purpose !== "sign-up") {
      throw new HttpError(
        400,
        "bad_request",
        `purpose must be "sign-up" or "sign-in", got ${
          JSON.stringify(body.purpose)
        }`,
      );
    }
    let name: string;
    if (body.invite !== undefined) {
      name = (await users.invites.peek(body.invite)).name;
    } else {
      try {
        name = checkUserName(body.name);
      } catch (e) {
        throw new HttpError(400, "bad_request", (e as Error).message);
      }
    }
    return c.json(await users.passkeys.registrationOptions(rp, device, name));
  });

  app.get("/v1/auth/invites/:token", async (c) => {
    const { users } = userSystem(ctx);
    const grant = await users.invites.peek(c.req.param("token"));
    return c.json(grant);
  });

  app.get("/v1/auth/me", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    const name = call.session.userId;
    const user = name === undefined ? undefined : await users.users.get(name);
    const device = await users.devices.get(call.session.id);
    return c.json({
      session: call.session.id,
      expiresAt: call.session.expiresAt,
      user: user
        ? {
          name: user.name,
          role: (await users.isAdmin(user.name)) ? "admin" : "user",
          password: user.password !== undefined,
          passkeys: user.passkeys.size,
        }
        : null,
      device: device
        ? { name: device.name, createdAt: device.createdAt }
        : null,
    });
  });

  app.get("/v1/auth/devices", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    const asked = c.req.query("user");
    let user: string;
    if (asked !== undefined && asked !== call.session.userId) {
      await requireAdmin(call, users);
      try {
        user = checkUserName(asked);
      } catch (e) {
        throw new HttpError(400, "bad_request", (e as Error).message);
      }
    } else user = userOf(call);
    const devices = await users.devices.list(user);
    return c.json({
      user,
      devices: devices.map((d) => ({
        id: d.id,
        name: d.name,
        createdAt: d.createdAt,
        lastSeen: d.lastSeen,
        current: d.id === call.session.id,
      })),
    });
  });

  app.delete("/v1/auth/devices/:id", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    const id = c.req.param("id");
    const device = await users.devices.get(id);
    if (!device || device.revoked) {
      throw new HttpError(404, "not_found", `No device ${id}`);
    }
    if (device.user !== call.session.userId) {
      await requireAdmin(call, users);
    }
    await users.revokeDevice(device.id);
    return c.json({ id: device.id, revoked: true });
  });

  app.post("/v1/auth/sign-out", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    onlyKeys(call.body, ["everywhere", "user"]);
    const everywhere = call.body.everywhere;
    if (everywhere !== undefined && typeof everywhere !== "boolean") {
      throw new HttpError(400, "bad_request", '"everywhere" must be a boolean');
    }
    if (call.body.user !== undefined) {
      const user = stringField(call.body, "user", 64);
      if (user !== call.session.userId) await requireAdmin(call, users);
      if (!await users.users.get(user)) {
        throw new HttpError(404, "no_such_user", `No user "${user}"`);
      }
      const n = await users.signOutEverywhere(user);
      return c.json({ user, signedOut: n });
    }
    const user = userOf(call);
    if (everywhere) {
      return c.json({ user, signedOut: await users.signOutEverywhere(user) });
    }
    await users.revokeDevice(call.session.id);
    return c.json({ user, signedOut: 1 });
  });

  app.post("/v1/auth/password", async (c) => {
    const { users } = userSystem(ctx);
    const call = await signedCall(c, ctx);
    onlyKeys(call.body, ["password"]);
    const user = userOf(call);
    let password: string;
    try {
      password = checkNewPassword(call.body.password);
    } catch (e) {
      throw new HttpError(400, "bad_request", (e as Error).message);
    }
    await users.users.setPassword(user, await users.hasher.hash(password));
    return c.json({ user, password: true });
  });
}
