/**
 * Bundles the browser client (`client/mod.ts`) and the web app (`client/app/`) with
 * `deno bundle` into minified ES modules, embeds them with the app's HTML and CSS into
 * the generated module `server/assets_embedded.ts` (so the server and the compiled
 * executable never read the source tree at runtime), and reports min + gzip sizes.
 * The module records a digest of every source file the bundles are built from (the
 * module graphs of both entries, plus the HTML and CSS): `tests/assets_test.ts` fails
 * when the committed module was built from other sources (a client change without a
 * re-bundle). The digest, not the output, is compared because `deno bundle --minify`
 * does not always pick the same short names; for the same reason an up-to-date module
 * is left untouched.
 *
 * Usage: `deno task bundle` (add `--json` for machine-readable sizes, `--check` to only
 * verify that the committed module is up to date: exit 1 when not). To bundle an app
 * of your own (TypeScript or TSX, React included): `deno task bundle --entry
 * examples/notes/app.tsx --out examples/notes/dist/app.js` (what it runs: `deno
 * bundle --platform browser --minify --config client/deno.browser.json -o OUT ENTRY`).
 *
 * For the benchmark: `bundleSizes()` bundles into a temporary directory, writes nothing
 * and returns `{ clientBytes, clientGzipBytes, appBytes, appGzipBytes }`.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
/** Where the generated asset module goes. */
export const EMBEDDED_MODULE = join(root, "server/assets_embedded.ts");
/** Size target for the client library, gzip bytes (issue 5). */
export const CLIENT_GZIP_TARGET_BYTES = 60 * 1024;

/** Sizes of one bundled file. */
export interface BundleSize {
  readonly file: string;
  readonly minBytes: number;
  readonly gzipBytes: number;
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** Bundles one entry (path relative to the repository, or absolute) for browsers, minified. */
export async function bundleModule(
  entry: string,
  out: string,
): Promise<Uint8Array> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      "--config",
      join(root, "client/deno.browser.json"),
      "-o",
      out,
      resolve(root, entry),
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const res = await cmd.output();
  if (!res.success) {
    throw new Error(
      `deno bundle ${entry} failed:\n${new TextDecoder().decode(res.stderr)}`,
    );
  }
  return await Deno.readFile(out);
}

/** Sizes of the client library and of the web app bundles, minified (+ gzip). */
export interface BundleSizes {
  readonly clientBytes: number;
  readonly clientGzipBytes: number;
  readonly appBytes: number;
  readonly appGzipBytes: number;
}

/** A served asset: content type and body. */
export interface Asset {
  readonly type: string;
  readonly body: string;
}

/** Entries bundled into `/capra.js`, `/app.js` and `/sw.js` (the offline shell). */
const ENTRIES = [
  "client/mod.ts",
  "client/app/main.ts",
  "client/app/sw.ts",
] as const;
/** Files embedded as they are. */
const STATIC_FILES = ["client/app/index.html", "client/app/app.css"] as const;

/**
 * SHA-256 (hex) over the path and content of every local module the bundles are built
 * from, and of the static files: changes whenever a re-bundle is needed.
 */
export async function sourceDigest(): Promise<string> {
  const files = new Set<string>(STATIC_FILES.map((f) => join(root, f)));
  for (const entry of ENTRIES) {
    const res = await new Deno.Command(Deno.execPath(), {
      args: [
        "info",
        "--json",
        "--config",
        join(root, "client/deno.browser.json"),
        resolve(root, entry),
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (!res.success) {
      throw new Error(
        `deno info ${entry} failed:\n${new TextDecoder().decode(res.stderr)}`,
      );
    }
    const graph = JSON.parse(new TextDecoder().decode(res.stdout)) as {
      modules: { local?: string }[];
    };
    for (const m of graph.modules) if (m.local) files.add(m.local);
  }
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const f of [...files].sort()) {
    parts.push(enc.encode(`${relative(root, f)}\0`), await Deno.readFile(f));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length + 8, 0));
  let o = 0;
  for (const p of parts) {
    new DataView(all.buffer).setBigUint64(o, BigInt(p.length));
    all.set(p, o + 8);
    o += p.length + 8;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The digest recorded in a generated module's source ("" when none). */
export function recordedDigest(moduleSource: string): string {
  return /SOURCE_DIGEST = "([0-9a-f]+)"/.exec(moduleSource)?.[1] ?? "";
}

function renderModule(assets: Record<string, Asset>, digest: string): string {
  const lines = [
    "// Generated by scripts/bundle.ts: do not edit. Run `deno task bundle`.",
    "/** SHA-256 of the sources these assets were built from (tests/assets_test.ts). */",
    `export const SOURCE_DIGEST = ${JSON.stringify(digest)};`,
    "/** Embedded web assets by URL path. */",
    "export const EMBEDDED_ASSETS: Readonly<",
    "  Record<string, { readonly type: string; readonly body: string }>",
    "> = {",
  ];
  for (const [path, a] of Object.entries(assets)) {
    lines.push(`  ${JSON.stringify(path)}: {`);
    lines.push(`    type: ${JSON.stringify(a.type)},`);
    lines.push(`    body: ${JSON.stringify(a.body)},`);
    lines.push("  },");
  }
  lines.push("};", "");
  return lines.join("\n");
}

/** What {@link buildAssets} built. */
export interface BuiltAssets {
  readonly client: BundleSize;
  readonly app: BundleSize;
  /** The assets by URL path, as embedded. */
  readonly assets: Readonly<Record<string, Asset>>;
  /** The generated module's source. */
  readonly source: string;
  /** Digest of the sources (see {@link sourceDigest}). */
  readonly digest: string;
  /** True when the module on disk was built from other sources (or is missing). */
  readonly changed: boolean;
}

/**
 * Builds the bundles and returns them with their sizes; writes the embedded module when
 * it was built from other sources, unless `write` is false.
 */
export async function buildAssets(
  options: { readonly write?: boolean } = {},
): Promise<BuiltAssets> {
  const tmp = await Deno.makeTempDir({ prefix: "capra-bundle-" });
  try {
    const digest = await sourceDigest();
    const lib = await bundleModule(ENTRIES[0], join(tmp, "capra.js"));
    const app = await bundleModule(ENTRIES[1], join(tmp, "app.js"));
    const sw = await bundleModule(ENTRIES[2], join(tmp, "sw.js"));
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const html = await Deno.readTextFile(join(root, "client/app/index.html"));
    const css = await Deno.readTextFile(join(root, "client/app/app.css"));
    const js = "text/javascript; charset=utf-8";
    const assets: Record<string, Asset> = {
      "/": { type: "text/html; charset=utf-8", body: html },
      "/app.css": { type: "text/css; charset=utf-8", body: css },
      "/app.js": { type: js, body: text(app) },
      "/capra.js": { type: js, body: text(lib) },
      "/sw.js": { type: js, body: text(sw) },
    };
    const source = renderModule(assets, digest);
    const old = await Deno.readTextFile(EMBEDDED_MODULE).catch(() => "");
    const changed = recordedDigest(old) !== digest;
    if (changed && options.write !== false) {
      await Deno.writeTextFile(EMBEDDED_MODULE, source);
    }
    return {
      assets,
      source,
      digest,
      client: {
        file: "capra.js",
        minBytes: lib.length,
        gzipBytes: await gzipSize(lib),
      },
      app: {
        file: "app.js",
        minBytes: app.length,
        gzipBytes: await gzipSize(app),
      },
      changed,
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * Sizes of the client library (`client/mod.ts`) and of the web app, minified and
 * minified + gzip, in bytes. Writes nothing (bench: "client bundle (min+gzip)").
 */
export async function bundleSizes(): Promise<BundleSizes> {
  const r = await buildAssets({ write: false });
  return {
    clientBytes: r.client.minBytes,
    clientGzipBytes: r.client.gzipBytes,
    appBytes: r.app.minBytes,
    appGzipBytes: r.app.gzipBytes,
  };
}

/** The value following `flag` in the arguments, if any. */
function flagValue(flag: string): string | undefined {
  const i = Deno.args.indexOf(flag);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main && Deno.args.includes("--entry")) {
  const entry = flagValue("--entry");
  const out = flagValue("--out");
  if (!entry || !out) {
    console.error("Usage: deno task bundle --entry APP.tsx --out DIST/app.js");
    Deno.exit(2);
  }
  await Deno.mkdir(dirname(resolve(out)), { recursive: true });
  const bytes = await bundleModule(
    relative(root, resolve(entry)),
    resolve(out),
  );
  console.log(
    `${out}: ${(bytes.length / 1024).toFixed(1)} KB min, ${
      ((await gzipSize(bytes)) / 1024).toFixed(1)
    } KB min+gzip`,
  );
} else if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const r = await buildAssets({ write: !check });
  if (check) {
    if (r.changed) {
      console.error(
        "server/assets_embedded.ts is out of date: run `deno task bundle`",
      );
      Deno.exit(1);
    }
    console.log("server/assets_embedded.ts is up to date");
  } else if (Deno.args.includes("--json")) {
    const { assets: _, source: __, digest: ___, ...sizes } = r;
    console.log(JSON.stringify(sizes));
  } else {
    for (const s of [r.client, r.app]) {
      console.log(
        `${s.file}: ${(s.minBytes / 1024).toFixed(1)} KB min, ${
          (s.gzipBytes / 1024).toFixed(1)
        } KB min+gzip`,
      );
    }
    console.log(
      `client library target ≤ ${CLIENT_GZIP_TARGET_BYTES / 1024} KB gzip: ${
        r.client.gzipBytes <= CLIENT_GZIP_TARGET_BYTES ? "met" : "MISSED"
      }; ${r.changed ? "updated" : "unchanged"} server/assets_embedded.ts`,
    );
  }
}
