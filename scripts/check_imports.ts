/**
 * Checks the dependency rules of the code (ARCHITECTURE.md, "Rules the import check
 * enforces"; DESIGN.md section 1):
 *
 * - lib/ imports neither server/, client/, mod.ts nor testing.ts, and uses no `Deno.*` or
 *   `node:` modules outside its Deno-only modules (file storage `lib/**\/file*`, the
 *   verifier pool `lib/**\/deno_*`) and tests;
 * - nothing in lib/ but Deno-only modules imports a Deno-only module;
 * - lib/ folders are layered ({@link LAYERS}): a folder imports only folders of lower
 *   layers, so lib/core sits below lib/query and lib/sync, and lib/database (which wires
 *   them together) above both;
 * - server/ and client/ never import each other; client/ never reaches file storage,
 *   mod.ts or testing.ts (which open files), and uses no `Deno.*` (the browser type-check
 *   in `deno task test` proves the same with the compiler);
 * - tests/ and server/cli/ reach the engine's internals (lib/core, lib/query,
 *   lib/database) only through the public entry (mod.ts) or the testing entry
 *   (testing.ts), never directly;
 * - no import cycle, value or type, among mod.ts, testing.ts, lib/, server/ and client/.
 *
 * Exits 1 listing every violation.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";

/**
 * Layers of lib/, lowest first. A file may import files of its own folder and of folders
 * in lower layers only; folders in one layer do not import each other.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["lib/encoding", "lib/path.ts", "lib/order"],
  ["lib/crypto", "lib/schema", "lib/storage"],
  ["lib/idset", "lib/merge"],
  ["lib/commit"],
  ["lib/core"],
  ["lib/query", "lib/sync"],
  ["lib/database"],
];

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;
const ENTRIES = ["mod.ts", "testing.ts"];
/** The engine's internals: tests and the CLI reach them through mod.ts or testing.ts. */
const ENGINE = /^lib\/(core|query|database)\//;

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* walk(p);
    else if (/\.(ts|tsx|js)$/.test(e.name)) yield p;
  }
}

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(
    /(^|[^:])\/\/.*$/gm,
    "$1",
  );
}

const isTest = (p: string) =>
  /(^|\/)_?[^/]*_test\.ts$|\/_test[^/]*\.ts$/.test(p);
const isFileModule = (p: string) => /^lib\/(.*\/)?(file|deno_)[^/]*$/.test(p);

/** The lib/ group (folder, or root file) of a path, or undefined outside lib/. */
function groupOf(path: string): string | undefined {
  const m = /^lib\/([^/]+)(\/)?/.exec(path);
  if (!m) return undefined;
  return m[2] ? `lib/${m[1]}` : path;
}

function layerOf(group: string): number {
  return LAYERS.findIndex((layer) => layer.includes(group));
}

/** The relative imports of every checked file. */
async function importGraph(): Promise<Map<string, string[]>> {
  const files: string[] = [];
  for (const entry of ENTRIES) {
    try {
      await Deno.stat(join(root, entry));
      files.push(join(root, entry));
    } catch { /* absent */ }
  }
  for (const dir of ["lib", "server", "client", "tests"]) {
    for await (const abs of walk(join(root, dir))) files.push(abs);
  }
  const graph = new Map<string, string[]>();
  for (const abs of files) {
    const file = relative(root, abs);
    const src = stripComments(await Deno.readTextFile(abs));
    const targets: string[] = [];
    for (const m of src.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith(".")) continue;
      targets.push(relative(root, resolve(dirname(abs), spec)));
    }
    graph.set(file, targets);
    sources.set(file, src);
  }
  return graph;
}

const sources = new Map<string, string>();
const violations: string[] = [];
const graph = await importGraph();

for (const [file, targets] of graph) {
  const top = file.split("/")[0];
  for (const target of targets) {
    if (top === "lib") checkLib(file, target);
    if (top === "server" && target.startsWith("client/") && !isTest(file)) {
      violations.push(
        `${file} imports ${target}: server/ and client/ must not import each other`,
      );
    }
    if (top === "client") {
      if (target.startsWith("server/")) {
        violations.push(
          `${file} imports ${target}: server/ and client/ must not import each other`,
        );
      }
      if (isFileModule(target) || ENTRIES.includes(target)) {
        violations.push(
          `${file} imports ${target}: the browser client must not reach Deno file storage`,
        );
      }
    }
    if (
      (top === "tests" || file.startsWith("server/cli/")) &&
      ENGINE.test(target)
    ) {
      violations.push(
        `${file} imports ${target}: tests and the CLI reach lib/core, lib/query and lib/database through mod.ts or testing.ts`,
      );
    }
  }
  const src = sources.get(file)!;
  if (
    top === "lib" && !isFileModule(file) && !isTest(file) &&
    (/\bDeno\./.test(src) || /from\s*["']node:/.test(src))
  ) {
    violations.push(
      `${file} uses Deno.* or node: modules: lib/ must stay platform-neutral`,
    );
  }
  if (top === "client" && /\bDeno\./.test(src)) {
    violations.push(`${file} uses Deno.*: client/ runs in browsers`);
  }
}

function checkLib(file: string, target: string): void {
  if (/^(server|client)\//.test(target) || ENTRIES.includes(target)) {
    violations.push(
      `${file} imports ${target}: lib/ must not depend on ${
        target.split("/")[0]
      }`,
    );
    return;
  }
  if (isFileModule(target) && !isFileModule(file) && !isTest(file)) {
    violations.push(
      `${file} imports ${target}: only mod.ts and server/ may use Deno-only modules`,
    );
  }
  const from = groupOf(file)!, to = groupOf(target);
  if (!to || from === to) return;
  const a = layerOf(from), b = layerOf(to);
  if (a < 0 || b < 0) {
    violations.push(
      `${file} imports ${target}: ${
        a < 0 ? from : to
      } has no layer: add it to LAYERS in scripts/check_imports.ts`,
    );
  } else if (b >= a) {
    violations.push(
      `${file} imports ${target}: ${from} (layer ${a}) must not depend on ${to} (layer ${b}); dependencies point down`,
    );
  }
}

// Cycles: strongly connected components of the import graph (Tarjan, iterative).
for (const cycle of findCycles(graph)) {
  violations.push(`import cycle: ${cycle.join(" -> ")}`);
}

/** One cycle per strongly connected component with more than one file (or a self-import). */
function findCycles(g: Map<string, string[]>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const onStack = new Set<string>(), stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of g.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; i: number }[] = [{ node: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1];
      const edges = (g.get(top.node) ?? []).filter((t) => g.has(t));
      if (top.i < edges.length) {
        const t = edges[top.i++];
        if (!index.has(t)) {
          index.set(t, next);
          low.set(t, next++);
          stack.push(t);
          onStack.add(t);
          work.push({ node: t, i: 0 });
        } else if (onStack.has(t)) {
          low.set(top.node, Math.min(low.get(top.node)!, index.get(t)!));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) !== index.get(top.node)) continue;
      const component: string[] = [];
      let n: string;
      do {
        n = stack.pop()!;
        onStack.delete(n);
        component.push(n);
      } while (n !== top.node);
      const selfLoop = (g.get(top.node) ?? []).includes(top.node);
      if (component.length > 1 || selfLoop) {
        out.push(cycleWithin(g, new Set(component), top.node));
      }
    }
  }
  return out;
}

/** A shortest path from `start` back to itself inside `component`. */
function cycleWithin(
  g: Map<string, string[]>,
  component: Set<string>,
  start: string,
): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    for (const t of g.get(queue[q]) ?? []) {
      if (!component.has(t)) continue;
      if (t === start) {
        const path = [start];
        for (let n = queue[q]; n !== start; n = prev.get(n)!) path.push(n);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!prev.has(t)) {
        prev.set(t, queue[q]);
        queue.push(t);
      }
    }
  }
  return [start, start];
}

if (violations.length) {
  console.error(`Import check failed:\n  ${violations.join("\n  ")}`);
  Deno.exit(1);
}
console.log(
  `Import check passed: ${graph.size} files, layers and direction kept, no cycles`,
);
