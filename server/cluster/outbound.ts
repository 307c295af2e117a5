/**
 * What the bridge publishes: one stream message per accepted commit, in the sync codec
 * and in the commit's stored form, with its author's session record so any member can
 * verify it (`{ repo, commits: [record], sessions: [author] }`). Commits that came from
 * the stream or were pulled from another member are not published again.
 *
 * @module
 */

import { headers } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { CommitId } from "../../lib/commit/commit.ts";
import type { Repository } from "../../lib/core/repository.ts";
import { encodeSyncMessage } from "../../lib/sync/protocol.ts";
import { authorsOf } from "../../lib/sync/sync_round.ts";
import type { SyncService } from "../sync_service.ts";
import { FROM_STREAM } from "./stream_applier.ts";
import { FROM_RECONCILIATION } from "./reconciler.ts";
import type { MessageBuilder, PublishTarget } from "./publisher.ts";
import type { Database } from "../../mod.ts";

/** Header naming the member that published a message (for operators; never trusted). */
export const ORIGIN_HEADER = "capra-origin";

/** True when commits announced with this origin must be published. */
export function publishesOrigin(origin: unknown): boolean {
  return origin !== FROM_STREAM && origin !== FROM_RECONCILIATION;
}

/** The stream message of commit `id` of `repo`, or undefined when it is not stored. */
export function outboundMessage(
  sync: SyncService,
  repo: Repository,
  id: CommitId,
): Uint8Array | undefined {
  const record = repo.commitRecord(id);
  if (!record) return undefined;
  return encodeSyncMessage({
    repo: repo.path,
    commits: [record],
    sessions: sync.sessionRecords(authorsOf(repo, [id])),
  });
}

/** The publisher's target: JetStream publishes with the commit id as `Nats-Msg-Id`. */
export function streamTarget(
  js: () => JetStreamClient | null,
  serverId: string,
  isConnected: () => boolean,
  timeoutMs: number,
): PublishTarget {
  return {
    isConnected,
    async publish(subject, payload, msgId) {
      const client = js();
      if (!client) throw new Error("not connected to NATS");
      const h = headers();
      h.set(ORIGIN_HEADER, serverId);
      await client.publish(subject, payload, {
        msgID: msgId,
        headers: h,
        timeout: timeoutMs,
      });
    },
  };
}

/** Rebuilds stream messages from the database (republishing). */
export function messageBuilder(
  db: Database,
  sync: SyncService,
): MessageBuilder {
  return async (repo, id) => outboundMessage(sync, await db.open(repo), id);
}
