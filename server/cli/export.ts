/**
 * `capra export DIR REPO [--commits]`: JSON lines on stdout. Reads only.
 *
 * Values (default): one line per live item. The CLI does not know the application's
 * schemas, so values are the stored (raw) field encodings: sets are sorted arrays,
 * maps are objects, dates are epoch milliseconds; text splices in deltas are resolved.
 * An item with several heads cannot be merged without its schema's rules, so it is
 * exported as `{ path, conflict: true, heads: [{ id, schema, deleted, data }] }`.
 *
 * Commits (`--commits`): first one line per session `{ session, publicKey, record }`,
 * then one line per commit in file order with its decoded fields and its exact stored
 * record (`record`, base64url), which `capra import` feeds back to ingest.
 *
 * @module
 */

import type { Commit, CommitId } from "../../lib/commit/commit.ts";
import { encodeBase64Url } from "../../lib/encoding/base64url.ts";
import {
  ExitCode,
  LineWriter,
  parseCommandArgs,
  Progress,
  requireDirectory,
} from "./common.ts";
import { fullDataOf, groupByItem, headsOf, isLive } from "./item_state.ts";
import {
  readRepoFile,
  type RepoFileContents,
  selectRepoFiles,
} from "./repo_file.ts";

/** Usage of `capra export`. */
export const EXPORT_USAGE = `Usage: capra export DIR REPO [--commits]

Writes JSON lines to stdout. Reads only; safe while a server runs.

Default: one line per live item, { "path", "schema", "data" }, with the stored field
encodings (sets as sorted arrays, maps as objects, dates as epoch ms). An item with
concurrent heads is written as { "path", "conflict": true, "heads": [...] } because
merging needs the application's schema.

Options:
  --commits  one line per session { "session", "publicKey", "record" }, then one line
             per commit with its fields and its raw record (base64url), the input of
             \`capra import\`
  --help     show this help
`;

/** JSON replacer: binary values as base64url. */
function jsonValue(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? encodeBase64Url(value) : value;
}

/** The JSON lines of the sessions recorded in a file. */
export function sessionLines(file: RepoFileContents): string[] {
  return [...file.sessions.values()].map(({ session, bytes }) =>
    JSON.stringify({
      session: session.id,
      publicKey: encodeBase64Url(session.publicKey),
      ...(session.expiresAt !== undefined
        ? { expiresAt: session.expiresAt }
        : {}),
      ...(session.userId !== undefined ? { userId: session.userId } : {}),
      record: encodeBase64Url(bytes),
    })
  );
}

function commitLine(c: Commit, record: Uint8Array): string {
  const b = c.body;
  return JSON.stringify({
    id: c.id,
    key: c.key,
    parents: c.parents,
    session: c.session,
    ts: c.ts,
    schema: c.schema,
    kind: b.kind,
    ...(b.kind === "delta" ? { base: b.base } : {}),
    deleted: b.deleted,
    body: b.kind === "full"
      ? { data: b.data }
      : { changed: b.changed, removed: b.removed },
    record: encodeBase64Url(record),
  }, jsonValue);
}

async function exportCommits(
  file: RepoFileContents,
  out: LineWriter,
): Promise<void> {
  for (const line of sessionLines(file)) await out.line(line);
  const progress = new Progress(`export ${file.repo}`, file.commits.length);
  for (const { commit, record } of file.commits) {
    await out.line(commitLine(commit, record));
    progress.advance();
  }
  progress.done();
}

/** Writes item values; returns the number of items that could not be resolved. */
async function exportValues(
  file: RepoFileContents,
  out: LineWriter,
): Promise<number> {
  const byId = new Map<CommitId, Commit>();
  for (const { commit } of file.commits) byId.set(commit.id, commit);
  const items = groupByItem(file.commits);
  const progress = new Progress(`export ${file.repo}`, items.length);
  let failed = 0;
  for (const item of items) {
    progress.advance();
    const heads = headsOf(item.commits);
    if (!isLive(heads)) continue;
    try {
      if (heads.length === 1) {
        const h = heads[0];
        await out.line(JSON.stringify(
          { path: item.path, schema: h.schema, data: fullDataOf(h, byId).data },
          jsonValue,
        ));
      } else {
        await out.line(JSON.stringify({
          path: item.path,
          conflict: true,
          heads: heads.map((h) => ({
            id: h.id,
            schema: h.schema,
            deleted: h.body.deleted,
            data: fullDataOf(h, byId).data,
          })),
        }, jsonValue));
      }
    } catch (e) {
      failed++;
      console.error(`capra export: ${(e as Error).message}`);
    }
  }
  progress.done();
  return failed;
}

/** Runs `capra export`; returns the exit code. */
export async function exportCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    { commits: { type: "boolean" } },
    2,
    2,
    "data directory and repository",
  );
  if (values.help) {
    console.log(EXPORT_USAGE);
    return ExitCode.Ok;
  }
  const [dir, repo] = positionals;
  await requireDirectory(dir);
  const [ref] = await selectRepoFiles(dir, repo);
  const file = await readRepoFile(ref);
  const out = new LineWriter();
  let failed = 0;
  if (values.commits) await exportCommits(file, out);
  else failed = await exportValues(file, out);
  await out.flush();
  return failed ? ExitCode.Failed : ExitCode.Ok;
}
