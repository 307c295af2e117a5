/** Runs the storage conformance suite against the memory and file storages. */

import type { RepoPath } from "../lib/path.ts";
import { FileStorage, repoFileName } from "../lib/storage/file_storage.ts";
import { MemoryStorage } from "../lib/storage/memory_storage.ts";
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
