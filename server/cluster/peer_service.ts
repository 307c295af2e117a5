/**
 * This member's side of member-to-member requests (see peer_protocol.ts): answers
 * `members` with its id, readiness and position, `list` with the repositories it holds,
 * and `sync` rounds as the sync routes do, for the root session only. Commits another
 * member pushes this way are announced like a client's: this member's clients get them
 * and its publisher sends them to the stream (they may never have reached it).
 *
 * @module
 */

import type {
  Msg,
  NatsConnection,
  Subscription,
} from "@nats-io/transport-node";
import type { Database } from "../../mod.ts";
import type { RootSessionTrust } from "../../lib/sync/root_trust.ts";
import {
  MAX_REQUEST_SKEW_MS,
  NonceCache,
  RequestAuthError,
  verifyRequest,
} from "../../lib/sync/request_signing.ts";
import type { SyncService } from "../sync_service.ts";
import {
  errorHeaders,
  fitAnswer,
  LIST_PAGE,
  type MemberInfo,
  PEER_METHOD,
  PEER_PAYLOAD_HEADROOM,
} from "./peer_protocol.ts";
import type { ClusterSubjects } from "./subjects.ts";

/** Sync requests from other members answered at once; more wait their turn. */
export const MAX_CONCURRENT_PEER_SYNCS = 4;

/** Most request nonces remembered per minute (a reconciliation of many repositories). */
export const MAX_PEER_NONCES_PER_MINUTE = 500_000;

/**
 * Replay protection for member requests: the root session makes every request of a
 * reconciliation, far more than a client's per-session budget, so nonces are kept in
 * two generations of one minute each (longer than the signed time window), bounded.
 */
class PeerNonces extends NonceCache {
  #current = new Set<string>();
  #previous = new Set<string>();
  #rotatedAt = Date.now();

  override remember(
    _sessionId: string,
    nonce: string,
    _time: number,
    now: number,
  ): boolean {
    if (now - this.#rotatedAt >= MAX_REQUEST_SKEW_MS) {
      this.#previous = this.#current;
      this.#current = new Set();
      this.#rotatedAt = now;
    }
    if (this.#current.has(nonce) || this.#previous.has(nonce)) return false;
    if (this.#current.size >= MAX_PEER_NONCES_PER_MINUTE) {
      throw new RequestAuthError(
        429,
        "too_many_requests",
        `More than ${MAX_PEER_NONCES_PER_MINUTE} member requests in a minute`,
      );
    }
    this.#current.add(nonce);
    return true;
  }
}

/** Marks commits pushed by another member (they are published like a client's). */
export const FROM_PEER: unique symbol = Symbol("capra cluster peer");

/** What the service needs. */
export interface PeerServiceDeps {
  readonly nc: NatsConnection;
  readonly subjects: ClusterSubjects;
  readonly db: Database;
  readonly sync: SyncService;
  readonly trust: RootSessionTrust;
  readonly info: () => MemberInfo;
  readonly log: (line: string) => void;
}

/** Answers other members until stopped. */
export class PeerService {
  readonly #subs: Subscription[] = [];
  readonly #nonces = new PeerNonces();
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(private readonly deps: PeerServiceDeps) {}

  /** Subscribes to this member's subjects. */
  start(): void {
    const { nc, subjects } = this.deps;
    const id = this.deps.info().id;
    this.#subs.push(
      nc.subscribe(subjects.members, {
        callback: (_err, msg) => {
          msg.respond(JSON.stringify(this.deps.info()));
        },
      }),
      nc.subscribe(subjects.peer(id, "sync"), {
        callback: (_err, msg) => void this.#answer(msg, () => this.#sync(msg)),
      }),
      nc.subscribe(subjects.peer(id, "list"), {
        callback: (_err, msg) => void this.#answer(msg, () => this.#list(msg)),
      }),
    );
  }

  async #answer(msg: Msg, handle: () => Promise<Uint8Array>): Promise<void> {
    if (!msg.reply) return;
    while (this.#active >= MAX_CONCURRENT_PEER_SYNCS) {
      await new Promise<void>((r) => this.#waiting.push(r));
    }
    this.#active++;
    try {
      const out = await handle();
      msg.respond(out);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      msg.respond(new Uint8Array(0), {
        headers: errorHeaders(
          typeof code === "string" ? code : "peer_error",
          (e as Error)?.message ?? String(e),
        ),
      });
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }

  /** Verifies the root signature of a request. */
  async #authenticate(msg: Msg): Promise<void> {
    const session = await verifyRequest(
      (name) => msg.headers?.get(name) || undefined,
      PEER_METHOD,
      msg.subject,
      msg.data,
      this.deps.trust,
      this.#nonces,
      Date.now(),
    );
    if (!this.deps.trust.isRoot(session.id)) {
      throw Object.assign(
        new Error(`Session ${session.id} is not this cluster's root`),
        { code: "forbidden" },
      );
    }
  }

  async #sync(msg: Msg): Promise<Uint8Array> {
    await this.#authenticate(msg);
    const answer = await this.deps.sync.answer(
      this.deps.trust.root,
      msg.data,
      undefined,
      FROM_PEER,
    );
    return fitAnswer(
      answer,
      this.deps.nc.info!.max_payload - PEER_PAYLOAD_HEADROOM,
    );
  }

  async #list(msg: Msg): Promise<Uint8Array> {
    await this.#authenticate(msg);
    const req = JSON.parse(new TextDecoder().decode(msg.data) || "{}");
    const after = typeof req?.after === "string" ? req.after : "";
    const all = await this.deps.db.listRepositories();
    const open = this.deps.db.openRepositories();
    const repos = [...new Set([...all, ...open])].sort().filter((r) =>
      r > after
    );
    const page = repos.slice(0, LIST_PAGE);
    return new TextEncoder().encode(
      JSON.stringify({ repos: page, more: repos.length > page.length }),
    );
  }

  /** Unsubscribes. */
  stop(): void {
    for (const s of this.#subs.splice(0)) s.unsubscribe();
  }
}
