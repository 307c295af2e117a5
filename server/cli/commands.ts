/**
 * The operator commands of the `capra` executable, dispatched by server/main.ts:
 * `verify`, `stats`, `export`, `import`, `backup`, `user` and `compact`. Each returns its exit code: 0 ok,
 * 1 failure (damage found, commits refused), 2 bad arguments.
 *
 * @module
 */

import { backupCommand } from "./backup.ts";
import { ExitCode, UsageError } from "./common.ts";
import { compactCommand } from "./compact.ts";
import { exportCommand } from "./export.ts";
import { importCommand } from "./import.ts";
import { statsCommand } from "./stats.ts";
import { userCommand } from "./user.ts";
import { verifyCommand } from "./verify.ts";

/** Operator commands by name. */
export const COMMANDS: Readonly<
  Record<string, (args: string[]) => Promise<ExitCode>>
> = {
  verify: verifyCommand,
  stats: statsCommand,
  export: exportCommand,
  import: importCommand,
  backup: backupCommand,
  user: userCommand,
  compact: compactCommand,
};

/**
 * Runs an operator command; argument errors are printed on stderr (exit code 2) and
 * other errors as `capra <command>: message` (exit code 1).
 *
 * @example
 * ```ts
 * import { runCommand } from "./commands.ts";
 * const code = await runCommand("verify", ["./data"]);
 * ```
 */
export async function runCommand(
  name: string,
  args: string[],
): Promise<ExitCode> {
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}"`);
  try {
    return await command(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(
        `capra ${name}: ${e.message}\nRun "capra ${name} --help" for usage.`,
      );
      return ExitCode.Usage;
    }
    if (e instanceof Deno.errors.BrokenPipe) return ExitCode.Ok;
    console.error(`capra ${name}: ${e instanceof Error ? e.message : e}`);
    return ExitCode.Failed;
  }
}
