/**
 * `capra import DIR REPO FILE`: reads a `capra export --commits` file and ingests its
 * records into REPO of DIR (created when missing). The sessions of the export are
 * trusted for this ingest and their records are appended to the repository file
 * (unless already present), so the result verifies on its own. Every commit goes
 * through the normal ingress checks: id, signature, repository, clock.
 *
 * @module
 */

import { openDatabase } from "../../mod.ts";
import { openRepositoryOf, RecordKind } from "../../testing.ts";
import {
  decodeSessionRecord,
  encodeSessionRecord,
  type SessionRecord,
} from "../../testing.ts";
import { decodeBase64Url } from "../../lib/encoding/base64url.ts";
import { repoFileName } from "../../lib/storage/file_storage.ts";
import { type RepoPath, repoPathOf } from "../../lib/path.ts";
import { ExitCode, parseCommandArgs, Progress, UsageError } from "./common.ts";
import { readRepoFile } from "./repo_file.ts";
import { markOfflineWrites } from "../cluster/offline_writes.ts";

/** Usage of `capra import`. */
export const IMPORT_USAGE = `Usage: capra import DIR REPO FILE

Ingests a \`capra export DIR REPO --commits\` file (FILE, or - for stdin) into REPO of
DIR (created when missing). The exported sessions are trusted and recorded; every commit
is checked (id, signature, repository) before it is stored. Needs the directory lock:
stop a server using DIR first. Exits 1 when any commit is refused.

Options:
  --help  show this help
`;

/** Records ingested per call. */
const IMPORT_BATCH = 2000;

/** What an export file holds. */
interface ParsedExport {
  readonly sessions: SessionRecord[];
  readonly sessionBytes: Uint8Array[];
  readonly records: Uint8Array[];
}

function bytesField(v: unknown, what: string): Uint8Array {
  if (typeof v !== "string") throw new SyntaxError(`${what} is not a string`);
  return decodeBase64Url(v);
}

/** Parses the JSON lines of a commit export; throws a UsageError on bad input. */
export function parseCommitExport(text: string, name: string): ParsedExport {
  const sessions: SessionRecord[] = [];
  const sessionBytes: Uint8Array[] = [];
  const records: Uint8Array[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    try {
      const v = JSON.parse(line) as Record<string, unknown>;
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new SyntaxError("expected a JSON object");
      }
      if (typeof v.session === "string" && "publicKey" in v) {
        const bytes = v.record !== undefined
          ? bytesField(v.record, "record")
          : encodeSessionRecord({
            id: v.session as SessionRecord["id"],
            publicKey: bytesField(v.publicKey, "publicKey"),
          });
        const s = decodeSessionRecord(bytes);
        if (s.id !== v.session) {
          throw new SyntaxError(
            `session id ${v.session} does not match its key`,
          );
        }
        sessions.push(s);
        sessionBytes.push(bytes);
      } else if (typeof v.id === "string" && "record" in v) {
        records.push(bytesField(v.record, "record"));
      } else if ("path" in v) {
        throw new SyntaxError(
          "this is a value export: import needs `capra export --commits`",
        );
      } else {
        throw new SyntaxError("neither a session nor a commit line");
      }
    } catch (e) {
      throw new UsageError(
        `${name}:${i + 1}: not a commit export line: ${(e as Error).message}`,
      );
    }
  }
  return { sessions, sessionBytes, records };
}

async function readInput(file: string): Promise<string> {
  if (file === "-") {
    return await new Response(Deno.stdin.readable).text();
  }
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`import file "${file}" does not exist`);
    }
    throw e;
  }
}

/** Session ids already recorded in the repository file (read before opening it). */
async function recordedSessions(
  dir: string,
  repo: string,
): Promise<Set<string>> {
  const path = `${dir}/${repoFileName(repoPathOf(repo))}`;
  try {
    const file = await readRepoFile({ repo: repoPathOf(repo), path, name: "" });
    return new Set(file.sessions.keys());
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Set();
    throw e;
  }
}

/** Runs `capra import`; returns the exit code. */
export async function importCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(
    args,
    {},
    3,
    3,
    "data directory, repository and file",
  );
  if (values.help) {
    console.log(IMPORT_USAGE);
    return ExitCode.Ok;
  }
  const [dir, repoArg, fileArg] = positionals;
  let repoPath: string;
  try {
    repoPath = repoPathOf(repoArg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const parsed = parseCommitExport(await readInput(fileArg), fileArg);
  await Deno.mkdir(dir, { recursive: true });
  const known = await recordedSessions(dir, repoPath);
  const db = await openDatabase({ dir });
  let accepted = 0, duplicates = 0;
  const rejected: string[] = [];
  try {
    const repo = await db.open(repoPath);
    parsed.sessions.forEach((s, i) => {
      db.trustSession(s);
      if (!known.has(s.id)) {
        // The exported record, byte for byte (its root signature included).
        openRepositoryOf(repo).appendRecord(
          RecordKind.Session,
          parsed.sessionBytes[i],
        );
        known.add(s.id);
      }
    });
    const progress = new Progress(`import ${repoPath}`, parsed.records.length);
    for (let i = 0; i < parsed.records.length; i += IMPORT_BATCH) {
      const batch = parsed.records.slice(i, i + IMPORT_BATCH);
      const result = await repo.ingest(batch);
      accepted += result.accepted.length;
      duplicates += result.duplicates;
      for (const r of result.rejected) {
        rejected.push(
          `record ${i + r.index + 1}${
            r.id ? ` (commit ${r.id})` : ""
          }: ${r.reason}`,
        );
      }
      progress.advance(batch.length);
    }
    progress.done();
    await db.flush();
  } finally {
    await db.close();
  }
  // A stopped cluster member publishes what was imported when it starts again.
  if (accepted) await markOfflineWrites(dir, [repoPath as RepoPath]);
  for (const r of rejected) console.error(`capra import: refused ${r}`);
  console.log(
    `import ${repoPath}: ${accepted} commits stored, ${duplicates} already present, ${rejected.length} refused, ${parsed.sessions.length} sessions`,
  );
  return rejected.length ? ExitCode.Failed : ExitCode.Ok;
}
