/**
 * Passkeys in the browser: the WebAuthn ceremony (through `@simplewebauthn/browser`)
 * around the server's options, giving the credentials to sign in with
 * (`BrowserSync.signIn`). The options are bound to this database's key, which signs the
 * session request that carries the answer.
 *
 * @example
 * ```ts ignore
 * const credentials = await passkeySignUp(db, location.origin, { name: "alice" });
 * await sync.signIn(credentials);
 * ```
 *
 * @module
 */

import {
  browserSupportsWebAuthn,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";
import type { Database } from "../lib/database/database.ts";
import { passkeyOptions } from "../lib/sync/account.ts";
import type { SignInCredentials } from "../lib/sync/server_session.ts";

/** True when this browser can use passkeys (WebAuthn, secure context). */
export function passkeysAvailable(): boolean {
  return browserSupportsWebAuthn();
}

/**
 * Creates a passkey for a new user (`name`, or the name of `invite`) and returns the
 * sign-up credentials (a password may be added to them).
 */
export async function passkeySignUp(
  db: Database,
  serverUrl: string,
  who: { readonly name?: string; readonly invite?: string },
): Promise<SignInCredentials> {
  const { challengeId, options } = await passkeyOptions(serverUrl, {
    purpose: "sign-up",
    publicKey: db.session.publicKey,
    ...who,
  });
  const response = await startRegistration({
    optionsJSON: options as never,
  });
  return {
    method: "sign-up",
    ...who,
    passkey: { challengeId, response },
  };
}

/** Asks the browser for one of this site's passkeys; the sign-in credentials. */
export async function passkeySignIn(
  db: Database,
  serverUrl: string,
): Promise<SignInCredentials> {
  const { challengeId, options } = await passkeyOptions(serverUrl, {
    purpose: "sign-in",
    publicKey: db.session.publicKey,
  });
  const response = await startAuthentication({
    optionsJSON: options as never,
  });
  return { method: "passkey", challengeId, response };
}
