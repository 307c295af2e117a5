/**
 * Tested docs: every `ts`/`tsx` code block of README.md and of examples/**.md is
 * type-checked and run, so the docs cannot drift from the code (see tests/_doc_blocks.ts
 * for how blocks are grouped into programs).
 *
 * - Deno programs run as `deno run --check` in a fresh temporary directory (so
 *   `./data` is theirs) with the repository's deno.json (`@capra/capra` resolves to this
 *   package), and must exit with code 0 on their own within {@link RUN_TIMEOUT_MS}: a
 *   snippet that leaves a timer, a socket or a worker behind fails.
 * - A program that talks to `http://127.0.0.1:8787` without serving it gets a secured
 *   Capra server with the user system (open sign-up, as the demo) on a free port, and the port in its text is replaced; one that serves
 *   (`Deno.serve`) gets a free port in place of 8787.
 * - Browser programs are type-checked with client/deno.browser.json, bundled like an app
 *   and run in Chromium on a page served by a Capra server; they must finish without a
 *   page error (skipped when Chromium is missing).
 */

import assert from "node:assert/strict";
import { type DocProgram, docPrograms } from "./_doc_blocks.ts";
import { listen } from "./_sync_server.ts";
import { userServer } from "./_users.ts";
import { chromiumMissing, launchChromium, startAppServer } from "./_browser.ts";
import { bundleModule } from "../scripts/bundle.ts";

/** Longest run of one program. */
const RUN_TIMEOUT_MS = 60_000;
const ROOT = new URL("../", import.meta.url);
const CONFIG = new URL("deno.json", ROOT).pathname;
const BROWSER_CONFIG = new URL("client/deno.browser.json", ROOT).pathname;
const DOC_PORT = "8787";

async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir, ROOT))) {
      const rel = `${dir}${e.name}`;
      if (e.isDirectory && e.name !== "dist") await walk(`${rel}/`);
      else if (e.isFile && e.name.endsWith(".md")) files.push(rel);
    }
  };
  await walk("examples/");
  return files;
}

const programs: DocProgram[] = [];
for (const f of await markdownFiles()) {
  programs.push(
    ...docPrograms(f, await Deno.readTextFile(new URL(f, ROOT))),
  );
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function runDeno(p: DocProgram, source: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "capra-doc-" });
  try {
    const file = `${dir}/snippet.${p.lang}`;
    await Deno.writeTextFile(file, source);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--check", "-A", "--config", CONFIG, file],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* ended meanwhile */ }
    }, RUN_TIMEOUT_MS);
    const out = await child.output().finally(() => clearTimeout(timer));
    const text = new TextDecoder();
    assert.equal(
      out.signal,
      null,
      `${p.where} did not end by itself within ${RUN_TIMEOUT_MS} ms`,
    );
    assert.equal(
      out.code,
      0,
      `${p.where} failed:\n${text.decode(out.stderr)}${
        text.decode(out.stdout)
      }`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function runInDeno(p: DocProgram): Promise<void> {
  if (!p.source.includes(DOC_PORT)) return await runDeno(p, p.source);
  if (p.source.includes("Deno.serve")) {
    return await runDeno(
      p,
      p.source.replaceAll(DOC_PORT, String(freePort())),
    );
  }
  // Like `deno task start`: open sign-up, shared `/list/*` for their members.
  const server = await userServer();
  const l = await listen(server);
  try {
    const port = new URL(l.url).port;
    await runDeno(p, p.source.replaceAll(DOC_PORT, port));
  } finally {
    await l.close();
    await server.db.close();
  }
}

const DONE = "\nObject.assign(globalThis, { docSnippetDone: true });\n";

async function runInBrowser(p: DocProgram): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "capra-doc-" });
  try {
    const file = `${dir}/snippet.${p.lang}`;
    await Deno.writeTextFile(file, p.source + DONE);
    const check = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--config", BROWSER_CONFIG, file],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.ok(
      check.success,
      `${p.where} does not type-check:\n${
        new TextDecoder().decode(check.stderr)
      }`,
    );
    const js = await bundleModule(file, `${dir}/snippet.js`);
    const server = await startAppServer({
      assets: {
        "/": {
          type: "text/html; charset=utf-8",
          body:
            '<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/snippet.js"></script>',
        },
        "/snippet.js": { type: "text/javascript; charset=utf-8", body: js },
      },
    });
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.waitForFunction(
        () => "docSnippetDone" in globalThis,
        undefined,
        { timeout: RUN_TIMEOUT_MS },
      ).catch(() => {});
      assert.deepEqual(errors, [], `${p.where} threw in the browser`);
      assert.ok(
        await page.evaluate(() => "docSnippetDone" in globalThis),
        `${p.where} did not finish in the browser`,
      );
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noChromium = chromiumMissing();
if (noChromium) console.log(`docs_test: browser blocks skipped: ${noChromium}`);

Deno.test("docs: the README has code blocks to test", () => {
  assert.ok(programs.some((p) => p.where.startsWith("README.md")));
});

for (const p of programs) {
  Deno.test({
    name: `docs: ${p.where} (${p.runtime}) type-checks and runs as written`,
    ignore: p.runtime === "browser" && noChromium !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => p.runtime === "deno" ? runInDeno(p) : runInBrowser(p),
  });
}
