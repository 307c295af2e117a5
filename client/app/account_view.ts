/**
 * The signed-in side of the web app: who is signed in, signing out (here or
 * everywhere), the lists (the private one, shared ones, a new shared list), the members
 * of the shared list shown (the owner adds and removes them by name), the devices
 * (name, last seen; revoke one), and, when the server revoked this device, what stayed
 * local.
 *
 * @module
 */

import {
  type Account,
  type BrowserSync,
  clearBrowserDatabase,
  type Database,
  type RevokedReport,
  SyncError,
} from "../mod.ts";
import { rememberSignedIn } from "./account_store.ts";

/** What the view needs. */
export interface AccountDeps {
  readonly db: Database;
  readonly sync: BrowserSync;
  readonly name: string;
  /** The repository shown. */
  readonly repo: string;
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

function button(label: string, id: string, onClick: () => void) {
  const b = el("button", { type: "button", id }, label);
  b.addEventListener("click", onClick);
  return b;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

async function leave(db: Database): Promise<void> {
  rememberSignedIn(null);
  await clearBrowserDatabase(db);
  location.hash = "";
  location.reload();
}

/** Renders the signed-in view into `root` and keeps it current. */
export function renderAccount(root: HTMLElement, deps: AccountDeps): void {
  const error = el("p", { id: "account-error", role: "alert" } as never);
  const show = (e: unknown) =>
    error.textContent = e instanceof SyncError
      ? `${e.serverCode ?? e.code}: ${e.message}`
      : String((e as Error)?.message ?? e);
  const devices = el("ul", { id: "devices" });
  const lists = el("ul", { id: "lists" });
  const members = el("section", { id: "members" });
  const revoked = el("div", { id: "revoked", role: "alert" } as never);
  revoked.hidden = true;
  let account: Account | undefined;
  const withAccount = async () => account ??= await deps.sync.account();

  const refreshDevices = async () => {
    const a = await withAccount();
    const list = await a.devices();
    devices.replaceChildren(
      ...list.map((d) => {
        const li = el(
          "li",
          {},
          `${d.name || "unnamed device"}${d.current ? " (this device)" : ""}`,
          el("small", {}, ` · last seen ${ago(d.lastSeen)}`),
        );
        li.dataset.device = d.id;
        if (!d.current) {
          li.append(button(`Revoke`, `revoke-${d.id}`, () => {
            a.revokeDevice(d.id).then(refreshDevices, show);
          }));
        }
        return li;
      }),
    );
  };

  const refreshLists = async () => {
    const a = await withAccount();
    const shared = await a.sharedRepositories();
    lists.replaceChildren(
      el("li", {}, el("a", { href: "#me" }, "My private list")),
      ...shared.map((m) => {
        const id = m.repo.split("/")[2];
        return el(
          "li",
          {},
          el("a", { href: `#list=${id}` }, id),
          el(
            "small",
            {},
            m.owner === deps.name
              ? ` · yours, ${m.members.length} member(s)`
              : ` · shared by ${m.owner}`,
          ),
        );
      }),
    );
  };

  const refreshMembers = async () => {
    if (!deps.repo.startsWith("/list/")) {
      members.hidden = true;
      return;
    }
    const a = await withAccount();
    let m;
    try {
      m = await a.members(deps.repo);
    } catch (e) {
      if (e instanceof SyncError && e.serverCode === "not_found") {
        members.replaceChildren(
          el("h3", {}, "Members"),
          el(
            "p",
            { id: "list-access" },
            "You are not a member of this list.",
          ),
        );
        return;
      }
      throw e;
    }
    const owner = m.owner === deps.name;
    const nameIn = el("input", { id: "member-name", required: true });
    const add = el(
      "form",
      { id: "add-member-form" },
      el("label", {}, "Add a member by name ", nameIn),
      el("button", { type: "submit" }, "Add member"),
    );
    add.addEventListener("submit", (ev) => {
      ev.preventDefault();
      a.addMember(deps.repo, nameIn.value.trim().toLowerCase()).then(
        () => refreshMembers(),
        show,
      );
    });
    members.replaceChildren(
      el("h3", {}, "Members"),
      el("p", {}, `Owner: ${m.owner}`),
      el(
        "ul",
        { id: "member-list" },
        ...m.members.map((n) => {
          const li = el("li", {}, n);
          li.dataset.member = n;
          if (owner || n === deps.name) {
            li.append(
              button(
                n === deps.name ? "Leave" : "Remove",
                `remove-${n}`,
                () =>
                  a.removeMember(deps.repo, n).then(
                    () => refreshMembers(),
                    show,
                  ),
              ),
            );
          }
          return li;
        }),
      ),
      ...(owner ? [add] : []),
    );
  };

  const newName = el("input", { id: "new-list-name", required: true });
  const newList = el(
    "form",
    { id: "new-list-form" },
    el("label", {}, "New shared list ", newName),
    el("button", { type: "submit" }, "Create"),
  );
  newList.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const slug = newName.value.trim().toLowerCase().replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "").slice(0, 40) || "list";
    const rand = crypto.getRandomValues(new Uint8Array(4));
    const id = `${slug}-${[...rand].map((b) => b.toString(36)).join("")}`;
    withAccount().then((a) => a.claim(`/list/${id}`)).then(() => {
      location.hash = `#list=${id}`;
    }, show);
  });

  const showRevoked = (r: RevokedReport) => {
    revoked.hidden = false;
    const exportButton = button("Export them", "export-unsynced", () => {
      const items = r.items.map((path) => ({
        path,
        value: deps.db.item(path)?.toObject() ?? null,
      }));
      const blob = new Blob([JSON.stringify(items, null, 2)], {
        type: "application/json",
      });
      const a = el("a", {
        href: URL.createObjectURL(blob),
        download: "unsynced-edits.json",
      });
      a.click();
    });
    revoked.replaceChildren(
      el(
        "p",
        { id: "revoked-message" },
        `This device was signed out. ${r.commits} edit${
          r.commits === 1 ? "" : "s"
        } made here did not reach the server; they are kept on this device.`,
      ),
      ...(r.commits ? [exportButton] : []),
      button("Sign in again", "sign-in-again", () => {
        if (
          r.commits === 0 ||
          confirm("Signing in again clears this device's data, edits included.")
        ) leave(deps.db);
      }),
    );
  };
  deps.sync.addEventListener(
    "revoked",
    (ev) => showRevoked((ev as CustomEvent<RevokedReport>).detail),
  );

  const signOut = (everywhere: boolean) => {
    withAccount().then((a) => a.signOut({ everywhere })).then(
      () => leave(deps.db),
      show,
    );
  };
  root.replaceChildren(
    revoked,
    el("p", { id: "who" }, `Signed in as ${deps.name}`),
    button("Sign out", "sign-out", () => signOut(false)),
    button("Sign out everywhere", "sign-out-everywhere", () => signOut(true)),
    el("h3", {}, "Lists"),
    lists,
    newList,
    members,
    el("h3", {}, "Devices"),
    devices,
    error,
  );
  if (deps.sync.state.revoked) showRevoked(deps.sync.state.revoked);
  const refresh = () =>
    Promise.all([refreshDevices(), refreshLists(), refreshMembers()]).catch(
      (e) => {
        // Offline: the lists stay usable; the account refreshes when back.
        if (!(e instanceof TypeError)) show(e);
      },
    );
  root.insertBefore(
    button("Refresh", "account-refresh", () => refresh()),
    error,
  );
  refresh();
}
