/** Running a program for the release library: with a deadline, its output kept up to a cap. */
import { spawn } from "node:child_process";

/** A program and its arguments. */
export interface CommandLine {
  /** The program (a path, or a name looked up on PATH). */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
}

/** How {@link runCommand} runs a program. */
export interface RunOptions {
  /** The working folder. */
  readonly cwd: string;
  /** The environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How long it may take before it is killed, in milliseconds. */
  readonly timeoutMs: number;
  /** What is being done, for the error message ("installing dependencies"). */
  readonly what: string;
  /** The user and group to run as (only root may give them). */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** The most output kept from a program: its last bytes, which name what went wrong. */
const OUTPUT_CAP = 64 * 1024;

/**
 * Runs a program to its end. Its standard output and error are kept (the last 64 KiB) for the
 * error message. On the deadline its whole process group is killed.
 * @returns the output kept.
 * @throws Error naming what was done, the exit code or signal, and the output's tail.
 */
export function runCommand(line: CommandLine, options: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const keep = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.length > OUTPUT_CAP) output = output.slice(-OUTPUT_CAP);
    };
    const child = spawn(line.command, [...line.args], { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true, ...(options.user ?? {}) });
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, options.timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`${options.what}: cannot run ${line.command}: ${error.message}`, { cause: error }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && !timedOut) {
        resolve(output);
        return;
      }
      const why = timedOut ? `gave up after ${Math.round(options.timeoutMs / 1000)} s` : code !== null ? `exit code ${code}` : `killed by ${signal ?? "a signal"}`;
      const tail = output.trim().split("\n").slice(-20).join("\n");
      reject(new Error(`${options.what}: ${[line.command, ...line.args].join(" ")} failed (${why})${tail === "" ? "" : `:\n${tail}`}`));
    });
  });
}
