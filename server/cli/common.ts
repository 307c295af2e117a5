/**
 * Shared pieces of the operator commands: argument errors (exit code 2), flag parsing,
 * a stderr progress bar shown only on terminals, and a buffered stdout line writer.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Exit codes of the operator commands. */
export const ExitCode = {
  Ok: 0,
  Failed: 1,
  Usage: 2,
} as const;

/** An exit code. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** Bad command-line arguments: reported on stderr with exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Flag definitions accepted by {@link parseCommandArgs}. */
export type FlagSpec = Record<string, { type: "string" | "boolean" }>;

/** Parsed arguments of one command. */
export interface ParsedArgs {
  readonly positionals: string[];
  readonly values: Record<string, string | boolean | undefined>;
}

/**
 * Parses a command's arguments strictly (unknown flags are usage errors) and checks the
 * number of positionals.
 *
 * @example
 * ```ts
 * import { parseCommandArgs } from "./common.ts";
 * const { positionals } = parseCommandArgs(["./data"], {}, 1, 2);
 * // positionals: ["./data"]
 * ```
 */
export function parseCommandArgs(
  args: string[],
  flags: FlagSpec,
  minPositionals: number,
  maxPositionals: number,
  names = "arguments",
): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...flags, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { positionals: [], values };
  const n = parsed.positionals.length;
  if (n < minPositionals) {
    throw new UsageError(`missing ${names}: got ${n}, need ${minPositionals}`);
  }
  if (n > maxPositionals) {
    throw new UsageError(
      `too many arguments: ${
        parsed.positionals.slice(maxPositionals).map((p) => `"${p}"`).join(" ")
      }`,
    );
  }
  return { positionals: parsed.positionals, values };
}

/** Throws a UsageError unless `dir` is an existing directory. */
export async function requireDirectory(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`data directory "${dir}" does not exist`);
    }
    throw e;
  }
  if (!info.isDirectory) {
    throw new UsageError(`"${dir}" is not a directory`);
  }
}

/** Minimum time between two progress redraws. */
const PROGRESS_REDRAW_MS = 100;
/** Width of the progress bar in characters. */
const PROGRESS_WIDTH = 30;

/**
 * A progress bar on stderr, drawn only when stderr is a terminal (silent in pipes and
 * tests).
 *
 * @example
 * ```ts
 * import { Progress } from "./common.ts";
 * const p = new Progress("verify /todo/a", 100);
 * p.advance(50);
 * p.done();
 * ```
 */
export class Progress {
  readonly #enabled: boolean;
  #current = 0;
  #lastDraw = 0;
  readonly #encoder = new TextEncoder();

  constructor(readonly label: string, readonly total: number) {
    this.#enabled = total > 0 && Deno.stderr.isTerminal();
  }

  /** Adds `n` completed units and redraws at most every few ms. */
  advance(n = 1): void {
    this.#current += n;
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#lastDraw < PROGRESS_REDRAW_MS) return;
    this.#lastDraw = now;
    this.#draw();
  }

  /** Clears the bar. */
  done(): void {
    if (this.#enabled && this.#lastDraw > 0) {
      Deno.stderr.writeSync(this.#encoder.encode("\r\x1b[2K"));
    }
  }

  #draw(): void {
    const share = Math.min(1, this.#current / this.total);
    const filled = Math.round(share * PROGRESS_WIDTH);
    const bar = "#".repeat(filled) + ".".repeat(PROGRESS_WIDTH - filled);
    const pct = String(Math.floor(share * 100)).padStart(3);
    Deno.stderr.writeSync(
      this.#encoder.encode(`\r\x1b[2K${this.label} [${bar}] ${pct}%`),
    );
  }
}

/** Bytes buffered before {@link LineWriter} writes to its file. */
const LINE_BUFFER_BYTES = 64 * 1024;

/** Writes lines to a writer (stdout) in large chunks. */
export class LineWriter {
  #chunks: string[] = [];
  #size = 0;
  readonly #encoder = new TextEncoder();

  constructor(
    private readonly out: { write(p: Uint8Array): Promise<number> } =
      Deno.stdout,
  ) {}

  /** Queues one line; writes when the buffer is full. */
  async line(text: string): Promise<void> {
    this.#chunks.push(text, "\n");
    this.#size += text.length + 1;
    if (this.#size >= LINE_BUFFER_BYTES) await this.flush();
  }

  /** Writes everything queued. */
  async flush(): Promise<void> {
    if (this.#chunks.length === 0) return;
    const bytes = this.#encoder.encode(this.#chunks.join(""));
    this.#chunks = [];
    this.#size = 0;
    let o = 0;
    while (o < bytes.length) o += await this.out.write(bytes.subarray(o));
  }
}
