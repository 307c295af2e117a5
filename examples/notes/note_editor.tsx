/**
 * The editor of one note: title, body, pin, delete. It re-renders when this note
 * changes (here, in another tab or on another device), and only then; what is typed
 * is written at once and merged with what others type.
 *
 * @module
 */

import { useItem } from "@capra/capra/react";
import { noteSchema } from "./schema.ts";

/** Props of {@link NoteEditor}. */
export interface NoteEditorProps {
  readonly path: string;
  readonly onDeleted: () => void;
}

/** Edits the note at `path`. */
export function NoteEditor({ path, onDeleted }: NoteEditorProps) {
  const note = useItem(path, noteSchema);
  if (!note || note.isDeleted) return <p>This note is gone.</p>;
  const edit = (changes: { title?: string; body?: string; pinned?: boolean }) =>
    note.update({ ...changes, updated: new Date() });
  return (
    <article aria-label="Note">
      <input
        aria-label="Title"
        value={note.get("title")}
        maxLength={200}
        onChange={(e) => edit({ title: e.target.value })}
      />
      <textarea
        aria-label="Body"
        rows={12}
        value={note.get("body")}
        onChange={(e) => edit({ body: e.target.value })}
      />
      <label>
        <input
          type="checkbox"
          checked={note.get("pinned")}
          onChange={(e) => edit({ pinned: e.target.checked })}
        />{" "}
        Pinned
      </label>
      <p>
        Edited {note.get("updated").toLocaleString()}
      </p>
      <button
        type="button"
        onClick={() => {
          note.delete();
          onDeleted();
        }}
      >
        Delete note
      </button>
    </article>
  );
}
