import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isIPv4 } from "node:net";
import { ActivatorUnits, readJsonText, validate } from "@coyote/spec";
import { errorText } from "./runtime.ts";
import type { Unit } from "./runtime.ts";

// What the process runtime reads from /proc, its on-disk record, and the running of dump commands.

/** What the runtime reads of a process's /proc/<pid>/stat. */
export interface ProcStat {
  readonly state: string;
  readonly pgrp: number;
  readonly startTime: string;
}

/** One process of the on-disk record. */
export interface RecordedProcess {
  readonly pid: number;
  readonly startTime: string | undefined;
  readonly hash: string;
  readonly unit: Unit;
  /** The slot of its own network, when it runs in one. */
  readonly slot: number | undefined;
  /** Its address in its own network, when it runs in one. */
  readonly address: string | undefined;
}

/** The state, process group and start time of a process, or undefined when it is gone. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", pgrp: Number(fields[2]), startTime: fields[19] ?? "" };
}

/**
 * Checks that a unit's program exists and is executable, as the shell would look it up.
 * @throws Error with ENOENT or EACCES naming the program.
 */
export function findProgram(program: string, path: string): void {
  const candidates = program.includes("/") ? [program] : path.split(":").filter((dir) => dir !== "").map((dir) => join(dir, program));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return;
    } catch {
      // not this one
    }
  }
  throw new Error(`spawning ${program}: ENOENT (${program.includes("/") ? "no such executable file" : `not found in PATH ${path}`})`);
}

/** The network namespace of a process (`net:[inode]`), or undefined when it is gone. */
export function netNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/**
 * Waits until process `pid` (an `unshare --net` just spawned) is in a network namespace other
 * than the activator's: before that, a link moved "into its namespace" would land on the host.
 * @throws Error when it is not within 5 s, or the process is gone.
 */
export async function waitOwnNamespace(pid: number): Promise<string> {
  const own = netNamespace(process.pid);
  const until = performance.now() + 5000;
  for (;;) {
    const namespace = netNamespace(pid);
    if (namespace === undefined) throw new Error(`process ${pid} ended before it had a network of its own`);
    if (namespace !== own) return namespace;
    if (performance.now() > until) throw new Error(`process ${pid} had no network of its own within 5 s`);
    await sleep(1);
  }
}

/**
 * Kills every process in a network namespace: what is left of a unit whose processes left its
 * process group (a daemon that detached itself). Returns how many it killed.
 */
export function killNamespace(namespace: string): number {
  // Never the activator's own network: that would be every process of the box.
  if (namespace === netNamespace(process.pid)) return 0;
  let killed = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || netNamespace(Number(name)) !== namespace) continue;
    try {
      process.kill(Number(name), "SIGKILL");
      killed++;
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

/** The resident memory of a process in bytes (0 when it cannot be read). */
export function vmRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Signals a process group; a group that is gone is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** How a process ended, in words. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`;
}

/** The on-disk record of the processes: validated by hand, as it is this package's own file. */
export function parseProcessesFile(text: string, file: string): Map<string, RecordedProcess> {
  const value = readJsonText(text, file) as { schemaVersion?: unknown; processes?: unknown } | null;
  const out = new Map<string, RecordedProcess>();
  if (value === null || typeof value !== "object" || value.schemaVersion !== 1 || typeof value.processes !== "object" || value.processes === null) {
    throw new Error(`${file}: not a processes record (schemaVersion 1 with a processes object)`);
  }
  for (const [id, entry] of Object.entries(value.processes as Record<string, unknown>)) {
    const e = entry as { pid?: unknown; startTime?: unknown; hash?: unknown; unit?: unknown; slot?: unknown; address?: unknown } | null;
    if (e === null || typeof e !== "object" || typeof e.pid !== "number" || !Number.isInteger(e.pid) || e.pid <= 1 || typeof e.hash !== "string") {
      throw new Error(`${file}: processes.${id}: needs a pid above 1 and a hash`);
    }
    const units = validate(ActivatorUnits, { schemaVersion: 1, generatedAt: new Date(0).toISOString(), units: [e.unit] }, `${file}: processes.${id}.unit`);
    const unit = units.units[0];
    if (unit?.id !== id) throw new Error(`${file}: processes.${id}: holds unit ${unit?.id ?? "(none)"}`);
    if (e.slot !== undefined && (typeof e.slot !== "number" || !Number.isInteger(e.slot) || e.slot < 0)) throw new Error(`${file}: processes.${id}.slot: not a network slot`);
    if ((e.slot === undefined) !== (e.address === undefined) || (e.address !== undefined && (typeof e.address !== "string" || !isIPv4(e.address)))) throw new Error(`${file}: processes.${id}: a network slot needs an IPv4 address, and an address a slot`);
    out.set(id, { pid: e.pid, startTime: typeof e.startTime === "string" ? e.startTime : undefined, hash: e.hash, unit, slot: e.slot, address: e.address });
  }
  return out;
}

/**
 * Runs a dump command to its end within a bound. It runs in a process group of its own, killed
 * whole when the bound passes.
 * @throws Error with the exit status and the end of its standard error.
 */
export function runDumpCommand(command: readonly string[], options: { cwd: string; uid?: number; gid?: number; env: Record<string, string> }, timeoutMs: number): Promise<void> {
  const [program, ...args] = command;
  if (program === undefined) return Promise.reject(new Error("the dump command is empty"));
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...options, detached: true, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-1000);
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      reject(new Error(`the dump command ${command.join(" ")} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`running the dump command ${program}: ${errorText(error)}`, { cause: error }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`the dump command ${command.join(" ")} ${exitText(code, signal)}${stderr.trim() === "" ? "" : `: ${stderr.trim()}`}`));
    });
  });
}
