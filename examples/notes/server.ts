/**
 * The notes app's server: a Capra sync server embedded in a Deno program, serving the
 * built app (`createServer({ assets })`), collecting old history every 6 hours
 * (`gc`), and shutting down cleanly.
 *
 * Usage: `deno run -A examples/notes/server.ts [--port 8788] [--dir ./notes-data]`
 * (builds the app first, then open http://127.0.0.1:8788/).
 *
 * @module
 */

import { type Database, openDatabase, RootSessionTrust } from "@capra/capra";
import {
  createServer,
  loadAssetDir,
  loadOrCreateRootKey,
} from "@capra/capra/server";
import { noteSchema } from "./schema.ts";
import { buildNotes } from "./build.ts";

/** Options of {@link startNotesServer}. */
export interface NotesServerOptions {
  /** Data directory (the root key is kept beside it). */
  readonly dir: string;
  /** Directory of the built app (see build.ts). */
  readonly assetsDir: string;
  readonly hostname?: string;
  /** 0 picks a free port. */
  readonly port?: number;
}

/** A running notes server. */
export interface NotesServer {
  readonly url: string;
  /** The server's database. */
  readonly db: Database;
  /** Stops accepting, closes sockets, stops GC, flushes and closes the database. */
  close(): Promise<void>;
}

/** Starts the server. */
export async function startNotesServer(
  options: NotesServerOptions,
): Promise<NotesServer> {
  const { key: root } = await loadOrCreateRootKey(`${options.dir}.root.key`);
  const trust = new RootSessionTrust(root.publicKey);
  const db = await openDatabase({
    dir: options.dir,
    signer: root,
    trust,
    schemas: [noteSchema],
  });
  const { app, hub, gc } = createServer({
    db,
    security: { root, trust },
    assets: await loadAssetDir(options.assetsDir),
    gc: { retainMs: 30 * 86_400_000 }, // keep 30 days of history
  });
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8788,
    signal: ac.signal,
    onListen: ({ port }) => resolve(port),
  }, app.fetch);
  const port = await listening;
  return {
    url: `http://${options.hostname ?? "127.0.0.1"}:${port}`,
    db,
    async close() {
      hub?.closeAll();
      ac.abort();
      await server.finished;
      await gc?.stop();
      await db.close();
    },
  };
}

if (import.meta.main) {
  const arg = (flag: string) => {
    const i = Deno.args.indexOf(flag);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const server = await startNotesServer({
    dir: arg("--dir") ?? "./notes-data",
    assetsDir: await buildNotes(),
    port: Number(arg("--port") ?? 8788),
  });
  console.log(`notes: open ${server.url}/`);
  const stop = () => server.close().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
