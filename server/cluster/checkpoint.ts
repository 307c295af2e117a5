/**
 * The member's durable position in the stream: `capra-nats.json` in the data directory
 * holds the member id, the stream (name and creation time: a recreated stream restarts
 * its sequence numbers) and the last sequence whose commits are on disk here. It is
 * written (temp file, fsync, rename) only after the flush that covers those commits.
 *
 * `capra backup` does not copy it, on purpose: a restored copy may be older than the
 * checkpoint it would carry, so a restored member joins as a new one (it reconciles with
 * a peer), which cannot skip anything.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../../lib/storage/file_storage.ts";
import { SERVER_ID } from "./options.ts";

/** File name of the checkpoint, in the data directory. */
export const CHECKPOINT_FILE = "capra-nats.json";
/** Format version of the checkpoint file. */
export const CHECKPOINT_FORMAT = 1;

/** What the checkpoint file holds. */
export interface CheckpointState {
  readonly serverId: string;
  /** Stream this position belongs to; absent before the first connection. */
  readonly stream?: string;
  /** The stream's creation time (ISO text, as JetStream reports it). */
  readonly streamCreated?: string;
  /** Last applied stream sequence (0: none). */
  readonly applied: number;
}

/** Result of {@link readCheckpoint}: the state, or why the file was not usable. */
export interface CheckpointRead {
  readonly state: CheckpointState | null;
  /** Set when the file exists but is damaged (it is then ignored, never trusted). */
  readonly problem?: string;
}

/** Reads and validates the checkpoint file of `dir`. */
export async function readCheckpoint(dir: string): Promise<CheckpointRead> {
  const path = join(dir, CHECKPOINT_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: null };
    return { state: null, problem: `cannot read ${path}: ${String(e)}` };
  }
  try {
    return { state: parseCheckpoint(text) };
  } catch (e) {
    return { state: null, problem: `${path}: ${(e as Error).message}` };
  }
}

/** Parses checkpoint JSON; throws a SyntaxError naming the bad field. */
export function parseCheckpoint(text: string): CheckpointState {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SyntaxError("checkpoint is not JSON");
  }
  if (!v || typeof v !== "object" || v.format !== CHECKPOINT_FORMAT) {
    throw new SyntaxError(
      `checkpoint format ${String(v?.format)} is not ${CHECKPOINT_FORMAT}`,
    );
  }
  if (typeof v.serverId !== "string" || !SERVER_ID.test(v.serverId)) {
    throw new SyntaxError(`invalid serverId ${JSON.stringify(v.serverId)}`);
  }
  if (!Number.isSafeInteger(v.applied) || (v.applied as number) < 0) {
    throw new SyntaxError(`invalid applied ${JSON.stringify(v.applied)}`);
  }
  for (const k of ["stream", "streamCreated"] as const) {
    if (v[k] !== undefined && typeof v[k] !== "string") {
      throw new SyntaxError(`invalid ${k} ${JSON.stringify(v[k])}`);
    }
  }
  return {
    serverId: v.serverId,
    applied: v.applied as number,
    ...(typeof v.stream === "string" ? { stream: v.stream } : {}),
    ...(typeof v.streamCreated === "string"
      ? { streamCreated: v.streamCreated }
      : {}),
  };
}

/** Writes the checkpoint file of `dir` atomically and durably. */
export async function writeCheckpoint(
  dir: string,
  state: CheckpointState,
): Promise<void> {
  const text = JSON.stringify({ format: CHECKPOINT_FORMAT, ...state }, null, 2);
  await writeFileAtomic(
    join(dir, CHECKPOINT_FILE),
    new TextEncoder().encode(text + "\n"),
    0o600,
  );
}

/**
 * Writes the position of one member: each save flushes the database first, so the file
 * never names a sequence whose commits are not on disk. Saves run one at a time.
 */
export class CheckpointKeeper {
  #persisted = -1;
  #saving: Promise<void> = Promise.resolve();
  /** The stream the position belongs to (set once it is known). */
  stream: { readonly name: string; readonly created: string } | null = null;

  constructor(
    private readonly dir: string,
    private readonly serverId: string,
    private readonly flush: () => Promise<void>,
    private readonly log: (line: string) => void,
  ) {}

  /** Saves `applied` after the saves already queued (no-op when it did not change). */
  save(applied: number): Promise<void> {
    this.#saving = this.#saving.then(() => this.#save(applied));
    return this.#saving;
  }

  async #save(applied: number): Promise<void> {
    const s = this.stream;
    // Also a lower position (a rewind), so a restart never skips what it rewound.
    if (applied === this.#persisted || !s) return;
    try {
      await this.flush();
      await writeCheckpoint(this.dir, {
        serverId: this.serverId,
        stream: s.name,
        streamCreated: s.created,
        applied,
      });
      this.#persisted = applied;
    } catch (e) {
      this.log(
        `cluster: writing the checkpoint failed: ${(e as Error).message}`,
      );
    }
  }
}
