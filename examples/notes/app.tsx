/**
 * The notes app's browser entry: opens the replica in IndexedDB, syncs the notebook
 * with the server that served the page, and renders the React app inside a
 * CapraProvider.
 *
 * Build: `deno task bundle --entry examples/notes/app.tsx --out examples/notes/dist/app.js`
 * (examples/notes/server.ts does it for you on start).
 *
 * @module
 */

// @ts-types="@types/react"
import { useState } from "react";
// @ts-types="@types/react-dom/client"
import { createRoot } from "react-dom/client";
import { BrowserSync, openBrowserDatabase } from "@capra/capra/client";
import { CapraProvider, useDatabase } from "@capra/capra/react";
import { NOTEBOOK, noteSchema } from "./schema.ts";
import { NoteList } from "./note_list.tsx";
import { NoteEditor } from "./note_editor.tsx";
import { StatusBar } from "./status_bar.tsx";

function App() {
  const db = useDatabase();
  const [selected, setSelected] = useState<string | null>(null);
  const create = () => {
    const note = db.create(NOTEBOOK, noteSchema, {
      title: "Untitled",
      updated: new Date(),
    });
    setSelected(note.path);
  };
  return (
    <>
      <header>
        <h1>Notes</h1>
        <StatusBar />
        <button type="button" onClick={create}>New note</button>
      </header>
      <main>
        <NoteList selected={selected} onSelect={setSelected} />
        {selected
          ? <NoteEditor path={selected} onDeleted={() => setSelected(null)} />
          : <p>Pick a note or make a new one.</p>}
      </main>
    </>
  );
}

const db = await openBrowserDatabase({
  name: "capra-notes",
  schemas: [noteSchema],
});
await db.open(NOTEBOOK);
const sync = new BrowserSync(db, { serverUrl: location.origin });
sync.watch(NOTEBOOK);
createRoot(document.getElementById("app")!).render(
  <CapraProvider db={db} sync={sync}>
    <App />
  </CapraProvider>,
);
Object.assign(globalThis, { notes: { db, sync } }); // for the console and tests
