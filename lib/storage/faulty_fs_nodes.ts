/**
 * Internals of the fault-injecting file system (faulty_fs.ts): its files and
 * directories (each with the state a power cut would leave), its handles, its errors,
 * and what survives a power cut.
 *
 * @module
 */

import type { FileHandle, FileStat } from "./fs.ts";

/**
 * What survives a power cut, per file and per directory entry changed since its last
 * fsync: `lose` keeps only what was synced, `keep` keeps everything, `torn` picks per
 * change with a seeded generator (lost, kept, or, for file bytes, a torn prefix).
 */
export type PowerCutPolicy = "lose" | "keep" | "torn";

/** What a handle needs from its file system. */
export interface HandleHost {
  readonly counts: { fsync: number };
  /** Counts an operation, applying the power cut and the fault rules. */
  enter(op: string, path: string, mutates: boolean): void;
  /** How many of `n` bytes a write may store now (throws when none). */
  admitWrite(path: string, n: number, extend?: boolean): number;
  handleClosed(): void;
}

const ERRORS: Record<string, [string, number, string]> = {
  ENOENT: ["NotFound", 2, "No such file or directory"],
  EIO: ["Error", 5, "Input/output error"],
  EBADF: ["BadResource", 9, "Bad file descriptor"],
  EACCES: ["PermissionDenied", 13, "Permission denied"],
  EEXIST: ["AlreadyExists", 17, "File exists"],
  ENOTDIR: ["NotADirectory", 20, "Not a directory"],
  EISDIR: ["IsADirectory", 21, "Is a directory"],
  EINVAL: ["InvalidData", 22, "Invalid argument"],
  ENOSPC: ["Error", 28, "No space left on device"],
  EROFS: ["Error", 30, "Read-only file system"],
  ENOTEMPTY: ["Error", 39, "Directory not empty"],
};

/** An error shaped like the runtime's: a name, a POSIX `code`, the os error text. */
export function fsError(code: string, op: string, path: string): Error {
  const [name, n, text] = ERRORS[code] ?? ["Error", 5, code];
  const e = new Error(`${text} (os error ${n}): ${op} '${path}'`);
  e.name = name;
  return Object.assign(e, { code });
}

/** Thrown by every operation once the power is cut. */
export class PowerCutError extends Error {
  override name = "PowerCutError";
  constructor(op: string, path: string) {
    super(`Power cut (simulated): ${op} '${path}' did not run`);
  }
}

export class Inode {
  bytes: Uint8Array = new Uint8Array(64);
  size = 0;
  durable: Uint8Array = new Uint8Array(0);
  lockedBy: FaultyHandle | null = null;
  constructor(readonly id: number, public mode: number) {}
  get current(): Uint8Array {
    return this.bytes.subarray(0, this.size);
  }
  resize(size: number): void {
    if (size > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(size, this.bytes.length * 2));
      bigger.set(this.current);
      this.bytes = bigger;
    } else if (size < this.size) this.bytes.fill(0, size, this.size);
    this.size = size;
  }
  dirty(): boolean {
    const c = this.current, d = this.durable;
    if (c.length !== d.length) return true;
    for (let i = 0; i < c.length; i++) if (c[i] !== d[i]) return true;
    return false;
  }
}

export class DirNode {
  entries: Map<string, Node> = new Map();
  durable: Map<string, Node> = new Map();
  constructor(readonly id: number) {}
}

/** A file or a directory. */
export type Node = Inode | DirNode;

export function splitPath(path: string): string[] {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts;
}

/** A seeded generator (mulberry32) for short writes and torn power cuts. */
export function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultyHandle implements FileHandle {
  #pos = 0;
  #closed = false;
  constructor(
    private readonly fs: HandleHost,
    readonly node: Node,
    readonly path: string,
    private readonly mode: { read: boolean; write: boolean; append: boolean },
  ) {}

  #file(op: string, mutates = false): Inode {
    if (this.#closed) throw fsError("EBADF", op, this.path);
    this.fs.enter(op, this.path, mutates);
    if (this.node instanceof DirNode) throw fsError("EISDIR", op, this.path);
    return this.node;
  }

  write(bytes: Uint8Array): Promise<number> {
    return Promise.resolve().then(() => this.writeSync(bytes));
  }
  writeSync(bytes: Uint8Array): number {
    const f = this.#file("write", true);
    if (!this.mode.write) throw fsError("EBADF", "write", this.path);
    const n = this.fs.admitWrite(this.path, bytes.length);
    const at = this.mode.append ? f.size : this.#pos;
    if (at + n > f.size) f.resize(at + n);
    f.bytes.set(bytes.subarray(0, n), at);
    this.#pos = at + n;
    return n;
  }
  read(buffer: Uint8Array): Promise<number | null> {
    return Promise.resolve().then(() => {
      const n = this.readAtSync(buffer, this.#pos);
      return n;
    });
  }
  readAtSync(buffer: Uint8Array, position: number): number | null {
    const f = this.#file("read");
    if (!this.mode.read) throw fsError("EBADF", "read", this.path);
    if (position >= f.size) {
      this.#pos = position;
      return buffer.length ? null : 0;
    }
    const n = Math.min(buffer.length, f.size - position);
    buffer.set(f.bytes.subarray(position, position + n));
    this.#pos = position + n;
    return n;
  }
  truncate(length: number): Promise<void> {
    return Promise.resolve().then(() => this.truncateSync(length));
  }
  truncateSync(length: number): void {
    const f = this.#file("truncate", true);
    if (!this.mode.write) throw fsError("EINVAL", "truncate", this.path);
    if (length > f.size) this.fs.admitWrite(this.path, length - f.size, true);
    f.resize(length);
  }
  sync(): Promise<void> {
    return Promise.resolve().then(() => this.syncSync());
  }
  syncSync(): void {
    const f = this.#file("fsync", true);
    f.durable = f.current.slice();
    this.fs.counts.fsync++;
  }
  syncData(): Promise<void> {
    return this.sync();
  }
  stat(): Promise<FileStat> {
    return Promise.resolve().then(() => {
      if (this.#closed) throw fsError("EBADF", "stat", this.path);
      this.fs.enter("stat", this.path, false);
      return statOf(this.node);
    });
  }
  tryLock(): Promise<boolean> {
    return Promise.resolve().then(() => {
      const f = this.#file("lock");
      if (f.lockedBy && f.lockedBy !== this) return false;
      f.lockedBy = this;
      return true;
    });
  }
  close(): void {
    if (this.#closed) throw fsError("EBADF", "close", this.path);
    this.#closed = true;
    this.fs.handleClosed();
    if (this.node instanceof Inode && this.node.lockedBy === this) {
      this.node.lockedBy = null;
    }
  }
}

export function statOf(node: Node): FileStat {
  return node instanceof Inode
    ? { isFile: true, isDirectory: false, size: node.size, ino: node.id }
    : { isFile: false, isDirectory: true, size: 0, ino: node.id };
}

/**
 * The tree found after a power cut: per file and per directory entry changed since its
 * last fsync, `policy` decides what survives (see {@link PowerCutPolicy}).
 */
export function survivingTree(
  root: DirNode,
  policy: PowerCutPolicy,
  rnd: () => number,
): DirNode {
  const copies = new Map<Node, Node>();
  const pick = <T>(durable: T, current: T): T =>
    policy === "lose"
      ? durable
      : policy === "keep"
      ? current
      : rnd() < 0.5
      ? durable
      : current;
  const survive = (node: Node): Node => {
    const done = copies.get(node);
    if (done) return done;
    if (node instanceof Inode) {
      const copy = new Inode(node.id, node.mode);
      let bytes = node.durable;
      if (node.dirty()) {
        bytes = pick(node.durable, node.current);
        if (policy === "torn" && rnd() < 0.5) {
          // A torn write: the unsynced change reached the disk only in part.
          const c = node.current, d = node.durable;
          let common = 0;
          while (
            common < c.length && common < d.length && c[common] === d[common]
          ) common++;
          bytes = c.subarray(
            0,
            common + Math.floor(rnd() * (c.length - common + 1)),
          );
        }
      }
      copy.resize(bytes.length);
      copy.bytes.set(bytes);
      copy.durable = bytes.slice();
      copies.set(node, copy);
      return copy;
    }
    const dir = new DirNode(node.id);
    copies.set(node, dir);
    for (
      const name of new Set([...node.durable.keys(), ...node.entries.keys()])
    ) {
      const d = node.durable.get(name), c = node.entries.get(name);
      const kept = d === c ? c : pick(d, c);
      if (kept) dir.entries.set(name, survive(kept));
    }
    dir.durable = new Map(dir.entries);
    return dir;
  };
  return survive(root) as DirNode;
}
