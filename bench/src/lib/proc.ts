// Helpers for benchmarks that run daemons: start one with its output in a file, stop it by its
// pid (never by name), and read the CPU time of a process tree from /proc.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";

/** A daemon started by a benchmark, with its output going to a file. */
export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the process has exited. */
  hasExited(): boolean;
}

/**
 * Starts a daemon with standard output and standard error appended to `logFile` (never to the
 * benchmark's own output).
 * @param options `stdin: "pipe"` keeps a pipe open to the child, so a child that watches it
 *   can stop itself when the benchmark dies; `stdout: "pipe"` lets the caller read a ready line.
 */
export function startDaemon(name: string, command: string, args: readonly string[], logFile: string, options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: "pipe" | "ignore"; stdout?: "pipe" | "file" } = {}): Daemon {
  const fd = openSync(logFile, "a");
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [options.stdin ?? "ignore", options.stdout === "pipe" ? "pipe" : fd, fd],
  };
  let child: ChildProcess;
  try {
    child = spawn(command, args, spawnOptions);
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (error) => {
      done = true;
      resolve(`spawn failed: ${error.message}`);
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting ${name}: ${command} did not start (is it installed?)`);
  return { name, child, pid, exited, hasExited: () => done };
}

/** The pids of every descendant of a process, from `/proc/PID/task/TID/children`. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (p: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tasks) {
      let children: string;
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, "utf8");
      } catch {
        continue;
      }
      for (const word of children.split(" ")) {
        const c = Number(word);
        if (word.trim() !== "" && Number.isInteger(c) && !found.includes(c)) {
          found.push(c);
          visit(c);
        }
      }
    }
  };
  visit(pid);
  return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stops a daemon by its pid: SIGTERM, then SIGKILL for it and the descendants it had (an nginx
 * master killed hard would leave its workers behind) if it has not exited within `graceMs`.
 */
export async function stopDaemon(daemon: Daemon, graceMs = 5000): Promise<void> {
  if (daemon.hasExited()) return;
  const family = descendants(daemon.pid);
  signal(daemon.pid, "SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([daemon.exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
  clearTimeout(timer);
  if (timedOut) signal(daemon.pid, "SIGKILL");
  // Workers normally leave with their master; any that did not are killed by their own pid.
  for (const pid of family) signal(pid, timedOut ? "SIGKILL" : "SIGTERM");
  if (timedOut) await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds (user + system) a process or one of its threads has used so far, from
 * `/proc/PID/stat` (or `/proc/PID/task/TID/stat`); undefined when it is gone.
 */
export function cpuSeconds(pid: number, tid?: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it follow the
  // last ")". utime and stime are fields 14 and 15, so 12 and 13 after the state (field 3).
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clockTicks();
}
