/**
 * `capra user add DIR NAME`: issues a bearer token for a user (printed once; only its
 * SHA-256 hash is stored in the data directory).
 *
 * @module
 */

import { ExitCode, parseCommandArgs, requireDirectory } from "./common.ts";
import { addUser } from "../users.ts";

const HELP = `Usage: capra user add DIR NAME
Issues a bearer token for NAME and prints it (stored hashed in DIR).`;

/** Runs `capra user`. */
export async function userCommand(args: string[]): Promise<ExitCode> {
  const { positionals, values } = parseCommandArgs(args, {}, 3, 3);
  if (values.help) {
    console.log(HELP);
    return ExitCode.Ok;
  }
  const [verb, dir, name] = positionals;
  if (verb !== "add") {
    console.error(`capra user: unknown action "${verb}"\n${HELP}`);
    return ExitCode.Usage;
  }
  await requireDirectory(dir);
  console.log(await addUser(dir, name));
  return ExitCode.Ok;
}
