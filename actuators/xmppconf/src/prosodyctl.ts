import { runProgram, type ProgramOutcome } from "@coyote/actuator";

/** What a finished `prosodyctl` run printed and how it ended. */
export type CommandResult = Pick<ProgramOutcome, "code" | "stdout" | "stderr">;

// prosodyctl prints a banner and log lines besides the answer; this is far more than either.
const MAX_OUTPUT = 1 << 20;
// prosodyctl's shell answers within a second when Prosody runs; a hung one must not hold a reconcile.
const DEADLINE_MS = 30_000;

/**
 * Runs a program to the end and collects its output, without a shell (arguments are never
 * interpreted), within 30 s. It never rejects for a non-zero exit: the caller decides what that means.
 * @throws Error when the program cannot be started, or the signal aborts it (it is killed).
 */
export async function runCommand(file: string, args: readonly string[], signal: AbortSignal): Promise<CommandResult> {
  const result = await runProgram(file, args, { timeoutMs: DEADLINE_MS, signal, maxOutput: MAX_OUTPUT });
  if (result.timedOut) return { code: undefined, stdout: result.stdout, stderr: `${result.stderr}\n${file} did not answer within ${String(DEADLINE_MS / 1000)} s` };
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/**
 * A short summary of a failed run for an error message: its last meaningful lines, without
 * Prosody's lua-unbound banner.
 */
export function summarize(result: CommandResult): string {
  const lines = `${result.stdout}\n${result.stderr}`
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("***") && !/lua-unbound|luarocks|Debian\/Ubuntu|Source \||package can be obtained|Old DNS resolver|prosody\.im\/doc\/depends/.test(line));
  const text = lines.slice(-5).join(" | ");
  return `${result.code === undefined ? "killed by a signal" : `exit code ${result.code}`}${text === "" ? "" : `: ${text}`}`;
}

/**
 * The hosts that `host:list()` in Prosody's admin shell printed: one name per line for a local
 * host, `name (muc component)` for a component. Lines that are neither (log lines prosodyctl
 * prints, the `OK: n hosts` summary) are ignored.
 */
export function parseHostList(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((line) => /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?: \([a-z0-9_ -]*component\))?$/i.exec(line.trim())?.[1])
    .filter((host): host is string => host !== undefined);
}
