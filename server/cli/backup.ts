/**
 * `capra backup DIR DEST`: a consistent copy of a data directory, also while a server
 * writes to it. Repository files are append-only, so a prefix cut at a record boundary
 * is a consistent state: each file is copied up to the end of its last intact record
 * (an unfinished append is left out). `*.meta` files (including the replica's key pair,
 * kept 0600) are copied too; the LOCK file and preserved `.cut-*` tails never are.
 *
 * @module
 */

import { writeFileAtomic } from "../../lib/storage/file_storage.ts";
import { scanFrames } from "../../lib/storage/frames.ts";
import {
  ExitCode,
  LineWriter,
  parseCommandArgs,
  Progress,
  requireDirectory,
  UsageError,
} from "./common.ts";
import { listRepoFiles } from "./repo_file.ts";

/** Usage of `capra backup`. */
export const BACKUP_USAGE = `Usage: capra backup DIR DEST

Copies the data directory DIR to DEST consistently, also while a server writes to DIR:
each repository file up to its last intact record, plus the metadata files (the
replica's key pair included: keep DEST private). DEST must not exist or be empty.

Options:
  --help  show this help
`;

/** Metadata files (the same pattern as the file storage). */
const META_FILE = /^[a-z0-9_.-]{1,64}\.meta$/;

/** Throws a UsageError unless `dest` is missing or an empty directory; creates it. */
async function prepareDestination(dest: string): Promise<void> {
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(dest);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (info) {
    if (!info.isDirectory) {
      throw new UsageError(`backup destination "${dest}" is not a directory`);
    }
    for await (const entry of Deno.readDir(dest)) {
      throw new UsageError(
        `backup destination "${dest}" is not empty (it holds "${entry.name}"): choose a new or empty directory`,
      );
    }
  }
  await Deno.mkdir(dest, { recursive: true, mode: 0o700 });
}

/** Runs `capra backup`; returns the exit code. */
export async function backupCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    {},
    2,
    2,
    "data directory and destination",
  );
  if (values.help) {
    console.log(BACKUP_USAGE);
    return ExitCode.Ok;
  }
  const [dir, dest] = positionals;
  await requireDirectory(dir);
  await prepareDestination(dest);
  const out = new LineWriter();
  const repos = await listRepoFiles(dir);
  const progress = new Progress("backup", repos.length);
  let total = 0;
  for (const ref of repos) {
    const bytes = await Deno.readFile(ref.path);
    const scan = scanFrames(bytes);
    const prefix = bytes.subarray(0, scan.validEnd);
    await writeFileAtomic(`${dest}/${ref.name}`, prefix, 0o600);
    total += prefix.length;
    const left = bytes.length - scan.validEnd;
    await out.line(
      `${ref.repo}: ${prefix.length} bytes, ${scan.frames.length / 2} records${
        left ? ` (left out ${left} bytes of an unfinished or torn record)` : ""
      }`,
    );
    progress.advance();
  }
  progress.done();
  let metas = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !META_FILE.test(entry.name)) continue;
    const bytes = await Deno.readFile(`${dir}/${entry.name}`);
    await writeFileAtomic(`${dest}/${entry.name}`, bytes, 0o600);
    metas++;
  }
  await out.line(
    `backup: ${repos.length} repositories (${total} bytes) and ${metas} metadata files copied to ${dest}`,
  );
  await out.flush();
  return ExitCode.Ok;
}
