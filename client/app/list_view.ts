/**
 * The todo list of the demo app: rows of labelled native inputs and buttons, updated in
 * place from the live query's results (focus and half-typed text survive remote
 * edits), and the order keys that moving a row writes.
 *
 * @module
 */

import type { Item } from "../../lib/core/item.ts";
import { orderKeyAt, orderKeyForMove } from "../../lib/order/list_position.ts";
import { orderKeysBetween } from "../../lib/order/order_key.ts";

/** Accessible names of the row buttons (followed by the item's text). */
const ACTION_LABELS: Record<string, string> = {
  up: "Move up",
  down: "Move down",
  history: "Show history",
  delete: "Delete",
};

/** A row's order key ("" for none: such rows sort first). */
export function orderOf(item: Item): string {
  const o = item.get("order");
  return typeof o === "string" ? o : "";
}

/** The item's tags as the tags input shows them. */
export function tagsOf(item: Item): string {
  const t = item.get("tags") as ReadonlySet<string> | undefined;
  return t ? [...t].sort().join(", ") : "";
}

/** Parses the tags input. */
export function parseTags(text: string): Set<string> {
  return new Set(text.split(",").map((s) => s.trim()).filter(Boolean));
}

/** The order key of a new item added at the end of `items` (in list order). */
export function orderKeyAtEnd(items: readonly Item[]): string {
  const keys = items.map(orderOf).filter((k) => k !== "");
  return orderKeyAt(keys, keys.length);
}

/**
 * The order keys to write to move `item` one place up (-1) or down (+1) in `items`
 * (list order): its new key, plus keys for rows that have none (written without one
 * elsewhere; they sort first) so they keep their place. Empty at either end.
 */
export function orderKeysForMove(
  items: readonly Item[],
  item: Item,
  dir: -1 | 1,
): Map<Item, string> {
  const writes = new Map<Item, string>();
  const from = items.findIndex((it) => it.path === item.path);
  const to = from + dir;
  if (from < 0 || to < 0 || to >= items.length) return writes;
  const keys = items.map(orderOf);
  const firstKeyed = keys.findIndex((k) => k !== "");
  const missing = firstKeyed < 0 ? keys.length : firstKeyed;
  if (missing > 0) {
    const filled = orderKeysBetween(null, keys[missing] ?? null, missing);
    filled.forEach((k, i) => {
      keys[i] = k;
      writes.set(items[i], k);
    });
  }
  writes.set(item, orderKeyForMove(keys, from, to));
  return writes;
}

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

/** Brings the rows of `ul` in line with `items` (in list order). */
export function renderList(
  ul: HTMLUListElement,
  items: readonly Item[],
  selected: string | null,
): void {
  // Moving a row in the DOM drops focus: put it back afterwards.
  const focused = document.activeElement as HTMLElement | null;
  const hadFocus = focused && ul.contains(focused) ? focused : null;
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
}
