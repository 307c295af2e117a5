/**
 * The history panel of the demo app: the selected item's commit graph and, per commit
 * (newest first), its time, its author and the values it wrote; merge commits list the
 * concurrent edits they merged and which value won, and concurrent heads not merged
 * yet are shown the same way. "Restore" writes the version a commit left as a new
 * commit. Redrawn when the item changes.
 *
 * @module
 */

import type { Item } from "../../lib/core/item.ts";
import { drawCommitGraph } from "./history_graph.ts";
import {
  type CommitView,
  type FieldConflict,
  historyView,
} from "./history_model.ts";

/** Characters of a session id shown for another author. */
const SHORT_SESSION = 8;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  cls?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const shown = (v: string | null) => v ?? "(none)";

/** The history of one item, shown in three elements of the page. */
export class HistoryPanel {
  #item: Item | null = null;

  constructor(
    private readonly title: HTMLElement,
    private readonly graph: HTMLElement,
    private readonly commits: HTMLElement,
    private readonly me: string,
  ) {
    this.refresh();
  }

  /** Shows `item`'s history. */
  show(item: Item): void {
    this.#item = item;
    this.refresh();
  }

  /** "you" for this replica's commits, else the short session id. */
  author(session: string): string {
    return session === this.me ? "you" : session.slice(0, SHORT_SESSION);
  }

  /** Redraws (the item changed). */
  refresh(): void {
    const item = this.#item;
    if (!item || item.isDeleted) {
      this.title.textContent = "History";
      this.graph.replaceChildren(
        "Select an item's History button to see its commits.",
      );
      this.commits.replaceChildren();
      return;
    }
    const { rows, unmergedHeads } = historyView(item);
    this.title.textContent = `History of “${item.get("text")}”`;
    this.graph.replaceChildren(
      drawCommitGraph(rows.map((r) => r.info).reverse(), (s) => this.author(s)),
    );
    const out: HTMLElement[] = [];
    if (unmergedHeads.length) {
      const li = el("li", undefined, "conflict unmerged");
      li.append(
        el("strong", "Concurrent edits, merged on read:"),
        this.#conflicts(unmergedHeads, "shown"),
      );
      out.push(li);
    }
    const oneHead = rows.filter((r) => r.info.head).length === 1;
    for (const r of rows) out.push(this.#row(item, r, oneHead));
    this.commits.replaceChildren(...out);
  }

  #conflicts(list: readonly FieldConflict[], won: string): HTMLUListElement {
    const ul = el("ul", undefined, "conflicts");
    for (const c of list) {
      const li = el("li");
      li.dataset.field = c.field;
      const sides = c.sides.map((s) =>
        `${shown(s.value)} (${this.author(s.session)})`
      ).join(" vs ");
      li.append(
        el("code", c.field),
        `: ${sides} → ${won} `,
        el("mark", shown(c.winner), "winner"),
      );
      ul.append(li);
    }
    return ul;
  }

  #row(item: Item, r: CommitView, oneHead: boolean): HTMLLIElement {
    const c = r.info;
    const li = el("li", undefined, "commit");
    li.dataset.commit = c.id;
    const time = el("time", c.time.toLocaleString());
    time.dateTime = c.time.toISOString();
    const what = c.parents.length === 0
      ? "created"
      : c.parents.length > 1
      ? "merge"
      : r.deleted
      ? "deleted"
      : "edit";
    const head = el("div", undefined, "commit-head");
    head.append(
      time,
      " · ",
      el("span", this.author(c.session), "author"),
      " · ",
      el("span", what, "kind"),
    );
    // Every version but the current one can come back (a losing head included).
    if (!c.head || !oneHead || r.deleted) {
      const b = el("button", "Restore");
      b.type = "button";
      b.dataset.action = "restore";
      b.setAttribute(
        "aria-label",
        `Restore the version of ${c.time.toLocaleString()}`,
      );
      b.addEventListener("click", () => item.restore(c.id));
      head.append(" ", b);
    }
    li.append(head);
    if (r.changes.length) {
      const ul = el("ul", undefined, "values");
      for (const ch of r.changes) {
        const v = el("li");
        v.dataset.field = ch.field;
        v.append(
          el("code", ch.field),
          c.parents.length ? `: ${shown(ch.before)} → ` : ": ",
          el("span", shown(ch.after), "value"),
        );
        ul.append(v);
      }
      li.append(ul);
    }
    if (r.merged.length) {
      li.classList.add("conflict");
      li.append(
        el("p", "Merged concurrent edits:"),
        this.#conflicts(r.merged, "kept"),
      );
    }
    return li;
  }
}
