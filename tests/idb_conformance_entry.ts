/// <reference lib="dom" />
/**
 * Browser entry bundled by the browser test: runs the storage conformance suite against
 * {@link IdbStorage} in Chromium and exposes the outcome as `runIdbConformance()`.
 *
 * @module
 */

import { IdbStorage } from "../client/idb_storage.ts";
import type { RepoPath } from "../lib/path.ts";
import {
  runStorageCheck,
  STORAGE_CHECKS,
  type StorageHarness,
} from "./storage_conformance.ts";

let counter = 0;

async function harness(): Promise<StorageHarness> {
  const name = `capra-conformance-${Date.now()}-${counter++}`;
  let current = await IdbStorage.open(name);
  return {
    storage: current,
    async reopen() {
      await current.close();
      current = await IdbStorage.open(name);
      return current;
    },
    async appendRaw(repo: RepoPath, bytes: Uint8Array) {
      const raw = await IdbStorage.open(name);
      await raw.appendRaw(repo, bytes);
      await raw.close();
    },
    async dispose() {
      await current.close();
      await new Promise<void>((resolve, reject) => {
        const req = indexedDB.deleteDatabase(name);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(req.error);
      });
    },
  };
}

/** One check's outcome. */
export interface CheckOutcome {
  readonly title: string;
  readonly error?: string;
}

Object.assign(globalThis, {
  async runIdbConformance(): Promise<CheckOutcome[]> {
    const out: CheckOutcome[] = [];
    for (const c of STORAGE_CHECKS) {
      try {
        await runStorageCheck(c, harness);
        out.push({ title: c.title });
      } catch (e) {
        out.push({ title: c.title, error: String((e as Error)?.stack ?? e) });
      }
    }
    return out;
  },
});
