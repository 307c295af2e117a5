/**
 * `capra user invite|list|remove|add DIR …`: the operator's side of the user system.
 * Works on a stopped data directory and, through the server's admin routes (signed by
 * the root key), on one a server holds.
 *
 * @module
 */

import { defaultRootKeyPath, loadOrCreateRootKey } from "../root_key.ts";
import {
  ExitCode,
  parseCommandArgs,
  requireDirectory,
  UsageError,
} from "./common.ts";
import { openUserAdmin } from "./user_admin.ts";
import { checkUserName } from "../users/records.ts";

/** Usage of `capra user`. */
export const USER_USAGE = `Usage:
  capra user invite DIR NAME [--admin] [--url URL]
      Prints a one-time sign-up link for a new user NAME (an admin with --admin). The
      link is URL/#invite=TOKEN: URL is --url, else the running server's public URL,
      else http://127.0.0.1:8787. It expires after 7 days (the policy's users.inviteTtl).
  capra user list DIR [--json]
      Users (role, password, passkeys, tokens, devices) and pending invites.
  capra user remove DIR NAME
      Removes a user: every device signed out at once, memberships dropped, the name
      never given out again. Their data (/user/NAME) stays.
  capra user add DIR NAME
      Prints a bearer token for NAME (created when missing); only its hash is stored.

Options:
  --root-key PATH  the root key (default: as capra serve, or $CAPRA_ROOT_KEY)
  --help           show this help

While capra serve holds DIR, the commands go through it (its capra-serving.json).
`;

/** Runs `capra user`. */
export async function userCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    {
      admin: { type: "boolean" },
      json: { type: "boolean" },
      url: { type: "string" },
      "root-key": { type: "string" },
    },
    2,
    3,
  );
  if (values.help) {
    console.log(USER_USAGE);
    return ExitCode.Ok;
  }
  const [verb, dir, name] = positionals;
  const needsName = verb === "invite" || verb === "remove" || verb === "add";
  if (!needsName && verb !== "list") {
    throw new UsageError(
      `unknown action "${verb}" (expected invite, list, remove or add)`,
    );
  }
  if (needsName && name === undefined) {
    throw new UsageError(`capra user ${verb} needs DIR and NAME`);
  }
  if (!needsName && name !== undefined) {
    throw new UsageError(`too many arguments: "${name}"`);
  }
  if (needsName) {
    try {
      checkUserName(name);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (values.url !== undefined) {
    try {
      new URL(String(values.url));
    } catch {
      throw new UsageError(`invalid --url "${values.url}"`);
    }
  }
  await requireDirectory(dir);
  const rootPath = (values["root-key"] as string | undefined) ??
    Deno.env.get("CAPRA_ROOT_KEY") ?? defaultRootKeyPath(dir);
  const { key: root } = await loadOrCreateRootKey(rootPath);
  const admin = await openUserAdmin(dir, root);
  try {
    switch (verb) {
      case "invite": {
        const invite = await admin.invite(
          name,
          values.admin ? "admin" : "user",
        );
        const base = String(
          values.url ?? admin.publicUrl ?? "http://127.0.0.1:8787",
        ).replace(/\/$/, "");
        console.log(`${base}/#invite=${invite.token}`);
        console.error(
          `capra user: invite for ${invite.name} (${invite.role}), valid until ${
            new Date(invite.expiresAt).toISOString()
          }; it works once`,
        );
        return ExitCode.Ok;
      }
      case "list": {
        const listing = await admin.list();
        if (values.json) {
          console.log(JSON.stringify(listing));
          return ExitCode.Ok;
        }
        for (const u of listing.users) {
          const creds = [
            u.password ? "password" : "",
            u.passkeys ? `${u.passkeys} passkey(s)` : "",
            u.tokens ? `${u.tokens} token(s)` : "",
          ].filter(Boolean).join(", ") || "no credentials";
          console.log(
            `${u.name}\t${u.role}\t${creds}\t${u.devices} device(s)`,
          );
        }
        for (const i of listing.invites) {
          console.log(`${i.name}\t${i.role}\tinvited (pending)`);
        }
        if (!listing.users.length && !listing.invites.length) {
          console.error("capra user: no users");
        }
        return ExitCode.Ok;
      }
      case "remove": {
        if (!await admin.remove(name)) {
          console.error(`capra user: no user "${name}"`);
          return ExitCode.Failed;
        }
        console.error(`capra user: removed ${name}; every device signed out`);
        return ExitCode.Ok;
      }
      default: {
        console.log(await admin.addToken(name));
        return ExitCode.Ok;
      }
    }
  } finally {
    await admin.close();
  }
}
