/**
 * The demo app's service worker (served as `/sw.js`): keeps the app shell (the page,
 * its script and style) in a cache, so a reload without network, or with the server
 * down, still opens the app on the data it keeps in IndexedDB. Shell requests go to the
 * network first (a new version of the app shows up at once) and fall back to the cache
 * when the network fails or takes longer than `NETWORK_TIMEOUT_MS`; every good answer
 * refreshes the cache. Sync traffic (`/v1/…`) is never touched. The script is a classic
 * worker script (it exports nothing; its settings are in shell_config.ts).
 *
 * @module
 */

import {
  NETWORK_TIMEOUT_MS,
  SHELL_CACHE,
  SHELL_PATHS,
} from "./shell_config.ts";

// Minimal service worker types (the browser type-check has no "webworker" lib).
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface ServiceWorkerScope {
  readonly location: Location;
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  addEventListener(
    type: "install" | "activate",
    fn: (e: ExtendableEvent) => void,
  ): void;
  addEventListener(type: "fetch", fn: (e: FetchEvent) => void): void;
}

const sw = globalThis as unknown as ServiceWorkerScope;

/** The cache entry a same-origin GET maps to, or null when it is not shell. */
function shellPath(request: Request): string | null {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin) return null;
  // Only the app's own paths: JSON views (`/v1/…`) are never cached nor replaced.
  return (SHELL_PATHS as readonly string[]).includes(url.pathname)
    ? url.pathname
    : null;
}

async function networkFirst(request: Request, path: string): Promise<Response> {
  const cache = await caches.open(SHELL_CACHE);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), NETWORK_TIMEOUT_MS);
  });
  const network = fetch(request).then(async (res) => {
    if (res.ok) await cache.put(path, res.clone());
    return res;
  });
  network.catch(() => {}); // handled below, or moot once the cache answered
  try {
    const res = await Promise.race([network, timeout]);
    if (res) return res;
  } catch {
    /* no network or no server: the cache answers */
  } finally {
    clearTimeout(timer);
  }
  const cached = await cache.match(path);
  if (cached) return cached;
  return await network; // nothing cached yet: the network's own error
}

sw.addEventListener("install", (e) => {
  e.waitUntil(
    caches.open(SHELL_CACHE).then((c) => c.addAll([...SHELL_PATHS])).then(() =>
      sw.skipWaiting()
    ),
  );
});

sw.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys().then((names) =>
      Promise.all(
        names.filter((n) => n.startsWith("capra-shell-") && n !== SHELL_CACHE)
          .map((n) => caches.delete(n)),
      )
    ).then(() => sw.clients.claim()),
  );
});

sw.addEventListener("fetch", (e) => {
  const path = shellPath(e.request);
  if (path) e.respondWith(networkFirst(e.request, path));
});
