/**
 * Restarting the box's components during an update, and telling when one is up: its process runs
 * and its heartbeat (`stats/<component>.json`, packages/component/src/stats.ts) was written by
 * that process since the restart. In production the components are systemd units; tests give a
 * manager of their own that starts real processes.
 */
import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { ComponentStats, isPidAlive } from "@coyote/spec";
import { COMPONENT_NAMES, componentUnitName, type ComponentName } from "@coyote/component";

const execFileAsync = promisify(execFile);

/** What the updater needs from whatever runs the components. */
export interface ServiceManager {
  /** Restarts a component (starts it when it was stopped); returns once the manager has done so. */
  restart(component: string): Promise<void>;
  /** Stops a component; returns once it is stopped. */
  stop(component: string): Promise<void>;
  /** The pid of the component's running main process, or undefined when it is not running. */
  mainPid(component: string): Promise<number | undefined>;
  /** Where the component's log is, for people. */
  logHint(component: string): string;
}

/** Options of {@link systemdManager}. */
export interface SystemdOptions {
  /** The state folder, where each component's own log is. */
  readonly stateDir: string;
  /** The systemctl binary (default `systemctl`). */
  readonly systemctl?: string;
  /** The deadline of one systemctl call, in milliseconds (default 2 minutes). */
  readonly timeoutMs?: number;
}

/** The systemd unit of a component, as `coyote setup` names it (`coyote-minion.service`, `coyote-crm.service`). */
export function unitOf(component: string): string {
  if (!(COMPONENT_NAMES as readonly string[]).includes(component)) throw new Error(`unit of component ${JSON.stringify(component)}: not a component name (${COMPONENT_NAMES.join(", ")})`);
  return componentUnitName(component as ComponentName);
}

/** The production manager: `systemctl restart|stop coyote-<component>.service`, the main pid from `systemctl show`. */
export function systemdManager(options: SystemdOptions): ServiceManager {
  const systemctl = options.systemctl ?? "systemctl";
  const timeout = options.timeoutMs ?? 120_000;
  const run = async (args: string[]): Promise<string> => {
    try {
      return (await execFileAsync(systemctl, args, { timeout, maxBuffer: 1024 * 1024, encoding: "utf8" })).stdout;
    } catch (cause) {
      const error = cause as { stderr?: string; message?: string };
      throw new Error(`${systemctl} ${args.join(" ")}: ${(error.stderr ?? "").trim() || error.message || String(cause)}`, { cause });
    }
  };
  return {
    restart: async (component) => {
      await run(["restart", unitOf(component)]);
    },
    stop: async (component) => {
      await run(["stop", unitOf(component)]);
    },
    mainPid: async (component) => {
      const pid = Number((await run(["show", "--property=MainPID", "--value", unitOf(component)])).trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    logHint: (component) => `${join(options.stateDir, "logs", `${component}.log`)} (and journalctl -u ${unitOf(component)})`,
  };
}

/** How {@link waitHealthy} waits. */
export interface HealthOptions {
  /** How long a component has to come up, in milliseconds. */
  readonly timeoutMs: number;
  /** The pause between two checks, in milliseconds (default 250). */
  readonly intervalMs?: number;
  /** How long it must stay up once it looked healthy, in milliseconds (default 0). */
  readonly settleMs?: number;
}

/** Whether a component came up, and if not the last reason seen. */
export type Health = { readonly healthy: true; readonly pid: number } | { readonly healthy: false; readonly reason: string };

/** The largest heartbeat file read. */
const MAX_STATS_BYTES = 1024 * 1024;

/** Reads a heartbeat file; undefined when it is missing, unreadable or invalid. */
async function readHeartbeat(file: string): Promise<ComponentStats | undefined> {
  try {
    if ((await stat(file)).size > MAX_STATS_BYTES) return undefined;
    const parsed = ComponentStats.safeParse(JSON.parse(await readFile(file, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** One look at a component: healthy, or why not. */
async function look(component: string, manager: ServiceManager, stateDir: string, since: number): Promise<Health> {
  const file = join(stateDir, "stats", `${component}.json`);
  const pid = await manager.mainPid(component).catch(() => undefined);
  if (pid === undefined || !isPidAlive(pid)) return { healthy: false, reason: "its process is not running" };
  const beat = await readHeartbeat(file);
  if (beat === undefined) return { healthy: false, reason: `no valid heartbeat in ${file}` };
  if (beat.pid !== pid) return { healthy: false, reason: `${file} was written by pid ${beat.pid}, not by the running pid ${pid}` };
  // The heartbeat names its own writer's start: the same pid, started after the restart began
  // (a second of slack for clocks that count in whole milliseconds differently).
  if (Date.parse(beat.writtenAt) < since - 1000) return { healthy: false, reason: `${file} was last written at ${beat.writtenAt}, before the restart` };
  return { healthy: true, pid };
}

/**
 * Waits until a component restarted at `since` (wall-clock milliseconds) runs and beats, then
 * checks that it still does after `settleMs`. The deadline is read on the monotonic clock.
 */
export async function waitHealthy(component: string, manager: ServiceManager, stateDir: string, since: number, options: HealthOptions): Promise<Health> {
  const deadline = performance.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 250;
  for (;;) {
    let last = await look(component, manager, stateDir, since);
    if (last.healthy) {
      if ((options.settleMs ?? 0) <= 0) return last;
      await sleep(options.settleMs);
      const again = await look(component, manager, stateDir, since);
      if (again.healthy && again.pid === last.pid) return again;
      last = again.healthy ? { healthy: false, reason: `it restarted (pid ${last.pid}, then ${again.pid})` } : again;
    }
    if (performance.now() > deadline) return { healthy: false, reason: last.reason };
    await sleep(interval);
  }
}
