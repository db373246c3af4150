import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, realpathSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CoyoteLogger } from "@coyote/log";
import { holdsCapabilities, writeFileAtomic } from "@coyote/spec";
import type { ProcessUnitNetwork } from "./process-network.ts";
import { exitText, findProgram, killNamespace, netNamespace, waitOwnNamespace, parseProcessesFile, procStat, runDumpCommand, signalGroup, vmRssBytes } from "./process-support.ts";
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
  /**
   * The networks of units: each unit in a network namespace of its own. Used when the activator
   * runs as root; without it (or without root) units share the host's network.
   */
  readonly network?: ProcessUnitNetwork;
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
  /** The slot of the unit's own network, when it runs in one. */
  readonly slot: number | undefined;
  /** The unit's address in its own network, when it runs in one. */
  readonly address: string | undefined;
  /** The unit's own network namespace (`net:[inode]`), when it runs in one. */
  readonly netns: string | undefined;
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
    // Root, or a production activator holding the capabilities to switch users.
    this.unitUser = holdsCapabilities("CAP_SETUID", "CAP_SETGID") ? user : undefined;
  }

  /** Where a unit works: outside the state folder. */
  #workDir(unit: Unit): string {
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
    return cwd;
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
            runtime.#tracked.set(id, { ...entry, child: undefined, netns: entry.slot === undefined ? undefined : netNamespace(entry.pid) });
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
    for (const [id, t] of this.#tracked) processes[id] = { pid: t.pid, startTime: t.startTime, hash: t.hash, unit: withoutSecretValues(t.unit), ...(t.slot === undefined ? {} : { slot: t.slot, address: t.address }) };
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

  /** The network this runtime gives units, when it can (it needs root). */
  get #network(): ProcessUnitNetwork | undefined {
    return this.unitUser === undefined ? undefined : this.#options.network;
  }

  /**
   * How a unit's command is run: as is, or (with unit networks) through `unshare` into a new
   * network namespace, a shell that waits for its network, and `setpriv` down to the units' user.
   */
  #launch(unit: Unit, command: readonly string[], slot: number | undefined): { program: string; args: string[]; uid?: number; gid?: number; host: string } {
    const network = this.#network;
    const user = this.unitUser;
    const [program, ...args] = command;
    if (program === undefined) throw new Error(`unit ${unit.id} has no command`);
    if (slot === undefined || network === undefined || user === undefined) return { program, args, ...(user ?? {}), host: unit.host };
    // The program is run by setpriv inside the new namespace, where a missing one is only an exit
    // status: look for it first, so that the error names it as a direct spawn would.
    findProgram(program, unit.env.PATH ?? this.#options.baseEnv.PATH ?? "");
    const [wrapper, ...wrapped] = network.launchCommand(user, command);
    return { program: wrapper ?? program, args: wrapped, host: network.link(slot).unitAddress };
  }

  async start(unit: Unit, hash: string): Promise<void> {
    const existing = this.#tracked.get(unit.id);
    if (existing !== undefined && this.#alive(existing)) return;
    const network = this.#network;
    const busy = new Set([...this.#tracked.values()].flatMap((t) => (t.slot === undefined ? [] : [t.slot])));
    for (let attempt = 1; ; attempt++) {
      const slot = network?.freeSlot(busy);
      const launch = this.#launch(unit, unit.command ?? [], slot);
      const child = await this.#spawn(unit, launch, slot !== undefined);
      const pid = child.pid;
      if (pid === undefined) throw new Error(`spawning ${unit.command?.[0] ?? "(no command)"}: no pid`);
      if (network !== undefined && slot !== undefined) {
        try {
          await waitOwnNamespace(pid);
          await network.attach(pid, slot);
          child.stdin?.end("go\n");
        } catch (error) {
          signalGroup(pid, "SIGKILL");
          // Another activator on this machine took the same slot between the check and the link.
          if (attempt < 3 && /File exists/.test(errorText(error))) {
            busy.add(slot);
            continue;
          }
          throw error;
        }
      }
      child.once("exit", (code, signal) => this.#exits.set(unit.id, exitText(code, signal)));
      this.#exits.delete(unit.id);
      const netns = slot === undefined ? undefined : netNamespace(pid);
      this.#tracked.set(unit.id, { pid, startTime: procStat(pid)?.startTime, hash, unit, child, slot, address: slot === undefined ? undefined : launch.host, netns });
      await this.#persist();
      return;
    }
  }

  /** Spawns a unit's launch command, its output appended to the unit's log. */
  async #spawn(unit: Unit, launch: { program: string; args: string[]; uid?: number; gid?: number; host: string }, waitsForNetwork: boolean): Promise<ChildProcess> {
    const cwd = this.#workDir(unit);
    const logs = join(this.#options.stateDir, PROCESS_LOGS_DIR);
    await mkdir(logs, { recursive: true });
    const fd = openSync(join(logs, `${unit.id}.log`), "a", 0o640);
    try {
      const child = spawn(launch.program, launch.args, {
        cwd,
        ...(launch.uid === undefined ? {} : { uid: launch.uid, gid: launch.gid }),
        env: { ...this.#options.baseEnv, ...unitEnvironment(unit, launch.host) },
        // Its own process group, so that stop reaches its children, and no tie to the activator,
        // so that it survives an activator restart and is adopted again.
        detached: true,
        stdio: [waitsForNetwork ? "pipe" : "ignore", fd, fd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      child.unref();
      return child;
    } catch (error) {
      throw new Error(`spawning ${unit.command?.[0] ?? "(no command)"}: ${errorText(error)}`, { cause: error });
    } finally {
      closeSync(fd);
    }
  }

  /** The address a running unit is reached at: its own network's, or its `host`. */
  serveHost(unit: Unit): string | undefined {
    return this.#tracked.get(unit.id)?.address;
  }

  /** Where the readiness probe connects: where the unit is reached. */
  probeHost(unit: Unit): Promise<string | undefined> {
    return Promise.resolve(this.serveHost(unit));
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
    // Children that outlived their leader belong to the unit too, and so does every process in its
    // own network, even one that left the process group.
    signalGroup(tracked.pid, "SIGKILL");
    if (tracked.netns !== undefined) {
      const escaped = killNamespace(tracked.netns);
      if (escaped > 0) this.#options.logger.warn({ unit: unitId, processes: escaped }, `killed ${escaped} process(es) of unit ${unitId} that had left its process group`);
    }
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
    // A dump command runs where its unit does: as its user, in its network.
    const cwd = this.#workDir(unit);
    const network = this.#network;
    const user = this.unitUser;
    const command =
      tracked.address === undefined || network === undefined || user === undefined
        ? hook.command
        : network.enterCommand(tracked.pid, user, hook.command);
    const identity = command === hook.command && user !== undefined ? { uid: user.uid, gid: user.gid } : {};
    const host = this.serveHost(unit) ?? unit.host;
    await runDumpCommand(command, { cwd, ...identity, env: { ...this.#options.baseEnv, ...unitEnvironment(unit, host), COYOTE_UNIT_PID: String(tracked.pid) } }, timeoutMs);
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

