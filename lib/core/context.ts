/**
 * What a repository needs from its database: schemas, the clock, the signing key, the
 * session trust policy and error reporting. Kept as an interface so repositories can be
 * tested on their own.
 *
 * @module
 */

import type { SignatureVerifier } from "../crypto/verifier.ts";
import type { SessionId, SigningKey } from "../crypto/keys.ts";
import type { SchemaRegistry } from "../schema/schema.ts";
import type { HybridClock } from "../commit/clock.ts";
import type { SessionRecord, SessionTrust } from "./session.ts";
import type { CommitNode } from "./item_graph.ts";
import type { RepoPath } from "../path.ts";

/**
 * The database's services a repository uses. `Repo` is the repository type (the context
 * hands repositories back to the database without importing them).
 */
export interface RepoContext<Repo = unknown> {
  readonly registry: SchemaRegistry;
  readonly clock: HybridClock;
  readonly signer: SigningKey;
  readonly ownSession: SessionRecord;
  readonly trust: SessionTrust;
  /** Sessions seen in logs or received (not necessarily trusted). */
  readonly knownSessions: Map<SessionId, SessionRecord>;
  /** Checks received commits' signatures. */
  readonly verifier: SignatureVerifier;
  /** Wall-clock ms. */
  now(): number;
  /** Throws when the database is closed. */
  checkOpen(): void;
  /** Reports a failure of background work (the database's `onError`). */
  reportError(error: unknown): void;
  /** Calls a listener, reporting (not propagating) its exceptions. */
  safeCall<A>(fn: (arg: A) => void, arg: A): void;
  /** Reopens a repository the database closed automatically (synchronously). */
  reopen(path: RepoPath): Repo;
  /** Signed local commits were appended to the log (sync pushes them). */
  onCommitsStored(repo: Repo, nodes: readonly CommitNode[]): void;
  /**
   * How long work (ingesting a large batch) may run before `pause()` gives the event
   * loop back; without it, such work runs in one go.
   */
  readonly slices?: {
    readonly sliceMs: number;
    pause(): Promise<void>;
  };
}
