/**
 * The shared JetStream stream: created by the first member that finds it absent, checked
 * by every other one. One stream for every repository (one Raft group, one sequence: a
 * member's position is one number), file storage, `max_age` = the history retention,
 * a 2-minute duplicate window over `Nats-Msg-Id` = commit id. A member whose settings
 * differ from the stream's (replicas, retention) refuses to run with a message that
 * says which one differs: members of one cluster must collect the same history.
 *
 * @module
 */

import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";

/** Duplicate window of the stream (publishes retried with the same id within it are dropped). */
export const DUPLICATE_WINDOW_MS = 120_000;

/** What a member needs of the stream. */
export interface StreamSpec {
  readonly name: string;
  /** The subject filter (`capra.<stream>.c.>`). */
  readonly subject: string;
  readonly replicas: number;
  /** `max_age` in ms; null for no age limit. */
  readonly maxAgeMs: number | null;
}

/** The stream exists with settings this member does not share. */
export class StreamConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StreamConfigError";
  }
}

const NANOS_PER_MS = 1_000_000;

/** The stream configuration a spec asks for. */
export function streamConfigOf(
  spec: StreamSpec,
): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: [spec.subject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: spec.replicas,
    max_age: (spec.maxAgeMs ?? 0) * NANOS_PER_MS,
    // JetStream refuses a duplicate window longer than max_age.
    duplicate_window: Math.min(
      DUPLICATE_WINDOW_MS,
      spec.maxAgeMs ?? DUPLICATE_WINDOW_MS,
    ) * NANOS_PER_MS,
  };
}

/** Why an existing stream does not fit `spec`, or null when it does. */
export function streamMismatch(
  config: StreamConfig,
  spec: StreamSpec,
): string | null {
  const problems: string[] = [];
  if (!config.subjects?.includes(spec.subject)) {
    problems.push(
      `its subjects are ${
        JSON.stringify(config.subjects ?? [])
      }, not ["${spec.subject}"]`,
    );
  }
  if (config.num_replicas !== spec.replicas) {
    problems.push(
      `it has ${config.num_replicas} replicas, this member asks for ${spec.replicas} (--nats-replicas)`,
    );
  }
  const maxAge = (spec.maxAgeMs ?? 0) * NANOS_PER_MS;
  if ((config.max_age ?? 0) !== maxAge) {
    const show = (ns: number) => ns === 0 ? "no limit" : `${ns / 1e9} s`;
    problems.push(
      `its max_age is ${show(config.max_age ?? 0)}, this member's --retain is ${
        show(maxAge)
      }`,
    );
  }
  return problems.length
    ? `Stream ${spec.name} exists with other settings: ${
      problems.join("; ")
    }. Give every member the same --retain and --nats-replicas, or change the stream (nats stream edit ${spec.name})`
    : null;
}

/** Creates the stream when absent; returns its info; throws StreamConfigError on a mismatch. */
export async function ensureStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
): Promise<StreamInfo> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (e) {
    if (
      !(e instanceof JetStreamApiError) ||
      e.code !== JetStreamApiCodes.StreamNotFound
    ) throw e;
    // Two members may add it at once: an identical configuration is accepted twice.
    info = await jsm.streams.add(streamConfigOf(spec));
  }
  const problem = streamMismatch(info.config, spec);
  if (problem) throw new StreamConfigError(problem);
  return info;
}

/**
 * {@link ensureStream}, retried while JetStream is not available (no meta leader yet,
 * no responders) until `stopped()`; a StreamConfigError is thrown at once.
 */
export async function openStream(
  jsm: JetStreamManager,
  spec: StreamSpec,
  log: (line: string) => void,
  stopped: () => boolean,
): Promise<StreamInfo | null> {
  for (let attempt = 0; !stopped(); attempt++) {
    try {
      return await ensureStream(jsm, spec);
    } catch (e) {
      if (e instanceof StreamConfigError) throw e;
      if (attempt % 10 === 0) {
        log(
          `cluster: JetStream stream ${spec.name} is not available yet (${
            (e as Error)?.message ?? e
          }); retrying`,
        );
      }
      await new Promise((r) =>
        setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 5)))
      );
    }
  }
  return null;
}
