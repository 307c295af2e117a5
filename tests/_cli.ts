/**
 * Runs the `capra` command line (server/main.ts) as a subprocess, for the CLI tests.
 * @module
 */

/** The entry point `deno task start` and the compiled binary run. */
export const CAPRA_MAIN =
  new URL("../server/main.ts", import.meta.url).pathname;

/** What one finished `capra` run printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `capra ...args` to its end (colours off) and returns its exit code and output. */
export async function capra(...args: string[]): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CAPRA_MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}
