/**
 * The server entry serves the embedded web app without reading the source tree: under
 * `deno run` with read access limited to its data directory, and (when `DENORT_BIN` is
 * set, since `deno compile` cannot download its runtime here) as the compiled executable
 * copied alone into an empty directory.
 */

import assert from "node:assert/strict";
import { compileExecutable } from "../scripts/compile.ts";

const MAIN = new URL("../server/main.ts", import.meta.url).pathname;
/** The shipped example policy: both entries take `--config` the same way. */
const EXAMPLE_CONFIG = new URL(
  "../server/policy/capra.config.example.json",
  import.meta.url,
).pathname;
const LISTEN = /serving .* on (http:\/\/[^/\s]+)\//;

async function serveAndFetch(cmd: string, args: string[], cwd: string) {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    let m: RegExpExecArray | null = null;
    while (!m) {
      const { value, done } = await reader.read();
      if (done) {
        const err = await new Response(child.stderr).text();
        throw new Error(`server exited early: ${out}${err}`);
      }
      out += value;
      m = LISTEN.exec(out);
    }
    const base = m[1];
    const page = await fetch(`${base}/`);
    const html = await page.text();
    const app = await fetch(`${base}/app.js`);
    const js = await app.text();
    const health = await (await fetch(`${base}/healthz`)).json();
    return { page, html, app, js, health };
  } finally {
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await child.status;
  }
}

function checkServed(r: Awaited<ReturnType<typeof serveAndFetch>>): void {
  assert.equal(r.page.status, 200);
  assert.match(r.page.headers.get("content-type") ?? "", /text\/html/);
  assert.match(r.html, /Capra todos/);
  assert.equal(r.app.status, 200);
  assert.ok(r.js.length > 1000, "the bundled app is served");
  assert.equal(r.health.status, "ok");
}

Deno.test("deno run server/main.ts serves the embedded app (no source reads)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "capra-serve-" });
  try {
    await Deno.copyFile(EXAMPLE_CONFIG, `${dir}/capra.config.json`);
    const r = await serveAndFetch(Deno.execPath(), [
      "run",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      "--allow-net=127.0.0.1",
      "--allow-env",
      MAIN,
      "serve",
      "--port",
      "0",
      "--dir",
      `${dir}/data`,
      "--config",
      `${dir}/capra.config.json`,
    ], dir);
    checkServed(r);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.log(
    "compile_test: skipping the executable check: DENORT_BIN is not set, and " +
      "`deno compile` cannot download its runtime without network",
  );
}

Deno.test({
  name: "deno task compile: one executable serves everything on its own",
  ignore: !denort,
  async fn() {
    const build = await Deno.makeTempDir({ prefix: "capra-compile-" });
    const alone = await Deno.makeTempDir({ prefix: "capra-alone-" });
    try {
      const exe = await compileExecutable(`${build}/capra`);
      await Deno.copyFile(exe, `${alone}/capra`);
      await Deno.chmod(`${alone}/capra`, 0o755);
      await Deno.copyFile(EXAMPLE_CONFIG, `${alone}/capra.config.json`);
      const r = await serveAndFetch(`${alone}/capra`, [
        "serve",
        "--port",
        "0",
        "--dir",
        `${alone}/data`,
        "--config",
        `${alone}/capra.config.json`,
      ], alone);
      checkServed(r);
      const files = [...Deno.readDirSync(alone)].map((e) => e.name).sort();
      assert.deepEqual(files, ["capra", "capra.config.json", "data"]);
    } finally {
      await Deno.remove(build, { recursive: true });
      await Deno.remove(alone, { recursive: true });
    }
  },
});
