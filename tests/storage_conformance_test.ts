/**
 * Runs the storage conformance suite against the memory and file storages, the file
 * storage also on the fault-injecting file system (short writes; a power cut at every
 * reopen).
 */

import type { RepoPath } from "../lib/path.ts";
import { FileStorage, repoFileName } from "../lib/storage/file_storage.ts";
import { MemoryStorage } from "../lib/storage/memory_storage.ts";
import { FaultyFileSystem } from "../lib/storage/faulty_fs.ts";
import { writeAll } from "../lib/storage/fs.ts";
import { storageConformance } from "./storage_conformance.ts";

storageConformance("memory", () => {
  const storage = new MemoryStorage();
  return Promise.resolve({
    storage,
    reopen: () => Promise.resolve(storage),
    appendRaw: (repo: RepoPath, bytes: Uint8Array) => {
      const old = storage.bytesOf(repo);
      const next = new Uint8Array(old.length + bytes.length);
      next.set(old);
      next.set(bytes, old.length);
      storage.setBytes(repo, next);
      return Promise.resolve();
    },
    dispose: () => Promise.resolve(),
  });
});

storageConformance("file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "capra-conformance-" });
  let current = await FileStorage.open(dir);
  return {
    storage: current,
    async reopen() {
      await current.close();
      current = await FileStorage.open(dir);
      return current;
    },
    async appendRaw(repo: RepoPath, bytes: Uint8Array) {
      const path = `${dir}/${repoFileName(repo)}`;
      await Deno.writeFile(path, bytes, { append: true });
    },
    async dispose() {
      await current.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

/** The file storage on the fault-injecting file system: `reopen` may cut the power. */
function faultyHarness(options: { shortWriteRate: number; cut: boolean }) {
  return async () => {
    const dir = "/data";
    let fs = new FaultyFileSystem({ seed: 11, ...options });
    let current = await FileStorage.open(dir, { fs });
    return {
      storage: current,
      async reopen() {
        await current.close();
        // Everything was flushed and closed: a power cut must lose nothing.
        if (options.cut) fs = fs.restart("lose", { seed: 11, ...options });
        current = await FileStorage.open(dir, { fs });
        return current;
      },
      async appendRaw(repo: RepoPath, bytes: Uint8Array) {
        const file = await fs.open(`${dir}/${repoFileName(repo)}`, {
          write: true,
          append: true,
        });
        await writeAll(file, bytes);
        await file.sync();
        file.close();
      },
      async dispose() {
        await current.close();
        if (fs.openHandles !== 0) {
          throw new Error(`${fs.openHandles} file handles left open`);
        }
      },
    };
  };
}

storageConformance(
  "file, fault-injecting file system with short writes",
  faultyHarness({ shortWriteRate: 0.5, cut: false }),
);
storageConformance(
  "file, power cut at every reopen",
  faultyHarness({ shortWriteRate: 0, cut: true }),
);
