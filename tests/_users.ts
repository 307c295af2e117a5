/** Test helpers of the user system: a server with it, signed-in clients, error codes. */
import {
  Account,
  type Database,
  ServerSession,
  type SignInCredentials,
  SyncError,
} from "../mod.ts";
import { compileRules } from "../lib/sync/declared_rules.ts";
import { clientDb, secureServer, type TestServer } from "./_sync_server.ts";

/** The base URL of in-process servers. */
export const BASE = "http://capra.test";

/** A server with the user system, shared `/list/*` and open sign-up. */
export function userServer(
  options: { signUp?: "open" | "invite" | "closed"; admins?: string[] } = {},
): Promise<TestServer> {
  return secureServer({
    rules: compileRules([
      { pattern: "/list/*", read: "members", write: "members" },
    ]),
    users: { signUp: options.signUp ?? "open", scryptLog2N: 10 },
    ...(options.admins ? { admins: options.admins } : {}),
  });
}

/** A fresh client database signed in with `signIn`. */
export async function signedIn(
  server: TestServer,
  signIn: SignInCredentials,
  device = "test device",
): Promise<{ db: Database; session: ServerSession; account: Account }> {
  const db = await clientDb();
  const session = await ServerSession.create(db, BASE, {
    fetch: server.fetch,
    signIn,
    device,
  });
  return { db, session, account: new Account(session) };
}

/** The code of the SyncError `p` rejects with. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SyncError) return e.serverCode ?? e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}
