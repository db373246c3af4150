// Helpers for the CLI's own tests: the checkout's root, and the CLI run in this process.
import { join, resolve } from "node:path";
import { readEnv } from "../env.ts";
import { runCli } from "../program.ts";

/** The root of the checkout (where the `coyote` script is). */
export const HOME = resolve(import.meta.dirname, "..", "..", "..", "..");

/** What one run of the CLI printed, and its exit code. */
export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs the CLI in this process against a state folder and returns what it printed. */
export async function cli(stateDir: string, ...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const env = readEnv({ PATH: process.env.PATH, COYOTE_HOME: HOME, COYOTE_STATE: stateDir, COYOTE_AUTHOR: "Test Admin <admin@example.org>" }, false);
  const code = await runCli(args, env, { out: (l) => out.push(l), err: (l) => err.push(l) }, join(HOME, "packages/cli/src/main.ts"));
  return { code, out: out.join("\n"), err: err.join("\n") };
}
