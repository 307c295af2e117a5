/**
 * Checks the dependency direction of the layers (DESIGN.md section 1):
 * - lib/ imports neither server/, client/ nor mod.ts, and uses no `Deno.*` or `node:`
 *   modules outside its Deno-only modules (file storage `lib/**\/file*`, the verifier
 *   pool `lib/**\/deno_*`) and tests;
 * - nothing in lib/ but Deno-only modules imports a Deno-only module;
 * - server/ and client/ never import each other; client/ never reaches file storage
 *   or mod.ts (which opens files), and uses no `Deno.*` (the browser type-check in
 *   `deno task test` proves the same with the compiler).
 * Exits 1 listing every violation.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;

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

const isTest = (p: string) => /_test\.ts$/.test(p);
const isFileModule = (p: string) => /^lib\/(.*\/)?(file|deno_)[^/]*$/.test(p);

const violations: string[] = [];
for (const layer of ["lib", "server", "client"]) {
  for await (const abs of walk(join(root, layer))) {
    const file = relative(root, abs);
    const src = stripComments(await Deno.readTextFile(abs));
    for (const m of src.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith(".")) continue;
      const target = relative(root, resolve(dirname(abs), spec));
      if (layer === "lib") {
        if (/^(server|client)\//.test(target) || target === "mod.ts") {
          violations.push(
            `${file} imports ${target}: lib/ must not depend on ${
              target.split("/")[0]
            }`,
          );
        }
        if (isFileModule(target) && !isFileModule(file) && !isTest(file)) {
          violations.push(
            `${file} imports ${target}: only mod.ts and server/ may use Deno-only modules`,
          );
        }
      }
      if (layer === "server" && target.startsWith("client/") && !isTest(file)) {
        violations.push(
          `${file} imports ${target}: server/ and client/ must not import each other`,
        );
      }
      if (layer === "client") {
        if (target.startsWith("server/")) {
          violations.push(
            `${file} imports ${target}: server/ and client/ must not import each other`,
          );
        }
        if (isFileModule(target) || target === "mod.ts") {
          violations.push(
            `${file} imports ${target}: the browser client must not reach Deno file storage`,
          );
        }
      }
    }
    if (
      layer === "lib" && !isFileModule(file) && !isTest(file) &&
      (/\bDeno\./.test(src) || /from\s*["']node:/.test(src))
    ) {
      violations.push(
        `${file} uses Deno.* or node: modules: lib/ must stay platform-neutral`,
      );
    }
    if (layer === "client" && /\bDeno\./.test(src)) {
      violations.push(`${file} uses Deno.*: client/ runs in browsers`);
    }
  }
}

if (violations.length) {
  console.error(`Import direction check failed:\n  ${violations.join("\n  ")}`);
  Deno.exit(1);
}
console.log("Import direction check passed");
