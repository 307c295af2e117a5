/**
 * The sign-in and sign-up screens of the web app: a passkey first (one button), a
 * password second; an invite link (`#invite=…`) shows a sign-up form for the invited
 * name. Success binds this browser's key to the user, remembers the name and opens the
 * user's private list.
 *
 * @module
 */

import {
  type BrowserSync,
  type Database,
  inviteInfo,
  passkeysAvailable,
  passkeySignIn,
  passkeySignUp,
  type SignInCredentials,
  SyncError,
} from "../mod.ts";
import { rememberSignedIn } from "./account_store.ts";

/** What the screens need. */
export interface SignInDeps {
  readonly db: Database;
  readonly sync: BrowserSync;
  readonly serverUrl: string;
  readonly invite?: string;
}

const MESSAGES: Record<string, string> = {
  bad_credentials: "Sign-in failed: unknown user, wrong password or passkey.",
  too_many_attempts: "Too many sign-in attempts: wait a minute and try again.",
  name_taken: "That name is taken: choose another.",
  invite_used: "This invite link was already used.",
  invite_expired: "This invite link has expired.",
  bad_invite: "This invite link is not valid.",
  sign_up_closed: "This server signs up invited users only.",
  key_bound_to_other_user:
    "This browser is signed in as someone else: sign out first.",
};

function messageOf(e: unknown): string {
  if (e instanceof SyncError) {
    const code = e.serverCode ?? e.code;
    return MESSAGES[code] ?? e.message;
  }
  if (e instanceof Error && e.name === "NotAllowedError") {
    return "The passkey request was cancelled.";
  }
  return (e as Error)?.message ?? String(e);
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function field(label: string, input: HTMLInputElement): HTMLLabelElement {
  return el("label", {}, label, " ", input);
}

/** Renders the signed-out screens into `root`. */
export function renderSignIn(root: HTMLElement, deps: SignInDeps): void {
  const error = el("p", { id: "account-error", role: "alert" } as never);
  const busy = (b: boolean) => {
    for (const c of root.querySelectorAll("button,input")) {
      (c as HTMLButtonElement).disabled = b;
    }
  };
  const run = async (credentials: () => Promise<SignInCredentials>) => {
    error.textContent = "";
    busy(true);
    try {
      const session = await deps.sync.signIn(await credentials());
      rememberSignedIn(session.userId!);
      location.hash = "#me";
      location.reload();
    } catch (e) {
      error.textContent = messageOf(e);
      busy(false);
    }
  };
  const passkeys = passkeysAvailable();
  const nameIn = el("input", {
    id: "sign-in-name",
    autocomplete: "username",
    required: true,
  });
  const passwordIn = el("input", {
    id: "sign-in-password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const signInForm = el(
    "form",
    { id: "sign-in-form" },
    field("Name", nameIn),
    field("Password", passwordIn),
    el("button", { type: "submit" }, "Sign in with password"),
  );
  signInForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(() =>
      Promise.resolve({
        method: "password",
        name: nameIn.value.trim().toLowerCase(),
        password: passwordIn.value,
      })
    );
  });
  const upName = el("input", {
    id: "sign-up-name",
    autocomplete: "username",
  });
  const upPassword = el("input", {
    id: "sign-up-password",
    type: "password",
    autocomplete: "new-password",
    minLength: 8,
  });
  const invite = deps.invite;
  const who = () =>
    invite ? { invite } : { name: upName.value.trim().toLowerCase() };
  const upPasskey = el("button", {
    type: "button",
    id: "sign-up-passkey",
  }, "Create account with a passkey");
  upPasskey.disabled = !passkeys;
  upPasskey.addEventListener(
    "click",
    () => run(() => passkeySignUp(deps.db, deps.serverUrl, who())),
  );
  const upForm = el(
    "form",
    { id: "sign-up-form" },
    ...(invite ? [] : [field("Name", upName)]),
    upPasskey,
    field("or a password", upPassword),
    el("button", { type: "submit" }, "Create account with a password"),
  );
  upForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run(() =>
      Promise.resolve({
        method: "sign-up",
        ...who(),
        password: upPassword.value,
      } as SignInCredentials)
    );
  });
  const passkeyButton = el("button", {
    type: "button",
    id: "sign-in-passkey",
  }, "Sign in with a passkey");
  passkeyButton.disabled = !passkeys;
  passkeyButton.addEventListener(
    "click",
    () => run(() => passkeySignIn(deps.db, deps.serverUrl)),
  );
  const inviteNote = el("p", { id: "invite-note" });
  root.replaceChildren(
    el("h2", {}, invite ? "You are invited" : "Sign in"),
    ...(invite ? [inviteNote, el("h3", {}, "Create your account"), upForm] : [
      passkeyButton,
      el("p", { className: "hint" }, "or with a password:"),
      signInForm,
      el(
        "details",
        {},
        el("summary", {}, "Create an account"),
        upForm,
      ),
    ]),
    error,
  );
  if (invite) {
    inviteInfo(deps.serverUrl, invite).then(
      (grant) =>
        inviteNote.textContent =
          `This link creates the account “${grant.name}”${
            grant.role === "admin" ? " (an admin)" : ""
          }. It works once.`,
      (e) => error.textContent = messageOf(e),
    );
  }
}
