/**
 * `capra stats DIR`: per repository and in total: items (live and with deleted ones),
 * commits, bytes on disk, oldest and newest commit time. Reads only.
 *
 * @module
 */

import { timestampMs } from "../../lib/commit/clock.ts";
import {
  ExitCode,
  LineWriter,
  parseCommandArgs,
  Progress,
  requireDirectory,
} from "./common.ts";
import { groupByItem, headsOf, isLive } from "./item_state.ts";
import { listRepoFiles, readRepoFile } from "./repo_file.ts";

/** Usage of `capra stats`. */
export const STATS_USAGE = `Usage: capra stats DIR [--json]

Prints, per repository in DIR and in total: live items, items including deleted ones,
commits, bytes on disk, and the oldest and newest commit time. Reads only; safe while
a server runs.

Options:
  --json  print one JSON object instead of a table
  --help  show this help
`;

/** Statistics of one repository (or the total). */
export interface RepoStats {
  readonly repo: string;
  /** Items whose current state is not deleted. */
  items: number;
  /** Items including deleted ones. */
  itemsWithDeleted: number;
  commits: number;
  bytes: number;
  /** ISO time of the oldest commit, or null without commits. */
  oldest: string | null;
  newest: string | null;
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** Runs `capra stats`; returns the exit code. */
export async function statsCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    { json: { type: "boolean" } },
    1,
    1,
    "data directory",
  );
  if (values.help) {
    console.log(STATS_USAGE);
    return ExitCode.Ok;
  }
  const [dir] = positionals;
  await requireDirectory(dir);
  const refs = await listRepoFiles(dir);
  const progress = new Progress("stats", refs.length);
  const repos: RepoStats[] = [];
  let minTs: number | undefined, maxTs: number | undefined;
  for (const ref of refs) {
    const file = await readRepoFile(ref);
    let lo: number | undefined, hi: number | undefined;
    for (const { commit } of file.commits) {
      if (lo === undefined || commit.ts < lo) lo = commit.ts;
      if (hi === undefined || commit.ts > hi) hi = commit.ts;
    }
    const items = groupByItem(file.commits);
    repos.push({
      repo: ref.repo,
      items: items.filter((i) => isLive(headsOf(i.commits))).length,
      itemsWithDeleted: items.length,
      commits: file.commits.length,
      bytes: file.bytes.length,
      oldest: iso(lo === undefined ? undefined : timestampMs(lo)),
      newest: iso(hi === undefined ? undefined : timestampMs(hi)),
    });
    if (lo !== undefined && (minTs === undefined || lo < minTs)) minTs = lo;
    if (hi !== undefined && (maxTs === undefined || hi > maxTs)) maxTs = hi;
    progress.advance();
  }
  progress.done();
  const total: RepoStats = {
    repo: "total",
    items: 0,
    itemsWithDeleted: 0,
    commits: 0,
    bytes: 0,
    oldest: iso(minTs === undefined ? undefined : timestampMs(minTs)),
    newest: iso(maxTs === undefined ? undefined : timestampMs(maxTs)),
  };
  for (const r of repos) {
    total.items += r.items;
    total.itemsWithDeleted += r.itemsWithDeleted;
    total.commits += r.commits;
    total.bytes += r.bytes;
  }
  const out = new LineWriter();
  if (values.json) {
    await out.line(JSON.stringify({ repos, total }));
  } else {
    const rows = [...repos, total].map((r) => [
      r.repo,
      String(r.items),
      String(r.itemsWithDeleted),
      String(r.commits),
      String(r.bytes),
      r.oldest ?? "-",
      r.newest ?? "-",
    ]);
    const header = [
      "repository",
      "items",
      "with deleted",
      "commits",
      "bytes",
      "oldest",
      "newest",
    ];
    const widths = header.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => r[i].length))
    );
    for (const row of [header, ...rows]) {
      await out.line(
        row.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))
          .join("  "),
      );
    }
  }
  await out.flush();
  return ExitCode.Ok;
}
