/**
 * Who this browser is signed in as, remembered in localStorage so the app opens the
 * right lists offline (the server knows it from the device key: the session renews with
 * it), and which repository a URL hash shows: `#me` the user's private list
 * (`/user/<name>`), `#list=<id>` a shared list (`/list/<id>`), `#<name>` a demo list
 * (`/todo/<name>`, open to every session).
 *
 * @module
 */

import { listRepo } from "./todo_schema.ts";

const KEY = "capra-account";
const SEGMENT = /^[a-z0-9_-]{1,64}$/;
/** Default demo list when the URL has no hash. */
export const DEFAULT_LIST = "shared";

/** The signed-in user of this browser, if any. */
export function signedInName(): string | null {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? "null");
    return typeof v?.name === "string" && SEGMENT.test(v.name) ? v.name : null;
  } catch {
    return null;
  }
}

/** Remembers (or, with null, forgets) the signed-in user. */
export function rememberSignedIn(name: string | null): void {
  if (name === null) localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, JSON.stringify({ name }));
}

/** What a URL hash asks for. */
export interface HashTarget {
  /** The repository shown. */
  readonly repo: string;
  /** What to call it. */
  readonly title: string;
  /** An invite token (`#invite=…`), shown as a sign-up form. */
  readonly invite?: string;
}

/** The repository (and invite) of a URL hash for the signed-in `name`. */
export function targetOf(hash: string, name: string | null): HashTarget {
  const h = decodeURIComponent(hash.replace(/^#/, ""));
  const invite = /^invite=([A-Za-z0-9_-]{43})$/.exec(h)?.[1];
  if (invite) {
    return { repo: listRepo(DEFAULT_LIST), title: DEFAULT_LIST, invite };
  }
  if (h === "me" && name) return { repo: `/user/${name}`, title: "My list" };
  const shared = /^list=([a-z0-9_-]{1,64})$/.exec(h)?.[1];
  if (shared) return { repo: `/list/${shared}`, title: shared };
  const list = h.toLowerCase();
  return SEGMENT.test(list)
    ? { repo: listRepo(list), title: list }
    : { repo: listRepo(DEFAULT_LIST), title: DEFAULT_LIST };
}
