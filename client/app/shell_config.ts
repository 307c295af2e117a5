/**
 * Settings of the demo app's offline shell (the service worker, sw.ts), apart from the
 * worker script so that the script exports nothing.
 *
 * @module
 */

/** Name of the shell cache (bump to drop what older versions cached). */
export const SHELL_CACHE = "capra-shell-v1";
/** What the app needs to start. */
export const SHELL_PATHS = ["/", "/app.js", "/app.css"] as const;
/** A shell request that has no answer after this long is served from the cache. */
export const NETWORK_TIMEOUT_MS = 3000;
