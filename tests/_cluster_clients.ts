/**
 * Test helper: Capra client replicas connected to cluster members, the commits they
 * created (the independent record of what must reach everyone), and fresh pullers that
 * read exactly what one member holds.
 */
import { type Database, openDatabase, SyncClient } from "../mod.ts";
import type { CommitId } from "../lib/commit/commit.ts";
import { EVERYTHING, snapshot } from "./_helpers.ts";

/** A client replica attached to one member. */
export class ClusterClient {
  /** Ids of every commit this replica created. */
  readonly created = new Set<CommitId>();
  client: SyncClient | null = null;

  private constructor(readonly db: Database, public url: string) {
    db.onCommits((_repo, nodes) => {
      for (const n of nodes) this.created.add(n.commit.id);
    });
  }

  /** A replica (clock skewed by `skewMs`) connected to `url`, following `repos`. */
  static async open(
    url: string,
    repos: readonly string[],
    skewMs = 0,
  ): Promise<ClusterClient> {
    const db = await openDatabase({
      memory: true,
      schemas: [EVERYTHING],
      clock: () => Date.now() + skewMs,
    });
    for (const r of repos) await db.open(r);
    const c = new ClusterClient(db, url);
    await c.connect(repos);
    return c;
  }

  /** (Re)connects to `url` (default: the same member). */
  async connect(repos: readonly string[], url = this.url): Promise<void> {
    this.client?.close();
    this.url = url;
    this.client = await SyncClient.connect(this.db, url, {
      repos: [...repos],
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      onError: () => {},
    });
  }

  /** Drops the connection (the replica keeps its data). */
  disconnect(): void {
    this.client?.close();
    this.client = null;
  }

  async close(): Promise<void> {
    this.disconnect();
    await this.db.close();
  }
}

/** Commit ids of `repo` in `db`, sorted. */
export function idsOf(db: Database, repo: string): string[] {
  return db.repository(repo).commitIds().sort();
}

/** Item key -> canonical value of every item of `repo`. */
export function valuesOf(db: Database, repo: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of db.keys(repo, { includeDeleted: true }).sort()) {
    const item = db.item(`${repo}/${k}`);
    out[k] = item ? snapshot(item) : "absent";
  }
  return out;
}

/** A fresh replica that pulls `repos` from the member at `url`: what that member holds. */
export async function pull(
  url: string,
  repos: readonly string[],
): Promise<Database> {
  const db = await openDatabase({ memory: true, schemas: [EVERYTHING] });
  for (const r of repos) await db.open(r);
  const c = await SyncClient.connect(db, url, {
    repos: [...repos],
    onError: () => {},
  });
  try {
    await c.sync();
  } finally {
    c.close();
  }
  return db;
}

/**
 * Clients writing at once, each in its own loop: new items and edits of shared ones,
 * with a sync every few writes. `acked` collects the commits a completed sync covered
 * (created before it started): what a member acknowledged and must never lose.
 */
export class WriteLoad {
  readonly acked = new Set<CommitId>();
  readonly syncFailures: string[] = [];
  #running = new Map<ClusterClient, Promise<void>>();
  #stopping = new Set<ClusterClient>();
  /** Resolved when a loop must stop, even in the middle of a sync. */
  #stopSignals = new Map<ClusterClient, PromiseWithResolvers<void>>();
  #writes = 0;

  constructor(
    readonly repo: string,
    private readonly rng: { int(n: number): number; next(): number },
  ) {}

  /** Writes so far. */
  get writes(): number {
    return this.#writes;
  }

  /** Starts a write loop on `client`. */
  start(client: ClusterClient, name: string): void {
    this.#stopping.delete(client);
    this.#stopSignals.set(client, Promise.withResolvers<void>());
    this.#running.set(client, this.#loop(client, name));
  }

  async #loop(c: ClusterClient, name: string): Promise<void> {
    for (let i = 0; !this.#stopping.has(c); i++) {
      const shared = `${this.repo}/shared${this.rng.int(3)}`;
      const item = c.db.item(shared);
      if (this.rng.next() < 0.5) {
        c.db.create(`${this.repo}/${name}-${i}`, "all", { s: name, n: i });
      } else if (item) item.update({ n: i, s: name });
      else c.db.create(shared, "all", { s: name, n: i });
      this.#writes++;
      if (i % 4 === 3 && c.client) {
        const covered = [...c.created];
        try {
          const stop = this.#stopSignals.get(c)!.promise.then(() => false);
          // A sync waiting for a dead member to come back is abandoned at stop().
          if (await Promise.race([c.client.sync().then(() => true), stop])) {
            for (const id of covered) this.acked.add(id);
          }
        } catch (e) {
          this.syncFailures.push(`${name}: ${(e as Error).message}`);
        }
      }
      await new Promise((r) => setTimeout(r, 5 + this.rng.int(10)));
    }
  }

  /** Stops the loop of `client` (or every loop) and waits for it. */
  async stop(client?: ClusterClient): Promise<void> {
    const targets = client ? [client] : [...this.#running.keys()];
    for (const c of targets) {
      this.#stopping.add(c);
      this.#stopSignals.get(c)?.resolve();
    }
    await Promise.all(targets.map((c) => this.#running.get(c)));
    for (const c of targets) this.#running.delete(c);
  }
}

/**
 * Waits until every member at `urls` holds the same commits of `repo`, all of
 * `mustHold` among them; returns the time it took. Throws naming what is missing.
 */
export async function waitConverged(
  urls: readonly string[],
  repo: string,
  mustHold: ReadonlySet<string>,
  timeoutMs: number,
): Promise<number> {
  const start = Date.now();
  let problem = "";
  for (;;) {
    let pullError = "";
    const sets: string[][] = [];
    for (const url of urls) {
      try {
        const db = await pull(url, [repo]);
        sets.push(idsOf(db, repo));
        await db.close();
      } catch (e) {
        sets.push([]);
        pullError = `; pull from ${url}: ${(e as Error).message}`;
      }
    }
    const missing = sets.map((s) => {
      const have = new Set(s);
      return [...mustHold].filter((id) => !have.has(id)).length;
    });
    const same = sets.every((s) =>
      JSON.stringify(s) === JSON.stringify(sets[0])
    );
    if (same && missing.every((n) => n === 0)) return Date.now() - start;
    problem = `commits per member ${
      sets.map((s) => s.length).join("/")
    }, missing acknowledged ${
      missing.join("/")
    } of ${mustHold.size}${pullError}`;
    if (Date.now() - start > timeoutMs) {
      throw new Error(
        `no convergence of ${repo} within ${timeoutMs} ms: ${problem}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
