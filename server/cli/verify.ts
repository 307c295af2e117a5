/**
 * `capra verify DIR [REPO]`: re-checks every record of a data directory without
 * modifying it: frame checksums (damaged ranges and a torn tail are reported), that
 * every commit record decodes (its id is recomputed from its bytes), and every
 * signature against the session recorded in the same file.
 *
 * @module
 */

import { commitIdBytes } from "../../lib/commit/commit.ts";
import { verifySignature } from "../../lib/crypto/keys.ts";
import {
  ExitCode,
  LineWriter,
  parseCommandArgs,
  Progress,
  requireDirectory,
} from "./common.ts";
import {
  listMisplacedEntries,
  readRepoFile,
  type RepoFileContents,
  type RepoFileRef,
  selectRepoFiles,
} from "./repo_file.ts";
import { repoPathOf } from "../../lib/path.ts";

/** Usage of `capra verify`. */
export const VERIFY_USAGE = `Usage: capra verify DIR [REPO]

Re-checks every record of the repositories in DIR (or only REPO, e.g. /todo/home):
checksums, commit ids, signatures against their sessions. Reads only; safe while a
server runs. Exits 0 when everything is intact, 1 when anything is damaged.

Options:
  --help  show this help
`;

/** Signatures checked concurrently. */
const VERIFY_BATCH = 512;

/** The outcome of verifying one repository file. */
export interface RepoVerdict {
  readonly repo: string;
  readonly records: number;
  readonly commits: number;
  readonly sessions: number;
  /** One message per problem; empty when the file is intact. */
  readonly problems: string[];
}

/** Verifies one repository file's contents. */
export async function verifyContents(
  file: RepoFileContents,
  progress?: Progress,
): Promise<RepoVerdict> {
  const problems: string[] = [];
  for (const r of file.scan.skipped) {
    problems.push(
      `damaged bytes ${r.start}-${r.end} (${
        r.end - r.start
      } bytes) skipped: checksum or framing is broken`,
    );
  }
  const size = file.bytes.length;
  if (file.scan.validEnd < size) {
    problems.push(
      `torn tail: ${
        size - file.scan.validEnd
      } bytes after offset ${file.scan.validEnd} are not an intact record`,
    );
  }
  for (const u of file.undecodable) {
    problems.push(`record at offset ${u.offset} is invalid: ${u.reason}`);
  }
  for (let i = 0; i < file.commits.length; i += VERIFY_BATCH) {
    const batch = file.commits.slice(i, i + VERIFY_BATCH);
    const verdicts = await Promise.all(batch.map(async ({ commit, sig }) => {
      const s = file.sessions.get(commit.session);
      if (!s) {
        return `commit ${commit.id} (${commit.key}): session ${commit.session} is unknown (no session record in this file)`;
      }
      const ok = await verifySignature(
        s.session.publicKey,
        sig,
        commitIdBytes(commit.id),
      );
      return ok
        ? null
        : `commit ${commit.id} (${commit.key}): signature does not verify against session ${commit.session}`;
    }));
    for (const v of verdicts) if (v) problems.push(v);
    progress?.advance(batch.length);
  }
  return {
    repo: file.repo,
    records: file.records,
    commits: file.commits.length,
    sessions: file.sessions.size,
    problems,
  };
}

/** Verifies one repository file; a file that cannot be read is one problem. */
async function verifyRef(ref: RepoFileRef): Promise<RepoVerdict> {
  let file: RepoFileContents;
  try {
    file = await readRepoFile(ref);
  } catch (e) {
    return {
      repo: ref.repo,
      records: 0,
      commits: 0,
      sessions: 0,
      problems: [
        `cannot read ${ref.path}: ${e instanceof Error ? e.message : e}`,
      ],
    };
  }
  const progress = new Progress(`verify ${ref.repo}`, file.commits.length);
  const v = await verifyContents(file, progress);
  progress.done();
  return v;
}

/** Runs `capra verify`; returns the exit code. */
export async function verifyCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    {},
    1,
    2,
    "data directory",
  );
  if (values.help) {
    console.log(VERIFY_USAGE);
    return ExitCode.Ok;
  }
  const [dir, repo] = positionals;
  await requireDirectory(dir);
  // A directory (or link...) named like a repository file hides that repository.
  let misplaced = await listMisplacedEntries(dir);
  if (repo !== undefined) {
    const path = (() => {
      try {
        return repoPathOf(repo);
      } catch {
        return undefined; // selectRepoFiles reports the bad argument
      }
    })();
    misplaced = misplaced.filter((m) => m.repo === path);
  }
  const refs = misplaced.length && repo !== undefined
    ? []
    : await selectRepoFiles(dir, repo);
  const out = new LineWriter();
  let bad = 0;
  for (const m of misplaced) {
    bad++;
    await out.line(`${m.repo}: unreadable, bad 1`);
    await out.line(
      `  ${m.repo}: ${m.path} is a ${m.kind}, not a repository file: the repository cannot be opened`,
    );
  }
  for (const ref of refs) {
    const v = await verifyRef(ref);
    bad += v.problems.length;
    await out.line(
      `${v.repo}: records ${v.records}, commits ${v.commits}, sessions ${v.sessions}, bad ${v.problems.length}${
        v.problems.length ? "" : ", ok"
      }`,
    );
    for (const p of v.problems) await out.line(`  ${v.repo}: ${p}`);
  }
  const total = refs.length + misplaced.length;
  await out.line(
    bad
      ? `verify: FAILED: ${bad} problem(s) in ${total} repositories`
      : `verify: ok: ${total} repositories intact`,
  );
  await out.flush();
  return bad ? ExitCode.Failed : ExitCode.Ok;
}
