/**
 * The demo web app: shared todo lists on the bundled Capra client. Items can be created,
 * renamed, checked, reordered (buttons or Alt+↑/↓; positions are order keys, so moves
 * never run out of room), tagged and deleted; the list is a live query, so other
 * people's edits show up at once; the status line tells "Offline" from "Server
 * unreachable" and counts the edits the server has not confirmed; "Clear local data"
 * asks first when that would lose edits; the history panel shows the selected item's
 * commits with their time, author and values, the concurrent edits that were merged
 * and which value won, and restores an earlier version as a new commit. A service
 * worker keeps the app shell, so the app opens without network. Every control is a
 * labelled native input or button. Several tabs share one replica (one of them syncs
 * for all). Sign-in (passkey or password), devices and shared lists' members are in
 * the account panel. The URL hash names the list: `#me` the signed-in user's private
 * list, `#list=<id>` a shared list, `#<name>` a demo list (`#groceries`).
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
import { TODO_SCHEMAS } from "./todo_schema.ts";
import {
  orderKeyAtEnd,
  orderKeysForMove,
  orderOf,
  parseTags,
  renderList,
  tagsOf,
} from "./list_view.ts";
import { renderStatus } from "./status_line.ts";
import { confirmClear } from "./clear_dialog.ts";
import { HistoryPanel } from "./history_panel.ts";
import { mountAccount } from "./account_panel.ts";
import { signedInName, targetOf } from "./account_store.ts";

/** IndexedDB name of the app's replica. */
const DB_NAME = "capra-todos";

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;

// The shell comes from the service worker's cache when there is no network.
navigator.serviceWorker?.register("/sw.js").catch((e) =>
  console.warn("capra: no offline shell:", e)
);

const db = await openBrowserDatabase({
  name: DB_NAME,
  schemas: TODO_SCHEMAS,
  onClearedElsewhere: () => location.reload(),
});
// The URL hash names the list: #me (private), #list=<id> (shared), #<name> (demo).
const signedIn = signedInName();
const target = targetOf(location.hash, signedIn);
const list = target.title;
const repoPath = target.repo;
await db.open(repoPath);
const sync = new BrowserSync(db, { serverUrl: location.origin });
mountAccount($("account"), { db, sync, name: signedIn, target });
const me = db.sessionId;
// The list: live, in order-key order (ties by path, the same on every replica).
const todos = db.query({ source: repoPath, schema: "todo", sortBy: "order" });
const history = new HistoryPanel(
  $("history-title"),
  $("history-graph"),
  $("history-commits"),
  me,
);
let selected: string | null = null;

const itemAt = (key: string | undefined) =>
  key ? db.item(`${repoPath}/${key}`) : undefined;

function render(): void {
  const items = todos.results;
  renderList($<HTMLUListElement>("items"), items, selected);
  $("count").textContent = `${items.length} item${
    items.length === 1 ? "" : "s"
  }`;
}

$("add-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("new-text");
  const text = input.value.trim();
  if (!text) return;
  db.create(repoPath, "todo", { text, order: orderKeyAtEnd(todos.results) });
  input.value = "";
});

$("items").addEventListener("change", (ev) => {
  const input = ev.target as HTMLInputElement;
  const item = itemAt(input.closest("li")?.dataset.key);
  if (!item) return;
  const field = input.dataset.field;
  if (field === "done") item.set("done", input.checked);
  else if (field === "text" && input.value.trim()) {
    item.set("text", input.value.trim());
  } else if (field === "tags") item.set("tags", parseTags(input.value));
});

function move(item: Item, dir: -1 | 1): void {
  for (const [it, key] of orderKeysForMove(todos.results, item, dir)) {
    it.set("order", key);
  }
}

$("items").addEventListener("click", (ev) => {
  const b = (ev.target as HTMLElement).closest("button");
  const item = itemAt(b?.closest("li")?.dataset.key);
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
    history.show(item);
    render();
  } else if (action === "up" || action === "down") {
    move(item, action === "up" ? -1 : 1);
  }
});

// Keyboard reordering: Alt+ArrowUp / Alt+ArrowDown on any control of a row.
$("items").addEventListener("keydown", (ev) => {
  if (!ev.altKey || (ev.key !== "ArrowUp" && ev.key !== "ArrowDown")) return;
  const item = itemAt((ev.target as HTMLElement).closest("li")?.dataset.key);
  if (!item) return;
  ev.preventDefault();
  move(item, ev.key === "ArrowUp" ? -1 : 1);
});

$("clear").addEventListener("click", async () => {
  // Count what would be lost once every edit made so far is stored.
  const unsynced = await sync.unsyncedCommits();
  if (!await confirmClear($<HTMLDialogElement>("clear-dialog"), unsynced)) {
    return;
  }
  // Every tab of this origin drops its data and session; IndexedDB ends up empty.
  await clearBrowserDatabase(db);
  location.reload();
});

$("session").textContent = `You are ${me.slice(0, 8)}`;
$("list-name").textContent = list;
addEventListener("hashchange", () => location.reload());
todos.onResultsChanged(() => render());
db.repository(repoPath).onChange((change) => {
  if (change.key === selected) history.refresh();
});
sync.addEventListener(
  "statechange",
  () => renderStatus($("status"), sync.state),
);
sync.watch(repoPath);
renderStatus($("status"), sync.state);
await todos.ready;
render();

/** Hooks for tests and the console. */
Object.assign(globalThis, {
  capra: {
    db,
    sync,
    repoPath,
    todos,
    role: () => sync.state.role,
    publicKey: encodeBase64Url(db.session.publicKey),
    trust: (publicKey: string) => db.trustSession(decodeBase64Url(publicKey)),
    items: () =>
      todos.results.map((i) => ({
        key: i.key,
        text: i.get("text"),
        done: i.get("done"),
        order: orderOf(i),
        tags: tagsOf(i),
      })),
  },
});
