/**
 * `capra compact DIR [REPO] [--retain 30d]`: garbage-collects history older than the
 * retention window (never shorter than the session lifetime) and rewrites each
 * repository file atomically. Needs the directory lock: stop the server first.
 *
 * @module
 */

import { openDatabase } from "../../mod.ts";
import { repoPathOf } from "../../lib/path.ts";
import {
  ExitCode,
  LineWriter,
  parseCommandArgs,
  Progress,
  requireDirectory,
  UsageError,
} from "./common.ts";

/** Usage of `capra compact`. */
export const COMPACT_USAGE = `Usage: capra compact DIR [REPO] [--retain 30d]

Removes history older than the retention window from every repository of DIR (or only
REPO), keeping each item's current state and everything a merge still needs, and
rewrites the files atomically (temp file, fsync, rename). Needs the directory lock:
stop a server using DIR first.

Options:
  --retain  retention window: a number with unit d, h, m or s (default 30d; at least 1d,
            the session lifetime)
  --help    show this help
`;

const UNITS: Record<string, number> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
};

/** Parses `30d`, `12h`, `90m` or `45s` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([dhms])$/.exec(text.trim());
  if (!m) {
    throw new UsageError(
      `invalid duration "${text}": expected e.g. 30d, 12h, 90m`,
    );
  }
  return Number(m[1]) * UNITS[m[2]];
}

/** Runs `capra compact`; returns the exit code. */
export async function compactCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    { retain: { type: "string" } },
    1,
    2,
    "data directory",
  );
  if (values.help) {
    console.log(COMPACT_USAGE);
    return ExitCode.Ok;
  }
  const [dir, only] = positionals;
  await requireDirectory(dir);
  const retainMs = parseDuration(String(values.retain ?? "30d"));
  let repos: string[];
  if (only !== undefined) {
    try {
      repos = [repoPathOf(only)];
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  } else repos = [];
  const db = await openDatabase({ dir });
  const out = new LineWriter();
  try {
    if (!repos.length) repos = await db.listRepositories();
    const progress = new Progress("compact", repos.length);
    for (const repo of repos) {
      const r = await db.compact(repo, { retainMs });
      await out.line(
        `${repo}: kept ${r.keptCommits} commits, dropped ${r.droppedCommits}, ${r.bytesAfter} bytes`,
      );
      progress.advance();
    }
    progress.done();
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  } finally {
    await out.flush();
    await db.close();
  }
  return ExitCode.Ok;
}
