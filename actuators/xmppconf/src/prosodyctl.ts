import { spawn } from "node:child_process";

/** What a finished `prosodyctl` run printed and how it ended. */
export interface CommandResult {
  /** The exit code, or undefined when a signal ended it. */
  readonly code: number | undefined;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

// prosodyctl prints a banner and log lines besides the answer; this is far more than either.
const MAX_OUTPUT = 1 << 20;

/**
 * Runs a program to the end and collects its output, without a shell (arguments are never
 * interpreted). It never rejects for a non-zero exit: the caller decides what that means.
 * @throws Error when the program cannot be started, or the signal aborts it (it is killed).
 */
export function runCommand(file: string, args: readonly string[], signal: AbortSignal): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], signal });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code: code ?? undefined, stdout, stderr });
    });
  });
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
