// Stopping what a test started: by its pid (or its process group) only, never by name, so that
// other processes of the same program on the machine are left alone.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

/** Whether a process (or, with a negative pid, a process group) exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends a signal, ignoring a process that ended meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // it ended between the check and the signal
  }
}

/**
 * Stops a process: SIGTERM, then SIGKILL once `graceMs` has passed without it ending, then waits
 * (at most `graceMs` again) until it is gone. With `group`, both signals go to its process group
 * (the pid of a leader started with `detached: true`).
 * @returns whether it had to be killed.
 */
export async function stopPid(pid: number, options: { readonly graceMs?: number; readonly group?: boolean; readonly intervalMs?: number } = {}): Promise<boolean> {
  const { graceMs = 10_000, group = false, intervalMs = 50 } = options;
  const target = group ? -pid : pid;
  if (!alive(target)) return false;
  signal(target, "SIGTERM");
  const deadline = performance.now() + graceMs;
  while (alive(target) && performance.now() < deadline) await sleep(intervalMs);
  if (!alive(target)) return false;
  signal(target, "SIGKILL");
  const killDeadline = performance.now() + graceMs;
  while (alive(target) && performance.now() < killDeadline) await sleep(intervalMs);
  return true;
}

/**
 * Stops a child the test spawned, by its pid: SIGTERM, then SIGKILL once `graceMs` has passed,
 * and resolves when it has exited (its exit event seen, so nothing of it is left to reap).
 * @returns whether it had to be killed.
 */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<boolean> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
  const exited = once(child, "exit").then(() => "exited" as const);
  signal(pid, "SIGTERM");
  const timer = new AbortController();
  const outcome = await Promise.race([exited, sleep(graceMs, "grace over" as const, { signal: timer.signal }).catch(() => "exited" as const)]);
  timer.abort();
  if (outcome === "exited") return false;
  signal(pid, "SIGKILL");
  await exited;
  return true;
}
