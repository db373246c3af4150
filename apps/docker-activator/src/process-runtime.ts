import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync, realpathSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CoyoteLogger } from "@coyote/log";
import { ActivatorUnits, readJsonText, validate, writeFileAtomic } from "@coyote/spec";
import { errorText, unitEnvironment } from "./runtime.ts";
import type { DumpHook, ObservedUnit, Runtime, Unit } from "./runtime.ts";
import { withoutSecretValues } from "./unit-secrets.ts";

/** Where the process runtime records the processes it started, relative to the state folder. */
export const PROCESSES_FILE = "activator/processes.json";
/** Where each process unit's output goes, relative to the state folder. */
export const PROCESS_LOGS_DIR = "activator/logs";

/** Options of {@link ProcessRuntime}. */
export interface ProcessRuntimeOptions {
  /** The state folder. */
  readonly stateDir: string;
  /** Variables every unit (and dump command) inherits, such as PATH; the unit's own come on top. */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** The activator's logger. */
  readonly logger: CoyoteLogger;
  /**
   * The user and group units (and their dump commands) run as, when the activator runs as root
   * (default 65534:65534, nobody). Not root, the activator cannot switch users: units then run as
   * its own user, which is logged as a warning at start.
   */
  readonly unitUser?: { readonly uid: number; readonly gid: number };
  /** The working directory of a unit without a `cwd` of its own (default `/`): never the state folder. */
  readonly workDir?: string;
}

/** The default user and group of process units: nobody. */
export const DEFAULT_UNIT_USER = { uid: 65534, gid: 65534 } as const;

interface Tracked {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: tells our process apart from a later one with the same pid. */
  readonly startTime: string | undefined;
  readonly hash: string;
  readonly unit: Unit;
  /** Set for a process this activator spawned (its exit is seen); absent for an adopted one. */
  readonly child: ChildProcess | undefined;
}

interface ProcStat {
  readonly state: string;
  readonly pgrp: number;
  readonly startTime: string;
}

function procStat(pid: number): ProcStat | undefined {
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

function vmRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`;
}

/** The on-disk record of the processes: validated by hand, as it is this package's own file. */
function parseProcessesFile(text: string, file: string): Map<string, { pid: number; startTime: string | undefined; hash: string; unit: Unit }> {
  const value = readJsonText(text, file) as { schemaVersion?: unknown; processes?: unknown } | null;
  const out = new Map<string, { pid: number; startTime: string | undefined; hash: string; unit: Unit }>();
  if (value === null || typeof value !== "object" || value.schemaVersion !== 1 || typeof value.processes !== "object" || value.processes === null) {
    throw new Error(`${file}: not a processes record (schemaVersion 1 with a processes object)`);
  }
  for (const [id, entry] of Object.entries(value.processes as Record<string, unknown>)) {
    const e = entry as { pid?: unknown; startTime?: unknown; hash?: unknown; unit?: unknown } | null;
    if (e === null || typeof e !== "object" || typeof e.pid !== "number" || !Number.isInteger(e.pid) || e.pid <= 1 || typeof e.hash !== "string") {
      throw new Error(`${file}: processes.${id}: needs a pid above 1 and a hash`);
    }
    const units = validate(ActivatorUnits, { schemaVersion: 1, generatedAt: new Date(0).toISOString(), units: [e.unit] }, `${file}: processes.${id}.unit`);
    const unit = units.units[0];
    if (unit?.id !== id) throw new Error(`${file}: processes.${id}: holds unit ${unit?.id ?? "(none)"}`);
    out.set(id, { pid: e.pid, startTime: typeof e.startTime === "string" ? e.startTime : undefined, hash: e.hash, unit });
  }
  return out;
}

/**
 * The `process` runtime: each unit is a child process in a process group of its own (so that a
 * stop reaches the shell's children too), detached from the activator so that it survives an
 * activator restart. The pids and start times are recorded in `activator/processes.json`; a new
 * activator adopts a recorded process when its pid is alive with the same start time.
 */
export class ProcessRuntime implements Runtime {
  /** This is the process runtime. */
  readonly kind = "process" as const;
  readonly #options: ProcessRuntimeOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #exits = new Map<string, string>();
  #writing: Promise<void> = Promise.resolve();
  /**
   * Who units run as: a uid and gid to switch to, or undefined when the activator cannot switch
   * (it is not root) and units run as its own user.
   */
  readonly unitUser: { readonly uid: number; readonly gid: number } | undefined;

  private constructor(options: ProcessRuntimeOptions) {
    this.#options = options;
    const user = options.unitUser ?? DEFAULT_UNIT_USER;
    for (const [what, id] of [["uid", user.uid], ["gid", user.gid]] as const) {
      // Root is refused: a unit is a stranger's code and must not own the box.
      if (!Number.isInteger(id) || id < 1 || id > 4294967294) throw new Error(`process runtime: the units' ${what} ${String(id)} is not an unprivileged id (1 to 4294967294)`);
    }
    this.unitUser = process.getuid?.() === 0 ? user : undefined;
  }

  /** How a unit is spawned: as the units' user, outside the state folder. */
  #spawnIdentity(unit: Unit): { cwd: string; uid?: number; gid?: number } {
    const cwd = resolve(unit.cwd ?? this.#options.workDir ?? "/");
    const real = (path: string) => {
      try {
        return realpathSync(path);
      } catch {
        return path;
      }
    };
    const state = real(resolve(this.#options.stateDir));
    const inside = real(cwd);
    if (inside === state || inside.startsWith(state + sep)) throw new Error(`unit ${unit.id}: its working directory ${cwd} is inside the state folder, which units have no access to`);
    return { cwd, ...(this.unitUser === undefined ? {} : { uid: this.unitUser.uid, gid: this.unitUser.gid }) };
  }

  /**
   * Makes the runtime and adopts the processes a previous activator recorded, when they are still
   * the same processes.
   */
  static async open(options: ProcessRuntimeOptions): Promise<ProcessRuntime> {
    const runtime = new ProcessRuntime(options);
    const file = join(options.stateDir, PROCESSES_FILE);
    let text: string | undefined;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (runtime.unitUser === undefined) {
      options.logger.warn(
        { uid: process.getuid?.() },
        "the activator does not run as root, so it cannot switch process units to an unprivileged user: they run as the activator's own user and can read what it can",
      );
    } else {
      options.logger.info({ uid: runtime.unitUser.uid, gid: runtime.unitUser.gid }, `process units run as uid ${runtime.unitUser.uid}, gid ${runtime.unitUser.gid}`);
    }
    if (text !== undefined) {
      try {
        for (const [id, entry] of parseProcessesFile(text, PROCESSES_FILE)) {
          const stat = procStat(entry.pid);
          if (stat !== undefined && stat.state !== "Z" && stat.startTime === entry.startTime) {
            runtime.#tracked.set(id, { ...entry, child: undefined });
            options.logger.info({ unit: id, pid: entry.pid }, `adopted process ${entry.pid} of unit ${id}`);
          }
        }
      } catch (error) {
        // A damaged record only loses the adoption of running processes; they are then started
        // anew on their next wake (and the port conflict, if any, shows in the unit's error).
        options.logger.error({ file, err: error }, "ignoring an invalid processes record");
      }
    }
    await runtime.#persist();
    return runtime;
  }

  #alive(tracked: Tracked): boolean {
    if (tracked.child !== undefined) return tracked.child.exitCode === null && tracked.child.signalCode === null;
    const stat = procStat(tracked.pid);
    return stat !== undefined && stat.state !== "Z" && stat.state !== "X" && stat.startTime === tracked.startTime;
  }

  #persist(): Promise<void> {
    const processes: Record<string, unknown> = {};
    for (const [id, t] of this.#tracked) processes[id] = { pid: t.pid, startTime: t.startTime, hash: t.hash, unit: withoutSecretValues(t.unit) };
    const text = `${JSON.stringify({ schemaVersion: 1, processes }, null, 2)}\n`;
    const file = join(this.#options.stateDir, PROCESSES_FILE);
    // Chained, so that two writes never race on the temp file and the last state wins.
    this.#writing = this.#writing.then(async () => {
      await mkdir(join(this.#options.stateDir, "activator"), { recursive: true });
      await writeFileAtomic(file, text);
    });
    return this.#writing;
  }

  /** Every tracked process that is alive; the dead ones are forgotten. */
  observe(): Promise<Map<string, ObservedUnit>> {
    const out = new Map<string, ObservedUnit>();
    let changed = false;
    for (const [id, tracked] of this.#tracked) {
      if (this.#alive(tracked)) out.set(id, { running: true, hash: tracked.hash, unit: tracked.unit });
      else {
        this.#forget(id, tracked);
        changed = true;
      }
    }
    return changed ? this.#persist().then(() => out) : Promise.resolve(out);
  }

  #forget(id: string, tracked: Tracked): void {
    if (tracked.child !== undefined && !this.#exits.has(id)) this.#exits.set(id, exitText(tracked.child.exitCode, tracked.child.signalCode));
    else if (tracked.child === undefined && !this.#exits.has(id)) this.#exits.set(id, `process ${tracked.pid} is gone`);
    this.#tracked.delete(id);
  }

  /** Nothing to make ahead for a process: it exists only while it runs. */
  ensure(_unit: Unit, _hash: string): Promise<void> {
    return Promise.resolve();
  }

  async start(unit: Unit, hash: string): Promise<void> {
    const existing = this.#tracked.get(unit.id);
    if (existing !== undefined && this.#alive(existing)) return;
    const [program, ...args] = unit.command ?? [];
    if (program === undefined) throw new Error(`unit ${unit.id} has no command`);
    const identity = this.#spawnIdentity(unit);
    const logs = join(this.#options.stateDir, PROCESS_LOGS_DIR);
    await mkdir(logs, { recursive: true });
    const fd = openSync(join(logs, `${unit.id}.log`), "a", 0o640);
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        ...identity,
        env: { ...this.#options.baseEnv, ...unitEnvironment(unit) },
        // Its own process group, so that stop reaches its children, and no tie to the activator,
        // so that it survives an activator restart and is adopted again.
        detached: true,
        stdio: ["ignore", fd, fd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
    } catch (error) {
      throw new Error(`spawning ${program}: ${errorText(error)}`, { cause: error });
    } finally {
      closeSync(fd);
    }
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`spawning ${program}: no pid`);
    child.once("exit", (code, signal) => this.#exits.set(unit.id, exitText(code, signal)));
    this.#exits.delete(unit.id);
    this.#tracked.set(unit.id, { pid, startTime: procStat(pid)?.startTime, hash, unit, child });
    await this.#persist();
  }

  status(unitId: string): Promise<{ running: boolean; exit?: string }> {
    const tracked = this.#tracked.get(unitId);
    if (tracked !== undefined && this.#alive(tracked)) return Promise.resolve({ running: true });
    const exit = this.#exits.get(unitId);
    return Promise.resolve(exit === undefined ? { running: false } : { running: false, exit });
  }

  async #waitGone(tracked: Tracked, ms: number): Promise<boolean> {
    const until = performance.now() + ms;
    while (this.#alive(tracked)) {
      if (performance.now() >= until) return false;
      await sleep(20);
    }
    return true;
  }

  async stop(unitId: string, graceMs: number): Promise<void> {
    const tracked = this.#tracked.get(unitId);
    if (tracked === undefined) return;
    if (this.#alive(tracked)) {
      signalGroup(tracked.pid, "SIGTERM");
      if (!(await this.#waitGone(tracked, graceMs))) {
        this.#options.logger.warn({ unit: unitId, pid: tracked.pid, graceMs }, `unit ${unitId} did not stop within ${graceMs} ms of SIGTERM; killing it`);
        signalGroup(tracked.pid, "SIGKILL");
        if (!(await this.#waitGone(tracked, 5000))) throw new Error(`process ${tracked.pid} survived SIGKILL for 5 s`);
      }
    }
    // Children that outlived their leader belong to the unit too.
    signalGroup(tracked.pid, "SIGKILL");
    this.#forget(unitId, tracked);
    await this.#persist();
  }

  async remove(unitId: string): Promise<void> {
    await this.stop(unitId, 10_000);
    this.#exits.delete(unitId);
  }

  async dump(unit: Unit, hook: DumpHook, timeoutMs: number): Promise<void> {
    const tracked = this.#tracked.get(unit.id);
    if (tracked === undefined || !this.#alive(tracked)) throw new Error("the unit is not running");
    if (hook.kind === "signal") {
      process.kill(tracked.pid, hook.signal);
      if (hook.signal === "SIGTERM") {
        // SIGTERM asks the app to save and exit: the dump is done when it has exited.
        if (!(await this.#waitGone(tracked, timeoutMs))) throw new Error(`it did not exit within ${timeoutMs} ms of SIGTERM`);
        return;
      }
      // Another signal has no completion to wait for; an app that does not handle it dies of it
      // (the default action), which means its state was not saved.
      await this.#waitGone(tracked, Math.min(1000, timeoutMs));
      if (!this.#alive(tracked)) throw new Error(`it died of ${hook.signal} instead of dumping its state (${this.#exits.get(unit.id) ?? "exited"})`);
      return;
    }
    await runDumpCommand(hook.command, { ...this.#spawnIdentity(unit), env: { ...this.#options.baseEnv, ...unitEnvironment(unit), COYOTE_UNIT_PID: String(tracked.pid) } }, timeoutMs);
  }

  memory(unitIds: readonly string[]): Promise<Map<string, number>> {
    const groups = new Map<number, string>();
    for (const id of unitIds) {
      const tracked = this.#tracked.get(id);
      if (tracked !== undefined && this.#alive(tracked)) groups.set(tracked.pid, id);
    }
    const out = new Map<string, number>();
    if (groups.size === 0) return Promise.resolve(out);
    // One pass over /proc for all units: a unit is its process group (a shell and its children).
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const stat = procStat(Number(name));
      const id = stat === undefined ? undefined : groups.get(stat.pgrp);
      if (id === undefined) continue;
      out.set(id, (out.get(id) ?? 0) + vmRssBytes(Number(name)));
    }
    return Promise.resolve(out);
  }

  async close(): Promise<void> {
    await this.#writing.catch(() => undefined);
  }
}

/**
 * Runs a dump command to its end within a bound. It runs in a process group of its own, killed
 * whole when the bound passes.
 * @throws Error with the exit status and the end of its standard error.
 */
function runDumpCommand(command: readonly string[], options: { cwd: string; uid?: number; gid?: number; env: Record<string, string> }, timeoutMs: number): Promise<void> {
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
