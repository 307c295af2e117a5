/**
 * What sync needs from a database: its session (key, record, trusted sessions), its
 * repositories and their events, and `syncWith`. A `Database` is one; the interface keeps
 * lib/sync below the object that wires core, queries and sync together.
 *
 * @module
 */

import type { SessionId } from "../crypto/keys.ts";
import type { RepoPath } from "../path.ts";
import type { CommitsListener, Repository } from "../core/repository.ts";
import type { SessionRecord, TrustedSessions } from "../core/session.ts";
import type { SyncHooks, SyncStats, SyncTransport } from "./sync_round.ts";

/** A database as sync uses it (see `Database`). */
export interface SyncDatabase {
  /** This replica's session id (derived from its public key). */
  readonly sessionId: SessionId;
  /** This replica's session record (public key only). */
  readonly session: SessionRecord;
  /** Sessions trusted when no trust policy was given. */
  readonly trusted: TrustedSessions | undefined;
  /** Signs bytes with this replica's session key (signed sync requests). */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Opens a repository (idempotent). */
  open(repo: string): Promise<Repository>;
  /** Paths of the repositories open now. */
  openRepositories(): RepoPath[];
  /** Listens to repositories being opened; returns an unsubscribe. */
  onOpen(listener: (repo: RepoPath) => void): () => void;
  /** Listens to signed local commits as they are stored; returns an unsubscribe. */
  onCommits(listener: CommitsListener): () => void;
  /** Reconciles one repository with a peer through `transport`. */
  syncWith(
    repo: string,
    transport: SyncTransport,
    hooks?: SyncHooks,
  ): Promise<SyncStats>;
}

/** The part of a database a server session needs. */
export type SessionDatabase = Pick<
  SyncDatabase,
  "sessionId" | "session" | "trusted" | "sign"
>;
