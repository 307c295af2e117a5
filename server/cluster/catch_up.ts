/**
 * Where a member starts reading the stream, and whether it must also reconcile with
 * another member. With a checkpoint of this very stream (same name, same creation time)
 * that the stream still covers, it replays from the checkpoint. Otherwise (a new or
 * restored member, a stream recreated, or a member away for longer than `max_age`) it
 * reads from just after what the chosen other member has already applied, and
 * reconciles every repository with that member; with no other member, it replays
 * everything the stream still holds.
 *
 * @module
 */

import type { StreamInfo } from "@nats-io/jetstream";
import type { CheckpointState } from "./checkpoint.ts";
import type { MemberInfo } from "./peer_protocol.ts";

/** The decided start. */
export interface CatchUpPlan {
  /** First stream sequence to read. */
  readonly startSeq: number;
  /** Last sequence of the stream at start: the member is caught up once it applied it. */
  readonly target: number;
  /** True when every repository must be reconciled with `peer`. */
  readonly reconcile: boolean;
  /** Why (for the log). */
  readonly reason: string;
}

/** True when the checkpoint is a position in this stream. */
export function checkpointFits(
  checkpoint: CheckpointState | null,
  info: StreamInfo,
): checkpoint is CheckpointState & { stream: string; streamCreated: string } {
  return !!checkpoint && checkpoint.stream === info.config.name &&
    checkpoint.streamCreated === info.created;
}

/**
 * The plan for a checkpoint, before asking other members: `null` when the checkpoint
 * suffices (the plan is then exact), else the reason to reconcile.
 */
export function replayPlan(
  checkpoint: CheckpointState | null,
  info: StreamInfo,
): CatchUpPlan | { readonly gap: string } {
  const { first_seq: first, last_seq: last } = info.state;
  if (!checkpoint?.stream) {
    return { gap: "no position in the stream yet (a new or restored member)" };
  }
  if (!checkpointFits(checkpoint, info)) {
    return {
      gap: `the checkpoint is for stream ${checkpoint.stream ?? "?"} created ${
        checkpoint.streamCreated ?? "?"
      }, not ${info.config.name} created ${info.created}`,
    };
  }
  const next = checkpoint.applied + 1;
  // A new stream reports first_seq 0 or 1; once max_age trimmed it, first_seq > next.
  if (next < first) {
    return {
      gap: `the stream no longer holds seq ${next}-${
        first - 1
      } (older than its max_age)`,
    };
  }
  return {
    startSeq: next,
    target: last,
    reconcile: false,
    reason: `replaying from checkpoint seq ${checkpoint.applied}`,
  };
}

/** The plan when reconciliation is needed, given the best other member (if any). */
export function reconcilePlan(
  info: StreamInfo,
  peer: MemberInfo | undefined,
  gap: string,
): CatchUpPlan {
  const { first_seq: first, last_seq: last } = info.state;
  const floor = Math.max(1, first);
  if (!peer) {
    return {
      startSeq: floor,
      target: last,
      reconcile: false,
      reason: `${gap}; no other member answered: replaying the whole stream`,
    };
  }
  // What the peer applied, it holds; the rest comes from the stream.
  const startSeq = Math.max(floor, Math.min(last, peer.applied) + 1);
  return {
    startSeq,
    target: last,
    reconcile: true,
    reason:
      `${gap}; reconciling with member ${peer.id} and reading from seq ${startSeq}`,
  };
}
