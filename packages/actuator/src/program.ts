/**
 * Running a daemon's own tool (`knotc`, `prosodyctl`, `postfix`, `doveadm`) from an actuator:
 * without a shell, with a deadline, with its output capped, optionally as another user. The one
 * runner the actuators share; each reads the outcome as its tool needs.
 */
import { spawn } from "node:child_process";

/** How {@link runProgram} runs a program. */
export interface ProgramOptions {
  /** The deadline, in milliseconds: the program is killed (SIGKILL) when it passes. */
  readonly timeoutMs: number;
  /** Ends the program (SIGKILL) when aborted; the promise then rejects with the abort reason. */
  readonly signal?: AbortSignal;
  /** How much of each of standard output and standard error is kept, in characters (default 1 MiB). */
  readonly maxOutput?: number;
  /** The user and group to run as (a process that may switch users). */
  readonly uid?: number;
  readonly gid?: number;
}

/** How a program run by {@link runProgram} ended. */
export interface ProgramOutcome {
  /** The exit code, or undefined when a signal ended it. */
  readonly code: number | undefined;
  /** The signal that ended it, or undefined when it exited. */
  readonly signal: NodeJS.Signals | undefined;
  /** Whether the deadline passed and it was killed. */
  readonly timedOut: boolean;
  /** What it wrote on standard output, cut at the cap. */
  readonly stdout: string;
  /** What it wrote on standard error, cut at the cap. */
  readonly stderr: string;
}

const DEFAULT_MAX_OUTPUT = 1 << 20;

/**
 * Runs a program to its end or its deadline. A non-zero exit is not an error: the caller decides
 * what it means.
 * @throws Error when the program cannot be started (`code` ENOENT for a missing binary), or with
 *   the signal's reason when `signal` aborts it.
 */
export function runProgram(file: string, args: readonly string[], options: ProgramOptions): Promise<ProgramOutcome> {
  const cap = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(options.signal.reason as Error);
      return;
    }
    const user = options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid };
    const child = spawn(file, [...args], { stdio: ["ignore", "pipe", "pipe"], ...user });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < cap) stdout += chunk.slice(0, cap - stdout.length);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < cap) stderr += chunk.slice(0, cap - stderr.length);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    const abort = () => child.kill("SIGKILL");
    options.signal?.addEventListener("abort", abort, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", abort);
    };
    child.once("error", (error) => {
      done();
      reject(error);
    });
    child.once("close", (code, signal) => {
      done();
      if (options.signal?.aborted === true) reject(options.signal.reason as Error);
      else resolve({ code: code ?? undefined, signal: signal ?? undefined, timedOut, stdout, stderr });
    });
  });
}
