/**
 * The demo web app: shared todo lists on the bundled Capra client. Items can be created,
 * renamed, checked, reordered (buttons or Alt+↑/↓), tagged and deleted; other people's
 * edits show up live; a status line shows online/offline and sync state; the history
 * panel draws the selected item's commit graph and redraws as commits arrive. Every
 * control is a labelled native input or button, so it all works from the keyboard.
 * Several tabs share one replica (one of them syncs for all). The list comes from the
 * URL hash (`#groceries`).
 *
 * @module
 */

import {
  BrowserSync,
  clearBrowserDatabase,
  decodeBase64Url,
  encodeBase64Url,
  type Item,
  openBrowserDatabase,
} from "../mod.ts";
import { TODO_SCHEMA } from "./todo_schema.ts";
import { drawCommitGraph } from "./history_graph.ts";
import { mountAccount } from "./account_panel.ts";
import { signedInName, targetOf } from "./account_store.ts";

/** IndexedDB name of the app's replica. */
const DB_NAME = "capra-todos";
/** Gap between the order values of neighbouring items. */
const ORDER_STEP = 1024;

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;

const db = await openBrowserDatabase({
  name: DB_NAME,
  schemas: [TODO_SCHEMA],
  onClearedElsewhere: () => location.reload(),
});
// The URL hash names the list: #me (private), #list=<id> (shared), #<name> (demo).
const signedIn = signedInName();
const target = targetOf(location.hash, signedIn);
const list = target.title;
const repoPath = target.repo;
const repo = await db.open(repoPath);
const sync = new BrowserSync(db, { serverUrl: location.origin });
mountAccount($("account"), { db, sync, name: signedIn, target });
const me = db.sessionId;
let selected: string | null = null;

function liveItems(): Item[] {
  const items: Item[] = [];
  for (const key of db.keys(repoPath)) {
    const it = db.item(`${repoPath}/${key}`);
    if (it && !it.isDeleted) items.push(it);
  }
  return items.sort((a, b) =>
    (a.get("order") as number) - (b.get("order") as number) ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

function tagsOf(item: Item): string {
  const t = item.get("tags") as ReadonlySet<string> | undefined;
  return t ? [...t].sort().join(", ") : "";
}

function parseTags(text: string): Set<string> {
  return new Set(text.split(",").map((s) => s.trim()).filter(Boolean));
}

/** Accessible names of the row buttons (followed by the item's text). */
const ACTION_LABELS: Record<string, string> = {
  up: "Move up",
  down: "Move down",
  history: "Show history",
  delete: "Delete",
};

function button(label: string, action: string, aria: string) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  b.setAttribute("aria-label", aria);
  return b;
}

function shortcut(b: HTMLButtonElement, keys: string): HTMLButtonElement {
  b.setAttribute("aria-keyshortcuts", keys);
  return b;
}

function rowFor(item: Item): HTMLLIElement {
  const li = document.createElement("li");
  li.dataset.key = item.key;
  const done = document.createElement("input");
  done.type = "checkbox";
  done.dataset.field = "done";
  const text = document.createElement("input");
  text.type = "text";
  text.dataset.field = "text";
  const tags = document.createElement("input");
  tags.type = "text";
  tags.dataset.field = "tags";
  tags.placeholder = "tags";
  li.append(
    done,
    text,
    tags,
    shortcut(button("↑", "up", "Move up"), "Alt+ArrowUp"),
    shortcut(button("↓", "down", "Move down"), "Alt+ArrowDown"),
    button("History", "history", "Show history"),
    button("✕", "delete", "Delete"),
  );
  return li;
}

function setIfIdle(input: HTMLInputElement, value: string): void {
  if (document.activeElement !== input && input.value !== value) {
    input.value = value;
  }
}

function renderList(): void {
  const ul = $<HTMLUListElement>("items");
  // Moving a row in the DOM drops focus: put it back afterwards.
  const focused = document.activeElement as HTMLElement | null;
  const hadFocus = focused && ul.contains(focused) ? focused : null;
  const items = liveItems();
  const rows = new Map<string, HTMLLIElement>();
  for (const li of ul.querySelectorAll<HTMLLIElement>("li")) {
    rows.set(li.dataset.key!, li);
  }
  items.forEach((item, i) => {
    const li = rows.get(item.key) ?? rowFor(item);
    rows.delete(item.key);
    const [done, text, tags] = li.querySelectorAll("input");
    const name = String(item.get("text") ?? "");
    done.checked = item.get("done") === true;
    done.setAttribute("aria-label", `Done: ${name}`);
    setIfIdle(text, name);
    text.setAttribute("aria-label", `Text of item ${i + 1}`);
    setIfIdle(tags, tagsOf(item));
    tags.setAttribute("aria-label", `Tags of item ${i + 1}`);
    for (const b of li.querySelectorAll<HTMLButtonElement>("button")) {
      b.setAttribute(
        "aria-label",
        `${ACTION_LABELS[b.dataset.action!]}: ${name}`,
      );
    }
    li.classList.toggle("done", done.checked);
    li.classList.toggle("selected", item.key === selected);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null);
  });
  for (const li of rows.values()) li.remove();
  if (hadFocus && hadFocus.isConnected && document.activeElement !== hadFocus) {
    hadFocus.focus();
  }
  $("count").textContent = `${items.length} item${
    items.length === 1 ? "" : "s"
  }`;
}

function sessionLabel(session: string): string {
  return session === me ? "you" : session.slice(0, 8);
}

function renderHistory(): void {
  const panel = $("history-graph");
  const title = $("history-title");
  if (!selected || !db.item(`${repoPath}/${selected}`)) {
    title.textContent = "History";
    panel.replaceChildren(
      "Select an item's History button to see its commits.",
    );
    return;
  }
  const item = db.item(`${repoPath}/${selected}`)!;
  title.textContent = `History of “${item.get("text")}”`;
  panel.replaceChildren(drawCommitGraph(item.history(), sessionLabel));
}

function renderStatus(): void {
  const s = sync.state;
  const el = $("status");
  const pending = s.pending.length ? ` · ${s.pending.length} pending` : "";
  const via = s.online
    ? ` (${s.transport === "websocket" ? "live" : "polling"}${
      s.role === "follower" ? ", via another tab" : ""
    })`
    : "";
  el.textContent = `${s.online ? "Online" : "Offline"}${via} · ${
    s.status === "idle" ? "synced" : s.status
  }${pending}`;
  el.dataset.online = String(s.online);
  el.dataset.status = s.status;
  el.dataset.transport = s.transport;
  el.dataset.role = s.role;
}

function render(): void {
  renderList();
  renderHistory();
}

function neighbourOrder(
  items: Item[],
  key: string,
  dir: -1 | 1,
): number | null {
  const i = items.findIndex((it) => it.key === key);
  const j = i + dir;
  if (i < 0 || j < 0 || j >= items.length) return null;
  const beyond = items[j + dir];
  const a = items[j].get("order") as number;
  const b = beyond ? beyond.get("order") as number : a + dir * ORDER_STEP;
  return (a + b) / 2;
}

$("add-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("new-text");
  const text = input.value.trim();
  if (!text) return;
  const items = liveItems();
  const last = items.at(-1);
  db.create(repoPath, "todo", {
    text,
    order: last ? (last.get("order") as number) + ORDER_STEP : ORDER_STEP,
  });
  input.value = "";
});

$("items").addEventListener("change", (ev) => {
  const input = ev.target as HTMLInputElement;
  const key = input.closest("li")?.dataset.key;
  const item = key && db.item(`${repoPath}/${key}`);
  if (!item) return;
  const field = input.dataset.field;
  if (field === "done") item.set("done", input.checked);
  else if (field === "text" && input.value.trim()) {
    item.set("text", input.value.trim());
  } else if (field === "tags") item.set("tags", parseTags(input.value));
});

function move(item: Item, dir: -1 | 1): void {
  const order = neighbourOrder(liveItems(), item.key, dir);
  if (order !== null) item.set("order", order);
}

$("items").addEventListener("click", (ev) => {
  const b = (ev.target as HTMLElement).closest("button");
  const key = b?.closest("li")?.dataset.key;
  const item = key && db.item(`${repoPath}/${key}`);
  if (!b || !item) return;
  const action = b.dataset.action;
  if (action === "delete") {
    // Keep keyboard users in the list: focus the next row's text (or the new-item box).
    const li = b.closest("li")!;
    const next = (li.nextElementSibling ?? li.previousElementSibling)
      ?.querySelector<HTMLInputElement>('input[data-field="text"]');
    item.delete();
    (next ?? $<HTMLInputElement>("new-text")).focus();
  } else if (action === "history") {
    selected = item.key;
    render();
  } else if (action === "up" || action === "down") {
    move(item, action === "up" ? -1 : 1);
  }
});

// Keyboard reordering: Alt+ArrowUp / Alt+ArrowDown on any control of a row.
$("items").addEventListener("keydown", (ev) => {
  if (!ev.altKey || (ev.key !== "ArrowUp" && ev.key !== "ArrowDown")) return;
  const key = (ev.target as HTMLElement).closest("li")?.dataset.key;
  const item = key && db.item(`${repoPath}/${key}`);
  if (!item) return;
  ev.preventDefault();
  move(item, ev.key === "ArrowUp" ? -1 : 1);
});

$("clear").addEventListener("click", async () => {
  // Every tab of this origin drops its data and session; IndexedDB ends up empty.
  await clearBrowserDatabase(db);
  location.reload();
});

$("session").textContent = `You are ${me.slice(0, 8)}`;
$("list-name").textContent = list;
addEventListener("hashchange", () => location.reload());
repo.onChange(() => render());
sync.addEventListener("statechange", renderStatus);
sync.watch(repoPath);
render();
renderStatus();

/** Hooks for tests and the console (sessions are trusted explicitly until root-signed
 * sessions land on the server). */
Object.assign(globalThis, {
  capra: {
    db,
    sync,
    repoPath,
    role: () => sync.state.role,
    publicKey: encodeBase64Url(db.session.publicKey),
    trust: (publicKey: string) => db.trustSession(decodeBase64Url(publicKey)),
    items: () =>
      liveItems().map((i) => ({
        key: i.key,
        text: i.get("text"),
        done: i.get("done"),
        order: i.get("order"),
        tags: tagsOf(i),
      })),
  },
});
