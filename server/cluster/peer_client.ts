/**
 * Asking other members (see peer_protocol.ts): who is there, which repositories one
 * holds, and a {@link SyncTransport} whose rounds go to one member over NATS, so
 * `db.syncWith` reconciles a repository with it as with a server.
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/transport-node";
import type { SigningKey } from "../../lib/crypto/keys.ts";
import { parsePath, type RepoPath } from "../../lib/path.ts";
import type { SyncMessage } from "../../lib/sync/protocol.ts";
import {
  decodeAnswer,
  SyncError,
  type SyncTransport,
} from "../../lib/sync/sync_round.ts";
import {
  type MemberInfo,
  MEMBERS_STALL_MS,
  MEMBERS_WAIT_MS,
  parseMemberInfo,
  PEER_ERROR_HEADER,
  PEER_PAYLOAD_HEADROOM,
  PEER_SYNC_TIMEOUT_MS,
  signedHeaders,
  splitRequest,
} from "./peer_protocol.ts";
import type { ClusterSubjects } from "./subjects.ts";

/** Most list pages read from one member (LIST_PAGE repositories each). */
export const MAX_LIST_PAGES = 10_000;

/** Signs requests as the cluster root. */
export interface RootSigner {
  readonly key: SigningKey;
  /** The root's encoded session record. */
  readonly record: Uint8Array;
}

/** Requests to other members. */
export class PeerClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: ClusterSubjects,
    private readonly root: RootSigner,
  ) {}

  /** Every member that answers within {@link MEMBERS_WAIT_MS}, this one included. */
  async members(): Promise<MemberInfo[]> {
    const out: MemberInfo[] = [];
    // Collected until replies stop coming for a moment (or MEMBERS_WAIT_MS).
    const replies = await this.nc.requestMany(this.subjects.members, "", {
      strategy: "stall",
      stall: MEMBERS_STALL_MS,
      maxWait: MEMBERS_WAIT_MS,
    });
    for await (const m of replies) {
      try {
        out.push(parseMemberInfo(m.data));
      } catch { /* not a member: ignored */ }
    }
    return out;
  }

  async #request(
    subject: string,
    body: Uint8Array,
  ): Promise<Uint8Array> {
    const reply = await this.nc.request(subject, body, {
      timeout: PEER_SYNC_TIMEOUT_MS,
      headers: await signedHeaders(
        this.root.key,
        this.root.record,
        subject,
        body,
      ),
    });
    const error = reply.headers?.get(PEER_ERROR_HEADER);
    if (error) {
      let e: { code?: string; message?: string } = {};
      try {
        e = JSON.parse(error);
      } catch { /* reported as is */ }
      throw new SyncError(
        e.code ?? "peer_error",
        `Member answered ${subject}: ${e.message ?? error}`,
        e.code,
      );
    }
    return reply.data;
  }

  /** Every repository member `id` holds. */
  async repositories(id: string): Promise<RepoPath[]> {
    const out: RepoPath[] = [];
    let after = "";
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const bytes = await this.#request(
        this.subjects.peer(id, "list"),
        new TextEncoder().encode(JSON.stringify({ after })),
      );
      const v = JSON.parse(new TextDecoder().decode(bytes));
      if (!Array.isArray(v?.repos)) {
        throw new SyntaxError(`Member ${id} answered list without repos`);
      }
      for (const r of v.repos) out.push(parsePath(String(r)).repoPath);
      if (!v.more || v.repos.length === 0) return out;
      after = out[out.length - 1];
    }
    return out;
  }

  /**
   * A transport to member `id`. `onAnswer` sees each decoded answer (the caller learns
   * which commits arrived, to announce them to its own clients).
   */
  transport(
    id: string,
    onAnswer?: (answer: SyncMessage) => void,
  ): SyncTransport {
    const subject = this.subjects.peer(id, "sync");
    return {
      request: async (message) => {
        const limit = this.nc.info!.max_payload - PEER_PAYLOAD_HEADROOM;
        const parts = splitRequest(message, limit);
        let bytes: Uint8Array = new Uint8Array(0);
        for (const part of parts) {
          bytes = await this.#request(subject, part);
          // Decoded once: the sync loop finds this decoding again for these bytes.
          onAnswer?.(decodeAnswer(bytes));
        }
        return bytes;
      },
    };
  }
}
