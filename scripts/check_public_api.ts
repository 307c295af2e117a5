/**
 * Checks that nothing marked `@internal` is reachable from the public entry points (the
 * `exports` of deno.json): starting from each entry's exports, it follows every type the
 * documentation of a reachable symbol refers to (parameters, results, fields, base
 * types), across modules, and reports each reachable declaration or member that carries
 * an `@internal` tag. TypeScript `private` members are not reachable and not followed.
 *
 * Runs `deno doc --json --private` over lib/, server/ and client/; exits 1 listing the
 * findings. `tests/public_api_test.ts` runs it as part of `deno task test`.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Where a declaration lives. */
interface Location {
  readonly filename: string;
  readonly byteIndex: number;
}

/** A declaration as `deno doc --json` gives it (only the fields used here). */
interface DocDeclaration {
  readonly location: Location;
  readonly declarationKind: string;
  readonly kind: string;
  readonly def?: Record<string, unknown>;
  readonly jsDoc?: { readonly tags?: readonly { readonly kind: string }[] };
}

interface DocNode {
  readonly imports?: readonly {
    readonly importedName: string;
    readonly originalName: string;
    readonly src: string;
  }[];
  readonly symbols?: readonly {
    readonly name: string;
    readonly declarations: readonly DocDeclaration[];
  }[];
}

/** A reachable `@internal` declaration or member. */
export interface InternalFinding {
  /** `Symbol` or `Symbol.member`. */
  readonly name: string;
  /** `path:line` of the declaration. */
  readonly where: string;
  /** The entry point it is reachable from. */
  readonly entry: string;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await sourceFiles(p));
    else if (/\.ts$/.test(e.name) && !/(_test|_test_utils)\.ts$/.test(e.name)) {
      if (!p.endsWith("assets_embedded.ts")) out.push(p);
    }
  }
  return out;
}

/** The public entry points of the package, from deno.json `exports`. */
async function entryPoints(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  const exports = config.exports;
  const paths = typeof exports === "string"
    ? [exports]
    : Object.values(exports);
  return (paths as string[]).map((p) => resolve(root, p));
}

/** Runs the check; returns the findings (empty when the public API is clean). */
export async function findReachableInternals(): Promise<InternalFinding[]> {
  const entries = await entryPoints();
  const files = [
    ...entries,
    ...await sourceFiles(join(root, "lib")),
    ...await sourceFiles(join(root, "server")),
    ...await sourceFiles(join(root, "client")),
  ];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", "--private", ...new Set(files)],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno doc failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, DocNode>;
  };
  const nodes = doc.nodes;
  const byLocation = new Map<string, { name: string; d: DocDeclaration }>();
  for (const node of Object.values(nodes)) {
    for (const s of node.symbols ?? []) {
      for (const d of s.declarations) {
        byLocation.set(`${d.location.filename}@${d.location.byteIndex}`, {
          name: s.name,
          d,
        });
      }
    }
  }
  const findings: InternalFinding[] = [];
  const seen = new Set<DocDeclaration>();

  /** Declarations named `name` in `file`: its own symbol, or what it imports. */
  const resolveName = (file: string, name: string, depth = 0) => {
    const found: { name: string; d: DocDeclaration; file: string }[] = [];
    if (depth > 20) return found;
    const node = nodes[file];
    if (!node) return found;
    const sym = node.symbols?.find((s) => s.name === name);
    if (sym) {
      for (const d of sym.declarations) found.push({ name, d, file });
      return found;
    }
    const imp = node.imports?.find((i) => i.importedName === name);
    if (imp) found.push(...resolveName(imp.src, imp.originalName, depth + 1));
    return found;
  };

  const visit = (
    name: string,
    d: DocDeclaration,
    file: string,
    entry: string,
  ): void => {
    if (seen.has(d)) return;
    seen.add(d);
    if (d.kind === "reference") {
      const target = d.def?.target as Location | undefined;
      const hit = target &&
        byLocation.get(`${target.filename}@${target.byteIndex}`);
      if (hit) visit(name, hit.d, target.filename, entry);
      return;
    }
    if (d.kind === "import") return;
    const where = `${relative(root, new URL(file).pathname)}:${
      (d.location as { line?: number }).line ?? 0
    }`;
    if (isInternal(d)) findings.push({ name, where, entry });
    walk(d.def, name);

    function walk(value: unknown, path: string): void {
      if (Array.isArray(value)) {
        for (const v of value) walk(v, path);
        return;
      }
      if (!value || typeof value !== "object") return;
      const o = value as Record<string, unknown>;
      if (o.accessibility === "private") return;
      const member = typeof o.name === "string" && "location" in o
        ? `${name}.${o.name}`
        : path;
      if (member !== path && isInternal(o as unknown as DocDeclaration)) {
        findings.push({ name: member, where, entry });
      }
      if (o.kind === "typeRef" && o.value && typeof o.value === "object") {
        followTypeRef(o.value as Record<string, unknown>);
      }
      for (const key of ["extends", "implements"]) {
        if (typeof o[key] === "string") followName(o[key] as string);
      }
      for (const [k, v] of Object.entries(o)) {
        if (k !== "location" && k !== "jsDoc") walk(v, member);
      }
    }

    function followName(typeName: string): void {
      const first = typeName.split(".")[0];
      for (const hit of resolveName(file, first)) {
        visit(hit.name, hit.d, hit.file, entry);
      }
    }

    function followTypeRef(ref: Record<string, unknown>): void {
      const typeName = String(ref.typeName ?? "");
      const res = ref.resolution as
        | { kind: string; specifier?: string; name?: string }
        | undefined;
      if (res?.kind === "import" && res.specifier?.startsWith(".")) {
        const target = new URL(res.specifier, file).href;
        for (const hit of resolveName(target, res.name ?? typeName)) {
          visit(hit.name, hit.d, hit.file, entry);
        }
      } else if (!res || res.kind === "local") followName(typeName);
    }
  };

  for (const entry of entries) {
    const url = new URL(`file://${entry}`).href;
    for (const s of nodes[url]?.symbols ?? []) {
      for (const d of s.declarations) {
        if (d.declarationKind === "export") {
          visit(s.name, d, url, relative(root, entry));
        }
      }
    }
  }
  return findings;
}

function isInternal(d: { jsDoc?: DocDeclaration["jsDoc"] }): boolean {
  return d.jsDoc?.tags?.some((t) => t.kind === "internal") ?? false;
}

if (import.meta.main) {
  const findings = await findReachableInternals();
  if (findings.length) {
    console.error(
      `@internal reachable from the public entry points:\n  ${
        findings.map((f) => `${f.name} (${f.where}) from ${f.entry}`).join(
          "\n  ",
        )
      }`,
    );
    Deno.exit(1);
  }
  console.log("Public API check passed: nothing @internal is reachable");
}
