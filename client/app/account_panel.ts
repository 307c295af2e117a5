/**
 * The account panel of the web app: the sign-in / sign-up screens when nobody is signed
 * in on this browser (or an invite link is open), else the signed-in view.
 *
 * @module
 */

import type { BrowserSync, Database } from "../mod.ts";
import type { HashTarget } from "./account_store.ts";
import { renderAccount } from "./account_view.ts";
import { renderSignIn } from "./sign_in_view.ts";

/** Renders the account panel into `root`. */
export function mountAccount(
  root: HTMLElement,
  deps: {
    readonly db: Database;
    readonly sync: BrowserSync;
    readonly name: string | null;
    readonly target: HashTarget;
  },
): void {
  if (deps.name && !deps.target.invite) {
    renderAccount(root, {
      db: deps.db,
      sync: deps.sync,
      name: deps.name,
      repo: deps.target.repo,
    });
    return;
  }
  renderSignIn(root, {
    db: deps.db,
    sync: deps.sync,
    serverUrl: location.origin,
    ...(deps.target.invite ? { invite: deps.target.invite } : {}),
  });
}
