/**
 * The list of notes: a live query, pinned notes first, newest edit first, filtered by
 * the search box. It re-renders when a note enters or leaves the results, moves, or a
 * listed note changes, and not for anything else.
 *
 * @module
 */

// @ts-types="@types/react"
import { useState } from "react";
import { useQuery } from "@capra/capra/react";
import { NOTEBOOK, noteSchema } from "./schema.ts";

/** Props of {@link NoteList}. */
export interface NoteListProps {
  readonly selected: string | null;
  readonly onSelect: (path: string) => void;
}

/** Pinned notes sort above every other one (sort keys are compared descending). */
const PINNED_BONUS = 1e15;

/** The searchable, live list of notes. */
export function NoteList({ selected, onSelect }: NoteListProps) {
  const [search, setSearch] = useState("");
  const { items, ready } = useQuery({
    source: NOTEBOOK,
    schema: noteSchema, // typed: note.get("title") is a string
    // The search text reaches the predicate through ctx: a new text, a new query.
    ctx: search.trim().toLowerCase(),
    predicate: (note, q) =>
      q === "" ||
      `${note.get("title")} ${note.get("body")}`.toLowerCase().includes(q),
    sortBy: (note) =>
      (note.get("pinned") ? PINNED_BONUS : 0) + note.get("updated").getTime(),
    descending: true,
  });
  return (
    <nav aria-label="Notes">
      <input
        type="search"
        aria-label="Search notes"
        placeholder="Search"
        value={search}
        onChange={(e) => setSearch(e.target.value)}
      />
      {!ready && <p>Loading…</p>}
      <ul>
        {items.map((note) => (
          <li key={note.key}>
            <button
              type="button"
              aria-current={note.path === selected ? "true" : undefined}
              onClick={() => onSelect(note.path)}
            >
              {note.get("pinned") ? "📌 " : ""}
              {note.get("title") || "Untitled"}
            </button>
          </li>
        ))}
      </ul>
      {ready && items.length === 0 && (
        <p>No notes{search ? " match" : " yet"}.</p>
      )}
    </nav>
  );
}
