/**
 * Replicas for oracle tests, replayable from a seed: every key pair is derived from the
 * seed, every clock is one virtual clock (plus a fixed skew per replica) that only the
 * test moves, and nothing lands at a time the test did not choose. Every write goes
 * through {@link OracleNet.write}, which checks the value the writer sees against the
 * model (tests/_model.ts) and records the commit; {@link OracleNet.check} compares a
 * replica's heads and values with what the model predicts from the commits it holds.
 */
import assert from "node:assert/strict";
import {
  type CommitId,
  type Database,
  openDatabase,
  type Schema,
} from "../mod.ts";
import { importSigningKey, type SigningKey } from "../lib/crypto/keys.ts";
import { uint32Source } from "./_seed.ts";
import { applyChange, type Change, changedState, observe } from "./_edits.ts";
import { ModelHistory, type ModelOptions, showState } from "./_model.ts";

/** Where virtual time starts (fixed, so timestamps replay): 2030-01-01. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2030, 0, 1);

/** A clock that moves only when the test says so. */
export class VirtualClock {
  constructor(public now: number = VIRTUAL_EPOCH_MS) {}
  advance(ms: number): void {
    this.now += ms;
  }
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 private key (RFC 8410).
const PKCS8_ED25519 = [
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
];

/** An Ed25519 key pair derived from `(seed, index)`: same seed, same session ids. */
export async function seededSigner(
  seed: number,
  index: number,
): Promise<SigningKey> {
  const next = uint32Source((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_ED25519);
  for (let i = 16; i < 48; i++) pkcs8[i] = next() & 0xff;
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const publicKey = Uint8Array.from(
    atob(jwk.x!.replace(/-/g, "+").replace(/_/g, "/")),
    (c) => c.charCodeAt(0),
  );
  return await importSigningKey({ publicKey, privateKeyPkcs8: pkcs8 });
}

/** One replica: its database, its skew, and the commit ids the model says it holds. */
export interface Replica {
  readonly index: number;
  readonly db: Database;
  readonly skewMs: number;
  readonly known: Set<string>;
}

/** Options of {@link OracleNet.open}. */
export interface OracleNetOptions extends ModelOptions {
  readonly seed: number;
  readonly repo: string;
  readonly schemas: readonly Schema[];
  readonly clock: VirtualClock;
  /** One skew (ms) per replica. */
  readonly skewsMs: readonly number[];
  /** Shortest retention the databases accept (GC tests). */
  readonly minRetentionMs?: number;
}

/** Several replicas of one repository and the model of their commits. */
export class OracleNet {
  readonly model: ModelHistory;
  /** Item keys ever written. */
  readonly keys: Set<string> = new Set();

  private constructor(
    readonly replicas: Replica[],
    readonly repo: string,
    options: ModelOptions,
  ) {
    this.model = new ModelHistory(options);
  }

  /**
   * Follows databases opened elsewhere (with seeded signers and the virtual clock, for
   * replay). Their holdings are read with {@link OracleNet.adoptHoldings}.
   */
  static attach(
    dbs: readonly Database[],
    repo: string,
    options: ModelOptions,
  ): OracleNet {
    const replicas = dbs.map((db, index) => ({
      index,
      db,
      skewMs: 0,
      known: new Set<string>(),
    }));
    return new OracleNet(replicas, repo, options);
  }

  /**
   * Takes what `r` holds as what the model says it holds: for transports the test does
   * not drive commit by commit (the heads are still predicted from those commits).
   */
  async adoptHoldings(r: Replica): Promise<void> {
    const repo = r.db.repository(this.repo);
    await repo.flush();
    r.known.clear();
    for (const id of repo.commitIds()) {
      if (!this.model.commits.has(id)) {
        throw new Error(`replica ${r.index} holds ${id}, which no write made`);
      }
      r.known.add(id);
    }
  }

  /** Opens one in-memory replica per skew, all trusting each other. */
  static async open(o: OracleNetOptions): Promise<OracleNet> {
    const replicas: Replica[] = [];
    for (let i = 0; i < o.skewsMs.length; i++) {
      const skewMs = o.skewsMs[i];
      const db = await openDatabase({
        memory: true,
        schemas: o.schemas,
        signer: await seededSigner(o.seed, i),
        clock: () => o.clock.now + skewMs,
        ...(o.minRetentionMs !== undefined
          ? { minRetentionMs: o.minRetentionMs }
          : {}),
      });
      replicas.push({ index: i, db, skewMs, known: new Set() });
    }
    for (const a of replicas) {
      for (const b of replicas) if (a !== b) a.db.trustSession(b.db.session);
      await a.db.open(o.repo);
    }
    return new OracleNet(replicas, o.repo, o);
  }

  /** Closes every replica. */
  async close(): Promise<void> {
    for (const r of this.replicas) await r.db.close();
  }

  #path(key: string): string {
    return `${this.repo}/${key}`;
  }

  /**
   * The commits `r` holds complete (with every ancestor): what it stores and offers.
   * The others wait in its memory for a missing parent.
   */
  completeHoldings(r: Replica): Set<string> {
    const complete = new Map<string, boolean>();
    const isComplete = (id: string): boolean => {
      const known = complete.get(id);
      if (known !== undefined) return known;
      const c = this.model.commits.get(id)!;
      const ok = r.known.has(id) && c.parents.every(isComplete);
      complete.set(id, ok);
      return ok;
    };
    return new Set([...r.known].filter(isComplete));
  }

  /** The heads the model says `r` has for `key`: its complete, childless commits. */
  modelHeads(r: Replica, key: string): string[] {
    const mine = [...this.completeHoldings(r)].filter((id) =>
      this.model.commits.get(id)!.key === key
    );
    const named = new Set(
      mine.flatMap((id) => this.model.commits.get(id)!.parents),
    );
    return mine.filter((id) => !named.has(id)).sort();
  }

  /** Differences between replica `r`'s item `key` and the model (none: it matches). */
  problems(r: Replica, key: string): string[] {
    const item = r.db.item(this.#path(key));
    const heads = item ? [...item.heads].sort() : [];
    const want = this.modelHeads(r, key);
    if (heads.join() !== want.join()) {
      return [`heads ${heads.join(",") || "none"}, model ${want.join(",")}`];
    }
    return this.model.resolve(heads, observe(item)).problems;
  }

  /** Throws unless every replica matches the model for every key. */
  async check(context: string): Promise<void> {
    for (const r of this.replicas) {
      await r.db.repository(this.repo).flush(); // commitIds() lists signed commits
      assert.deepEqual(
        r.db.repository(this.repo).commitIds().sort(),
        [...this.completeHoldings(r)].sort(),
        `${context}: replica ${r.index} offers the complete commits the model says (and no waiting one)`,
      );
      for (const key of this.keys) {
        const p = this.problems(r, key);
        if (p.length) {
          throw new Error(
            `${context}: replica ${r.index}, item ${key} disagrees with the model:\n  ${
              p.join("\n  ")
            }`,
          );
        }
      }
    }
  }

  /**
   * Writes `change` to `key` on `r`, after checking that the value `r` shows equals the
   * model's for its heads; records the new commit in the model. Returns its id
   * (undefined when the change writes nothing).
   */
  write(r: Replica, key: string, change: Change): string | undefined {
    const path = this.#path(key);
    const before = r.db.item(path);
    const heads = before ? [...before.heads].sort() : [];
    const seen = this.model.resolve(heads, observe(before));
    if (seen.problems.length) {
      throw new Error(
        `replica ${r.index} about to write ${key}: its value disagrees with the model:\n  ${
          seen.problems.join("\n  ")
        }`,
      );
    }
    const state = changedState(seen.state, change);
    this.keys.add(key);
    const item = applyChange(r.db, path, change);
    const after = item.heads; // builds the commit now (one per write)
    if (!state) {
      assert.deepEqual([...after].sort(), heads, "a no-op writes nothing");
      return undefined;
    }
    assert.equal(after.length, 1, "a local write merges every head");
    const id = after[0];
    const info = item.history().find((c) => c.id === id)!;
    assert.deepEqual(
      [...info.parents].sort(),
      heads,
      "a write's parents are the heads it saw",
    );
    this.model.add({ id, key, parents: info.parents, ts: info.ts, state });
    r.known.add(id);
    return id;
  }

  /** The records of `ids` held by `from` (flushed first). */
  async records(from: Replica, ids: readonly string[]): Promise<Uint8Array[]> {
    const repo = from.db.repository(this.repo);
    await repo.flush();
    return ids.map((id) => repo.commitRecord(id as CommitId)!);
  }

  /** Starts ingesting `records` (of `ids`) into `to`; await the result to land them. */
  ingest(
    to: Replica,
    ids: readonly string[],
    records: readonly Uint8Array[],
  ): Promise<void> {
    if (!records.length) return Promise.resolve();
    const landing = to.db.repository(this.repo).ingest(records);
    return landing.then((result) => {
      assert.deepEqual(
        result.rejected,
        [],
        "honest commits are never rejected",
      );
      for (const id of ids) to.known.add(id);
    });
  }

  /** A SHA-256 digest of every replica's commits, heads and values. */
  async digest(): Promise<string> {
    const lines: string[] = [];
    for (const r of this.replicas) {
      const repo = r.db.repository(this.repo);
      lines.push(`${r.index} commits ${repo.commitIds().sort().join(",")}`);
      for (const key of [...this.keys].sort()) {
        const item = r.db.item(this.#path(key));
        lines.push(
          `${r.index} ${key} ${[...(item?.heads ?? [])].sort().join(",")} ${
            showState(observe(item))
          }`,
        );
      }
    }
    const bytes = new TextEncoder().encode(lines.join("\n"));
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
  }
}
