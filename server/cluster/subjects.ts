/**
 * NATS subjects of a cluster. Commits of repository `/type/repo` are published on
 * `capra.<stream>.c.<type>.<repo>` (path segments are `[a-z0-9_-]`, valid subject
 * tokens as they are); members answer each other on `capra.<stream>.members` and
 * `capra.<stream>.peer.<serverId>.<op>`. The stream name is part of every subject, so
 * two clusters can share one NATS deployment.
 *
 * @module
 */

import { parsePath, type RepoPath } from "../../lib/path.ts";

/** Subjects of one cluster (one stream). */
export class ClusterSubjects {
  readonly #prefix: string;

  constructor(readonly stream: string) {
    this.#prefix = `capra.${stream}`;
  }

  /** The stream's subject filter (every repository). */
  get allCommits(): string {
    return `${this.#prefix}.c.>`;
  }

  /** Subject of the commits of `repo`. */
  commits(repo: RepoPath): string {
    const [, type, name] = repo.split("/");
    return `${this.#prefix}.c.${type}.${name}`;
  }

  /** The repository a commit subject names; throws a SyntaxError for anything else. */
  repoOf(subject: string): RepoPath {
    const head = `${this.#prefix}.c.`;
    const rest = subject.startsWith(head) ? subject.slice(head.length) : "";
    const parts = rest.split(".");
    if (parts.length !== 2) {
      throw new SyntaxError(`Unexpected subject "${subject}" in the stream`);
    }
    return parsePath(`/${parts[0]}/${parts[1]}`).repoPath;
  }

  /** Where members announce themselves (request: who is there?). */
  get members(): string {
    return `${this.#prefix}.members`;
  }

  /** A member's request subject for `op` (`sync`, `list`). */
  peer(serverId: string, op: "sync" | "list"): string {
    return `${this.#prefix}.peer.${serverId}.${op}`;
  }
}
