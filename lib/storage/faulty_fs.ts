/**
 * A fault-injecting, in-memory {@link FileSystem} for tests of the file storage. It keeps
 * what was written apart from what was made durable: file bytes become durable at an
 * fsync of the file, directory entries (creates, renames, removes) at an fsync of the
 * directory, exactly as POSIX promises and no more. A simulated power cut
 * ({@link FaultyFileSystem.cutPower}, or {@link FaultyFileSystem.cutPowerAfter} a number
 * of operations) stops the machine; {@link FaultyFileSystem.restart} then yields the file
 * system as it could be found after reboot: unsynced changes lost, kept, or (seeded)
 * partly kept and torn. Writes and fsyncs fail on demand ({@link FaultyFileSystem.failNext}),
 * writes can be short, a capacity simulates a full disk and `readOnly` a read-only mount.
 *
 * Platform-neutral (no `Deno.*`), so the same file storage code runs on it.
 *
 * @module
 */

import type {
  DirEntry,
  FileHandle,
  FileOpenOptions,
  FileStat,
  FileSystem,
} from "./fs.ts";
import {
  DirNode,
  FaultyHandle,
  fsError,
  generator,
  type HandleHost,
  Inode,
  type Node,
  PowerCutError,
  type PowerCutPolicy,
  splitPath,
  statOf,
  survivingTree,
} from "./faulty_fs_nodes.ts";

/** Operations a fault can be injected into. */
export type FaultOp =
  | "open"
  | "write"
  | "read"
  | "fsync"
  | "syncDir"
  | "truncate"
  | "rename"
  | "remove"
  | "mkdir"
  | "stat";

/** A fault waiting for its operation (see {@link FaultyFileSystem.failNext}). */
export interface FaultRule {
  readonly op: FaultOp;
  /** Only paths equal to (string) or matching (RegExp) this. */
  readonly path?: string | RegExp;
  /** The error code thrown (default `EIO`). */
  readonly code?: string;
  /** How many operations fail (default 1). */
  readonly times?: number;
  /** For writes: this many bytes are written first (a short write), then the error. */
  readonly afterBytes?: number;
}

export type { PowerCutPolicy } from "./faulty_fs_nodes.ts";
export { PowerCutError } from "./faulty_fs_nodes.ts";

/** Construction options of {@link FaultyFileSystem}. */
export interface FaultyFileSystemOptions {
  /** Seed of the generator behind short writes and torn power cuts. */
  readonly seed?: number;
  /** Writes return a random shorter count (at least 1 byte) this often (0 to 1). */
  readonly shortWriteRate?: number;
  /** Total bytes the files may hold (default unlimited): past it, writes fail `ENOSPC`. */
  readonly capacity?: number;
}

/** See the module documentation. */
export class FaultyFileSystem implements FileSystem {
  /** Every file system restarted from this one shares the inode numbering. */
  #ids: { next: number };
  #root: DirNode;
  #rules: FaultRule[] = [];
  #remaining = new Map<FaultRule, number>();
  #bytesBeforeFault = new Map<FaultRule, number>();
  #random: () => number;
  #shortWriteRate: number;
  #cutAfter = Infinity;
  #powerCut = false;
  #openHandles = 0;
  #peakHandles = 0;
  /** Bytes the files may hold: past it, writes fail `ENOSPC` (`Infinity`: no limit). */
  capacity: number;
  /** When true every change fails `EROFS`, like a read-only mount. */
  readOnly = false;
  /** Operations counted so far, for tests and measurements. */
  readonly counts = { mutations: 0, fsync: 0, syncDir: 0, writes: 0 };
  /** The mutating operations so far, in order (`"write /d/x"`), for failure messages. */
  readonly trace: string[] = [];
  /** What the handles of this file system reach (kept out of its public API). */
  readonly #host: HandleHost = {
    counts: this.counts,
    enter: (op, path, mutates) => this.#enter(op, path, mutates),
    admitWrite: (path, n, extend) => this.#admitWrite(path, n, extend),
    handleClosed: () => this.#handleClosed(),
  };

  constructor(options: FaultyFileSystemOptions = {}) {
    this.#ids = { next: 2 };
    this.#root = new DirNode(1);
    this.#random = generator(options.seed ?? 1);
    this.#shortWriteRate = options.shortWriteRate ?? 0;
    this.capacity = options.capacity ?? Infinity;
  }

  /** Handles open now (a leak shows here). */
  get openHandles(): number {
    return this.#openHandles;
  }

  /** The most handles that were open at once. */
  get peakOpenHandles(): number {
    return this.#peakHandles;
  }

  /** True once the power was cut: every operation throws {@link PowerCutError}. */
  get isPowerCut(): boolean {
    return this.#powerCut;
  }

  /** Bytes held by all files now (computed: only used with a finite capacity). */
  get usedBytes(): number {
    let n = 0;
    const walk = (d: DirNode, seen: Set<Node>) => {
      for (const node of d.entries.values()) {
        if (seen.has(node)) continue;
        seen.add(node);
        if (node instanceof Inode) n += node.size;
        else walk(node, seen);
      }
    };
    walk(this.#root, new Set());
    return n;
  }

  /**
   * Makes the next matching operations fail. Rules apply in the order given; each is
   * dropped once it has failed `times` operations.
   */
  failNext(op: FaultOp, rule: Omit<FaultRule, "op"> = {}): void {
    const r = { op, ...rule };
    this.#rules.push(r);
    this.#remaining.set(r, rule.times ?? 1);
    if (rule.afterBytes) this.#bytesBeforeFault.set(r, rule.afterBytes);
  }

  /** Drops every pending fault rule. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Cuts the power now: every later operation throws {@link PowerCutError}. */
  cutPower(): void {
    this.#powerCut = true;
  }

  /** Cuts the power right before the `n`-th next mutating operation runs. */
  cutPowerAfter(n: number): void {
    this.#cutAfter = this.counts.mutations + n;
  }

  /**
   * The file system found after a reboot (cutting the power first if it is still on):
   * see {@link PowerCutPolicy}. Locks and handles are gone; faults are not carried over.
   */
  restart(
    policy: PowerCutPolicy = "lose",
    options: FaultyFileSystemOptions = {},
  ): FaultyFileSystem {
    this.#powerCut = true;
    const fs = new FaultyFileSystem({ capacity: this.capacity, ...options });
    fs.#root = survivingTree(this.#root, policy, generator(options.seed ?? 7));
    fs.#ids = this.#ids;
    return fs;
  }

  /** The current bytes of a file (a test helper, no fault applies), or null. */
  peek(path: string): Uint8Array | null {
    const node = this.#lookup(path);
    return node instanceof Inode ? node.current.slice() : null;
  }

  /** The bytes of a file that would survive a power cut now, or null. */
  peekDurable(path: string): Uint8Array | null {
    const parts = splitPath(path);
    let dir: DirNode = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = dir.durable.get(parts[i]);
      if (!(next instanceof DirNode)) return null;
      dir = next;
    }
    const node = dir.durable.get(parts[parts.length - 1]);
    return node instanceof Inode ? node.durable.slice() : null;
  }

  /** Counts an operation, applying the power cut and the fault rules. */
  #enter(op: string, path: string, mutates: boolean, what = path): void {
    if (this.#powerCut) throw new PowerCutError(op, path);
    if (mutates) {
      if (this.counts.mutations >= this.#cutAfter) {
        this.#powerCut = true;
        throw new PowerCutError(op, path);
      }
      if (this.readOnly) throw fsError("EROFS", op, path);
      this.counts.mutations++;
      this.trace.push(`${op} ${what}`);
    }
    if (op === "write") return; // writes apply their rules in admitWrite
    const rule = this.#match(op, path);
    if (rule) {
      this.#consume(rule);
      throw fsError(rule.code ?? "EIO", op, path);
    }
  }

  /** How many of `n` bytes a write may store now (throws when none). */
  #admitWrite(path: string, n: number, extend = false): number {
    this.counts.writes++;
    let allowed = n;
    const rule = extend ? undefined : this.#match("write", path);
    if (rule) {
      const before = this.#bytesBeforeFault.get(rule) ?? 0;
      if (before === 0) {
        this.#consume(rule);
        throw fsError(rule.code ?? "EIO", "write", path);
      }
      allowed = Math.min(allowed, before);
      this.#bytesBeforeFault.set(rule, before - allowed);
    }
    const free = this.capacity === Infinity
      ? Infinity
      : this.capacity - this.usedBytes;
    if (allowed > free) {
      if (free <= 0 || extend) throw fsError("ENOSPC", "write", path);
      allowed = free;
    }
    if (
      !extend && allowed > 1 && this.#shortWriteRate > 0 &&
      this.#random() < this.#shortWriteRate
    ) {
      allowed = 1 + Math.floor(this.#random() * (allowed - 1));
    }
    return allowed;
  }

  #handleClosed(): void {
    this.#openHandles--;
  }

  #match(op: string, path: string): FaultRule | undefined {
    return this.#rules.find((r) =>
      r.op === op &&
      (r.path === undefined ||
        (typeof r.path === "string" ? r.path === path : r.path.test(path)))
    );
  }

  #consume(rule: FaultRule): void {
    const left = (this.#remaining.get(rule) ?? 1) - 1;
    this.#remaining.set(rule, left);
    if (left <= 0) this.#rules = this.#rules.filter((r) => r !== rule);
    else if (rule.afterBytes) this.#bytesBeforeFault.set(rule, rule.afterBytes);
  }

  #lookup(path: string): Node | undefined {
    let node: Node = this.#root;
    for (const part of splitPath(path)) {
      if (!(node instanceof DirNode)) return undefined;
      const next: Node | undefined = node.entries.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** The directory holding `path` and the entry's name; throws when it is missing. */
  #parentOf(path: string, op: string): [DirNode, string] {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw fsError("EISDIR", op, path);
    const dir = this.#lookup(parts.join("/"));
    if (!dir) throw fsError("ENOENT", op, path);
    if (!(dir instanceof DirNode)) throw fsError("ENOTDIR", op, path);
    return [dir, name];
  }

  open(path: string, options: FileOpenOptions): Promise<FileHandle> {
    return Promise.resolve().then(() => this.openSync(path, options));
  }

  openSync(path: string, options: FileOpenOptions): FileHandle {
    const write = !!(options.write || options.append);
    const create = !!(options.create || options.createNew);
    const [dir, name] = this.#parentOf(path, "open");
    let node = dir.entries.get(name);
    if (node && options.createNew) {
      this.#enter("open", path, false);
      throw fsError("EEXIST", "open", path);
    }
    if (!node) {
      if (!create) {
        this.#enter("open", path, false);
        throw fsError("ENOENT", "open", path);
      }
      this.#enter("create", path, true);
      node = new Inode(this.#ids.next++, options.mode ?? 0o644);
      dir.entries.set(name, node);
    } else {
      this.#enter("open", path, write || !!options.truncate);
    }
    const rule = this.#match("open", path);
    if (rule) {
      this.#consume(rule);
      throw fsError(rule.code ?? "EIO", "open", path);
    }
    if (node instanceof DirNode && write) throw fsError("EISDIR", "open", path);
    if (options.truncate && node instanceof Inode) node.resize(0);
    this.#openHandles++;
    this.#peakHandles = Math.max(this.#peakHandles, this.#openHandles);
    return new FaultyHandle(this.#host, node, path, {
      read: !!options.read,
      write,
      append: !!options.append,
    });
  }

  mkdirAll(path: string): Promise<boolean> {
    return Promise.resolve().then(() => {
      let dir = this.#root;
      let created = false;
      const parts = splitPath(path);
      for (let i = 0; i < parts.length; i++) {
        const next = dir.entries.get(parts[i]);
        if (next instanceof Inode) throw fsError("EEXIST", "mkdir", path);
        if (next) {
          dir = next;
          continue;
        }
        this.#enter("mkdir", path, true);
        const made = new DirNode(this.#ids.next++);
        dir.entries.set(parts[i], made);
        dir = made;
        created = true;
      }
      return created;
    });
  }

  readDir(path: string): Promise<DirEntry[]> {
    return Promise.resolve().then(() => {
      this.#enter("readDir", path, false);
      const dir = this.#lookup(path);
      if (!dir) throw fsError("ENOENT", "readdir", path);
      if (!(dir instanceof DirNode)) throw fsError("ENOTDIR", "readdir", path);
      return [...dir.entries].map(([name, node]) => ({
        name,
        isFile: node instanceof Inode,
        isDirectory: node instanceof DirNode,
        isSymlink: false,
      }));
    });
  }

  stat(path: string): Promise<FileStat> {
    return Promise.resolve().then(() => this.statSync(path));
  }

  statSync(path: string): FileStat {
    this.#enter("stat", path, false);
    const node = this.#lookup(path);
    if (!node) throw fsError("ENOENT", "stat", path);
    return statOf(node);
  }

  rename(from: string, to: string): Promise<void> {
    return Promise.resolve().then(() => this.renameSync(from, to));
  }

  renameSync(from: string, to: string): void {
    this.#enter("rename", to, true, `${from} -> ${to}`);
    const [src, a] = this.#parentOf(from, "rename");
    const [dst, b] = this.#parentOf(to, "rename");
    const node = src.entries.get(a);
    if (!node) throw fsError("ENOENT", "rename", from);
    if (dst.entries.get(b) instanceof DirNode) {
      throw fsError("EISDIR", "rename", to);
    }
    src.entries.delete(a);
    dst.entries.set(b, node);
  }

  remove(path: string): Promise<void> {
    return Promise.resolve().then(() => {
      this.#enter("remove", path, true);
      const [dir, name] = this.#parentOf(path, "remove");
      const node = dir.entries.get(name);
      if (!node) throw fsError("ENOENT", "remove", path);
      if (node instanceof DirNode && node.entries.size) {
        throw fsError("ENOTEMPTY", "remove", path);
      }
      dir.entries.delete(name);
    });
  }

  chmod(path: string, mode: number): Promise<void> {
    return Promise.resolve().then(() => {
      this.#enter("chmod", path, true);
      const node = this.#lookup(path);
      if (!node) throw fsError("ENOENT", "chmod", path);
      if (node instanceof Inode) node.mode = mode;
    });
  }

  syncDir(path: string): Promise<void> {
    return Promise.resolve().then(() => this.syncDirSync(path));
  }

  syncDirSync(path: string): void {
    this.#enter("syncDir", path, true);
    const dir = this.#lookup(path);
    if (!dir) throw fsError("ENOENT", "fsync", path);
    if (!(dir instanceof DirNode)) throw fsError("ENOTDIR", "fsync", path);
    dir.durable = new Map(dir.entries);
    this.counts.syncDir++;
  }
}
