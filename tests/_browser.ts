/**
 * Helpers of the Chromium tests (npm:playwright-core on Debian's /usr/bin/chromium): the
 * launch flags, a skip reason when Chromium is missing, bounded waiting, and a secured
 * sync server on 127.0.0.1:0 serving a fresh bundle of the web app (or other assets)
 * through `createServer({ assets })`.
 */

import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
} from "playwright-core";
import { type Database, openDatabase } from "../mod.ts";
import { generateSigningKey } from "../lib/crypto/keys.ts";
import { RootSessionTrust } from "../lib/sync/root_trust.ts";
import type { Schema } from "../lib/schema/schema.ts";
import { createServer, type Server } from "../server/app.ts";
import type { WebAssets } from "../server/assets.ts";
import { buildAssets, type BuiltAssets } from "../scripts/bundle.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** Longest wait for a browser condition. */
export const WAIT_TIMEOUT_MS = 20_000;

/** Why the browser tests cannot run here, or null. */
export function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is missing (apt-get install chromium; .ci/run does it)`;
  }
}

/** Launches headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Polls `probe` until it returns a value (bounded by {@link WAIT_TIMEOUT_MS}). */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = WAIT_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A probe that never answers (a hung page) fails the wait too.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const v = await Promise.race([
      probe(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Timed out waiting for ${what}`)),
          Math.max(0, deadline - Date.now()) + 1000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens `url` in a new page of `ctx`, logging the page's errors. */
export async function openPage(
  ctx: BrowserContext,
  url: string,
  ready = () => "capra" in globalThis,
): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  page.on(
    "console",
    (m) => m.type() === "error" && console.error("page:", m.text()),
  );
  await page.goto(url);
  await page.waitForFunction(ready);
  return page;
}

let builtApp: Promise<BuiltAssets> | undefined;

/** The web app's assets, bundled once per test process from the sources. */
export async function appAssets(): Promise<WebAssets> {
  return (await (builtApp ??= buildAssets({ write: false }))).assets;
}

/** A secured server listening on 127.0.0.1 until `close()`. */
export interface BrowserTestServer extends Server {
  readonly url: string;
  readonly db: Database;
  /** Stops accepting and closes sockets; the database stays open. */
  stop(): Promise<void>;
  /** Serves again on the same port (after {@link stop}). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a root-keyed server on 127.0.0.1:0 serving `assets` (default: the web app). */
export async function startAppServer(
  options: { assets?: WebAssets; schemas?: readonly Schema[] } = {},
): Promise<BrowserTestServer> {
  const assets = options.assets ?? await appAssets();
  const { key: root } = await generateSigningKey();
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    memory: true,
    signer: root,
    trust,
    schemas: options.schemas ?? [],
  });
  const server = createServer({ db, assets, security: { root, trust } });
  let ac = new AbortController();
  let serving: Deno.HttpServer<Deno.NetAddr> | null = null;
  const listen = (port: number) =>
    new Promise<number>((resolve) => {
      serving = Deno.serve({
        hostname: "127.0.0.1",
        port,
        signal: ac.signal,
        onListen: (a) => resolve(a.port),
      }, server.app.fetch);
    });
  const port = await listen(0);
  const stop = async () => {
    if (!serving) return;
    server.hub?.closeAll();
    ac.abort();
    await serving.finished;
    serving = null;
  };
  return {
    ...server,
    db,
    url: `http://127.0.0.1:${port}`,
    stop,
    async restart() {
      if (serving) return;
      ac = new AbortController();
      await listen(port);
    },
    async close() {
      await stop();
      await db.close();
    },
  };
}
