/**
 * The history panel of the demo app: the selected item's commit graph and, per commit,
 * its time and author. Redrawn when the item changes.
 *
 * @module
 */

import type { Item } from "../../lib/core/item.ts";
import type { CommitInfo } from "../../lib/core/item_history.ts";
import { drawCommitGraph } from "./history_graph.ts";

/** Characters of a session id shown for another author. */
const SHORT_SESSION = 8;

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
    const history = item.history();
    this.title.textContent = `History of “${item.get("text")}”`;
    this.graph.replaceChildren(
      drawCommitGraph(history, (s) => this.author(s)),
    );
    this.commits.replaceChildren(
      ...[...history].reverse().map((c) => this.#row(c)),
    );
  }

  #row(c: CommitInfo): HTMLLIElement {
    const li = document.createElement("li");
    li.dataset.commit = c.id;
    const time = document.createElement("time");
    time.dateTime = c.time.toISOString();
    time.textContent = c.time.toLocaleString();
    const who = document.createElement("span");
    who.className = "author";
    who.textContent = this.author(c.session);
    li.append(time, " · ", who);
    return li;
  }
}
