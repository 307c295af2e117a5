/**
 * The page of the Chromium benchmark (driven by scripts/bench_browser.ts): each
 * function creates, reopens or pulls records with Capra (IndexedDB, signing in
 * workers) or with the reference, Yjs + y-indexeddb, and reports the wall time, the
 * longest main-thread task (Long Tasks API: tasks of 50 ms or more; 0 when none) and
 * what else the row needs. Records are `{ text, done, n }`; both sides create them the
 * way a responsive page would: in slices of about {@link SLICE_MS} of work, yielding
 * to the event loop between slices.
 *
 * @module
 */

import * as Y from "yjs";
import { IndexeddbPersistence } from "y-indexeddb";
import { BrowserSync, openBrowserDatabase } from "../client/mod.ts";
import { IdbStorage } from "../client/idb_storage.ts";
import { Database } from "../lib/database/database.ts";
import { signingKeyFromCryptoKey } from "../lib/crypto/keys.ts";
import { yieldToEventLoop } from "../lib/query/yield.ts";
import type { Schema } from "../lib/schema/schema.ts";

/** Records per transaction when filling a document at once (no page). */
export const BATCH = 1000;
/** Milliseconds of record creation per task (checked every {@link SLICE_CHECK}). */
export const SLICE_MS = 8;
const SLICE_CHECK = 32;

/**
 * Calls `add(i)` for i in 0..n in slices of about SLICE_MS (each slice inside `wrap`,
 * e.g. one transaction), yielding to the event loop between slices.
 */
async function sliced(
  n: number,
  add: (i: number) => void,
  wrap: (slice: () => void) => void = (slice) => slice(),
): Promise<void> {
  let i = 0;
  while (i < n) {
    const end = performance.now() + SLICE_MS;
    wrap(() => {
      do {
        for (let k = 0; k < SLICE_CHECK && i < n; k++) add(i++);
      } while (i < n && performance.now() < end);
    });
    await yieldToEventLoop();
  }
}

const SCHEMA: Schema = {
  ns: "todo",
  version: 1,
  fields: {
    text: { type: "string", required: true },
    done: { type: "boolean", default: false },
    n: { type: "number" },
  },
};
const REPO = "/todo/bench";

/** One measurement. */
export interface Measured {
  readonly ms: number;
  readonly longestTaskMs: number;
  readonly longTasks: number;
  readonly count: number;
}

async function measure(fn: () => Promise<number>): Promise<Measured> {
  const tasks: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) tasks.push(e.duration);
  });
  obs.observe({ type: "longtask" });
  const t0 = performance.now();
  const count = await fn();
  const ms = performance.now() - t0;
  // Long task entries arrive after their task: give them a moment.
  await new Promise((r) => setTimeout(r, 100));
  for (const e of obs.takeRecords()) tasks.push(e.duration);
  obs.disconnect();
  return {
    ms,
    longestTaskMs: tasks.length ? Math.max(...tasks) : 0,
    longTasks: tasks.length,
    count,
  };
}

/** Bytes of every Uint8Array value in an IndexedDB database. */
async function idbBytes(name: string): Promise<number> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  let total = 0;
  for (const store of db.objectStoreNames) {
    const all = await new Promise<unknown[]>((resolve, reject) => {
      const r = db.transaction(store, "readonly").objectStore(store).getAll();
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    for (const v of all) {
      if (v instanceof Uint8Array) total += v.byteLength;
      else if (v && typeof v === "object") {
        for (const x of Object.values(v)) {
          if (x instanceof Uint8Array) total += x.byteLength;
        }
      }
    }
  }
  db.close();
  return total;
}

const text = (i: number) => `task number ${i}`;

/**
 * A database that signs on the page without slicing, as the browser client did before
 * signing moved to workers (for the "before" row).
 */
async function pageSigningDb(name: string): Promise<Database> {
  const storage = await IdbStorage.open(name);
  const pair = await crypto.subtle.generateKey("Ed25519", false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKey = new Uint8Array(
    await crypto.subtle.exportKey("raw", pair.publicKey),
  );
  return await Database.open({
    storage,
    signer: signingKeyFromCryptoKey(publicKey, pair.privateKey),
    schemas: [SCHEMA],
  });
}

/** Capra: creates `n` records and waits until IndexedDB holds them. */
async function capraCreate(
  name: string,
  n: number,
  mode: "workers" | "page",
): Promise<Measured & { bytesPerRecord: number }> {
  const db = mode === "page"
    ? await pageSigningDb(name)
    : await openBrowserDatabase({ name, schemas: [SCHEMA], linkTabs: false });
  await db.open(REPO);
  const m = await measure(async () => {
    await sliced(n, (j) =>
      db.create(`${REPO}/k${j}`, "todo", {
        text: text(j),
        done: j % 2 === 0,
        n: j,
      }));
    await db.flush();
    return db.count(REPO);
  });
  await db.close();
  return { ...m, bytesPerRecord: (await idbBytes(name)) / n };
}

/** Capra: opens a database made earlier and reads every value. */
async function capraReload(name: string): Promise<Measured> {
  return await measure(async () => {
    const db = await openBrowserDatabase({
      name,
      schemas: [SCHEMA],
      linkTabs: false,
    });
    await db.open(REPO);
    let sink = 0;
    const keys = db.keys(REPO);
    // The first read of an item decodes it: read in slices, as a page would.
    await sliced(keys.length, (i) => {
      const it = db.item(`${REPO}/${keys[i]}`)!;
      sink += String(it.get("text")).length + Number(it.get("n") ?? 0) +
        (it.get("done") ? 1 : 0);
    });
    if (sink < 0) console.log(sink);
    const count = db.count(REPO);
    (globalThis as { keep?: unknown }).keep = db; // kept for the heap figure
    return count;
  });
}

/** Capra: a fresh replica pulls the repository `repo` from the page's server. */
async function capraPull(repo: string, expect: number): Promise<Measured> {
  const db = await openBrowserDatabase({
    name: "bench-capra-pull",
    schemas: [SCHEMA],
    linkTabs: false,
  });
  await db.open(repo);
  const sync = new BrowserSync(db, {
    serverUrl: location.origin,
    webSocket: false,
  });
  try {
    return await measure(async () => {
      sync.watch(repo);
      while (db.count(repo) < expect) await sync.syncNow();
      await db.flush();
      return db.count(repo);
    });
  } finally {
    sync.stop();
    await db.close();
  }
}

function persisted(p: IndexeddbPersistence): Promise<void> {
  // A transaction on the store ends after every earlier write to it.
  const db = (p as unknown as { db: IDBDatabase }).db;
  return new Promise((resolve, reject) => {
    const tx = db.transaction("updates", "readonly");
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

/** Record `j` as a Yjs map (its fields editable one by one, like a Capra item). */
function yjsRecord(j: number): Y.Map<unknown> {
  const m = new Y.Map<unknown>();
  m.set("text", text(j));
  m.set("done", j % 2 === 0);
  m.set("n", j);
  return m;
}

/** Adds records `from`..`to` to a Yjs document, one transaction. */
export function fillYjs(doc: Y.Doc, from: number, to: number): void {
  const items = doc.getMap<Y.Map<unknown>>("items");
  doc.transact(() => {
    for (let j = from; j < to; j++) items.set(`k${j}`, yjsRecord(j));
  });
}

/** Yjs + y-indexeddb: the same records, one Y.Map each, persisted. */
async function yjsCreate(
  name: string,
  n: number,
): Promise<Measured & { bytesPerRecord: number }> {
  const doc = new Y.Doc();
  const p = new IndexeddbPersistence(name, doc);
  await p.whenSynced;
  const m = await measure(async () => {
    const items = doc.getMap<Y.Map<unknown>>("items");
    await sliced(
      n,
      (j) => items.set(`k${j}`, yjsRecord(j)),
      (slice) => doc.transact(slice),
    );
    await persisted(p);
    return doc.getMap("items").size;
  });
  await p.destroy();
  return { ...m, bytesPerRecord: (await idbBytes(name)) / n };
}

/** Yjs + y-indexeddb: loads a document made earlier and reads every value. */
async function yjsReload(name: string): Promise<Measured> {
  return await measure(async () => {
    const doc = new Y.Doc();
    const p = new IndexeddbPersistence(name, doc);
    await p.whenSynced;
    let sink = 0;
    const maps = [...doc.getMap<Y.Map<unknown>>("items").values()];
    await sliced(maps.length, (i) => {
      const m = maps[i];
      sink += String(m.get("text")).length + Number(m.get("n") ?? 0) +
        (m.get("done") ? 1 : 0);
    });
    if (sink < 0) console.log(sink);
    (globalThis as { keepYjs?: unknown }).keepYjs = doc;
    return doc.getMap("items").size;
  });
}

/** Yjs: fetches a document's state from the server, applies and persists it. */
async function yjsPull(url: string): Promise<Measured> {
  const doc = new Y.Doc();
  const p = new IndexeddbPersistence("bench-yjs-pull", doc);
  await p.whenSynced;
  try {
    return await measure(async () => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      Y.applyUpdate(doc, bytes);
      await persisted(p);
      return doc.getMap("items").size;
    });
  } finally {
    await p.destroy();
  }
}

Object.assign(globalThis, {
  bench: {
    capraCreate,
    capraReload,
    capraPull,
    yjsCreate,
    yjsReload,
    yjsPull,
  },
});
