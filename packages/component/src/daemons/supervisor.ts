import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CoyoteLogger } from "@coyote/log";
import { isPidAlive, writeFileAtomic } from "@coyote/spec";
import type { Backoff } from "../supervisor.ts";
import { DAEMONS, DAEMON_PROGRAM_DIRS, daemonPaths, findDaemonProgram, type DaemonDefinition, type DaemonPaths } from "./catalogue.ts";
import { groupMembers, leadsGroupRunning, lookupUser, signalGroup, watchSignature } from "./files.ts";
import { grantPassage } from "./passage.ts";
import { runBounded } from "./probes.ts";
import { daemonStatesPath, readDaemonStatesFile, type DaemonRunState, type DaemonState, type DaemonStatesFile } from "./state-file.ts";

/** How the daemon supervisor runs the catalogue's daemons. */
export interface DaemonSupervisorOptions {
  /** The state folder: configurations are read from it, logs and `run/daemons.json` written in it. */
  readonly stateDir: string;
  /** The supervisor's own logger. */
  readonly logger: CoyoteLogger;
  /** The daemons to run; the whole catalogue by default. */
  readonly daemons?: readonly DaemonDefinition[];
  /** Where programs are looked for; {@link DAEMON_PROGRAM_DIRS} by default. */
  readonly programDirs?: readonly string[];
  /** Restart backoff; by default 1 s doubling to 60 s, reset after 5 minutes of health. */
  readonly backoff?: Backoff;
  /** How often programs, configurations and their changes are looked at; 1 s by default. */
  readonly pollMs?: number;
  /** Whether daemons that need root may be started; `process.getuid() === 0` by default. */
  readonly asRoot?: boolean;
  /** How long a started daemon has to pass its readiness check; 30 s by default. */
  readonly readyTimeoutMs?: number;
}

interface Slot {
  readonly definition: DaemonDefinition;
  state: DaemonRunState;
  child?: ChildProcess;
  pid?: number;
  since?: string;
  startedAt: number;
  restarts: number;
  reloads: number;
  lastExit?: string;
  reloadError?: string;
  detail?: string;
  delayMs: number;
  /** The watched files' signature the running daemon has loaded. */
  loaded?: string;
  busy: boolean;
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 60_000, resetAfterMs: 300_000 };
const PREPARE_TIMEOUT_MS = 60_000;
const RELOAD_TIMEOUT_MS = 30_000;

/**
 * Runs the box's daemons (Knot, Postfix, Dovecot, Prosody) from the {@link DAEMONS} catalogue: each
 * one whose program is installed and whose configuration exists is started in its own process
 * group with its output in `logs/<name>.log`, checked for readiness, restarted with exponential
 * backoff when it dies, reloaded (never restarted) when its watched configuration changes, and
 * stopped by its process group. What it knows is published in `run/daemons.json`.
 */
export class DaemonSupervisor {
  readonly #options: DaemonSupervisorOptions;
  readonly #paths: DaemonPaths;
  readonly #backoff: Backoff;
  readonly #slots: Slot[];
  #poller?: NodeJS.Timeout;
  #stopping = false;
  readonly #root: boolean;
  #writing: Promise<void> = Promise.resolve();

  /** Makes a supervisor; nothing starts before {@link DaemonSupervisor.start}. */
  constructor(options: DaemonSupervisorOptions) {
    this.#options = options;
    this.#paths = daemonPaths(options.stateDir);
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#root = options.asRoot ?? process.getuid?.() === 0;
    this.#slots = (options.daemons ?? DAEMONS).map((definition) => ({ definition, state: "stopped", startedAt: 0, restarts: 0, reloads: 0, delayMs: this.#backoff.initialMs, busy: false }));
  }

  /**
   * Starts every daemon that can start, in catalogue order, waiting for each one's readiness, then
   * keeps watching: a program installed or a configuration written later starts its daemon then.
   */
  async start(): Promise<void> {
    await this.#stopLeftovers();
    for (const slot of this.#slots) await this.#tryStart(slot);
    await this.#writing;
    this.#poller = setInterval(() => void this.#tick(), this.#options.pollMs ?? 1000);
    this.#poller.unref();
  }

  /** How each daemon is doing. */
  states(): DaemonState[] {
    return this.#slots.map((s) => ({
      name: s.definition.name,
      state: s.state,
      restarts: s.restarts,
      reloads: s.reloads,
      ...(s.pid === undefined ? {} : { pid: s.pid }),
      ...(s.since === undefined ? {} : { since: s.since }),
      ...(s.lastExit === undefined ? {} : { lastExit: s.lastExit }),
      ...(s.reloadError === undefined ? {} : { reloadError: s.reloadError }),
      ...(s.detail === undefined ? {} : { detail: s.detail }),
    }));
  }

  /** Stops every daemon (its signal to its process group, SIGKILL after its grace) and restarts none after. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#poller) clearInterval(this.#poller);
    await Promise.all(this.#slots.map(async (slot) => {
      if (slot.timer) clearTimeout(slot.timer);
      const { pid, exited } = slot;
      if (pid !== undefined) {
        signalGroup(pid, slot.definition.stop.signal);
        const graceOver = sleep(slot.definition.stop.graceMs, "grace", { ref: false });
        if ((await Promise.race([exited, graceOver])) === "grace") signalGroup(pid, "SIGKILL");
        await exited;
        await this.#reapGroup(pid, slot.definition.stop.graceMs);
      }
      slot.state = "stopped";
      slot.pid = undefined;
      slot.since = undefined;
      this.#options.logger.event("COMPONENT_EXITED", { daemon: slot.definition.name, pid, reason: "stopped" }, `${slot.definition.name} stopped`);
    }));
    this.#publish();
    await this.#writing;
  }

  /**
   * Stops what a supervisor that died (SIGKILL, a lost terminal) left running: those daemons would
   * hold the ports their replacements need. Only a pid that still leads its group running the
   * daemon's program is stopped; a malformed file stops nothing.
   */
  async #stopLeftovers(): Promise<void> {
    let previous: DaemonStatesFile | undefined;
    try {
      previous = await readDaemonStatesFile(this.#options.stateDir);
    } catch (error) {
      this.#options.logger.event("ERROR", { err: error }, "the previous daemons' states are unreadable; nothing of theirs is stopped");
      return;
    }
    if (previous === undefined || previous.supervisorPid === process.pid || isPidAlive(previous.supervisorPid)) return;
    for (const left of previous.daemons) {
      const slot = this.#slots.find((s) => s.definition.name === left.name);
      if (slot === undefined || left.pid === undefined || !(await leadsGroupRunning(left.pid, slot.definition.program))) continue;
      this.#options.logger.event("COMPONENT_EXITED", { daemon: left.name, pid: left.pid, reason: "left running by a supervisor that is gone" }, `stopping the ${left.name} an earlier coyote up left running`);
      signalGroup(left.pid, slot.definition.stop.signal);
      await this.#reapGroup(left.pid, slot.definition.stop.graceMs);
    }
  }

  #tool(name: string): string | undefined {
    return findDaemonProgram(name, this.#options.programDirs ?? DAEMON_PROGRAM_DIRS);
  }

  async #tick(): Promise<void> {
    for (const slot of this.#slots) {
      if (this.#stopping || slot.busy) continue;
      if (slot.state === "not installed" || slot.state === "no configuration") await this.#tryStart(slot);
      else if (slot.state === "running") await this.#reloadIfChanged(slot);
    }
  }

  #set(slot: Slot, state: DaemonRunState, detail?: string): void {
    const changed = slot.state !== state || slot.detail !== detail;
    slot.state = state;
    slot.detail = detail;
    if (changed) this.#publish();
  }

  async #tryStart(slot: Slot): Promise<void> {
    if (this.#stopping) return;
    const { definition } = slot;
    slot.busy = true;
    try {
      const program = this.#tool(definition.program);
      const configFile = definition.configFile(this.#paths);
      if (program === undefined) this.#set(slot, "not installed", `${definition.program} not found; Debian package ${definition.packages.join(", ")}`);
      else if (definition.needsRoot !== undefined && !this.#root) this.#set(slot, "needs root", definition.needsRoot);
      else if (!existsSync(configFile)) this.#set(slot, "no configuration", `no ${configFile} yet`);
      else await this.#launch(slot, program);
    } finally {
      slot.busy = false;
    }
  }

  async #launch(slot: Slot, program: string): Promise<void> {
    const { definition } = slot;
    const name = definition.name;
    // Taken before the start: a change written while it starts is reloaded at the next look.
    const signature = await watchSignature(definition.watch(this.#paths));
    // Started by root, its processes switch to their own users, who must reach their folders.
    if (process.getuid?.() === 0 && definition.passage.length > 0) {
      try {
        await grantPassage(this.#paths.stateDir, definition.passage);
      } catch (error) {
        slot.lastExit = error instanceof Error ? error.message : String(error);
        this.#options.logger.event("ERROR", { daemon: name, reason: slot.lastExit }, `${name} cannot reach its folders`);
        this.#scheduleRestart(slot);
        return;
      }
    }
    if (definition.prepare) {
      const tool = this.#tool(definition.prepare.tool);
      const result = tool === undefined ? { code: undefined, output: `${definition.prepare.tool} not found` } : await runBounded(tool, definition.prepare.args(this.#paths), PREPARE_TIMEOUT_MS);
      if (result.code !== 0) {
        slot.lastExit = `${definition.prepare.tool} ${definition.prepare.args(this.#paths).join(" ")} failed: ${result.output.trim().slice(-300) || `exit ${String(result.code)}`}`;
        this.#options.logger.event("ERROR", { daemon: name, reason: slot.lastExit }, `preparing ${name} failed`);
        this.#scheduleRestart(slot);
        return;
      }
    }
    let owner: { uid: number; gid: number } | undefined;
    // The real uid, not the asRoot knob: only root can give a child another user.
    if (definition.user !== undefined && process.getuid?.() === 0) {
      owner = lookupUser(definition.user);
      if (owner === undefined) {
        slot.lastExit = `user ${definition.user} does not exist (Debian package ${definition.packages.join(", ")} makes it)`;
        this.#scheduleRestart(slot);
        return;
      }
    }
    mkdirSync(this.#paths.logsDir, { recursive: true });
    mkdirSync(this.#paths.runDir, { recursive: true });
    const out = openSync(join(this.#paths.logsDir, `${name}.log`), "a");
    let child: ChildProcess;
    try {
      // detached: the daemon leads its own process group, so that stopping it reaches its children.
      child = spawn(program, [...definition.args(this.#paths)], { detached: true, stdio: ["ignore", out, out], ...owner });
    } finally {
      closeSync(out);
    }
    slot.child = child;
    slot.pid = child.pid;
    slot.startedAt = performance.now();
    slot.lastExit = undefined;
    // An object, not a let: the exit handler flips it while the readiness loop below awaits.
    const run = { gone: false };
    slot.exited = new Promise<void>((resolve) => {
      const ended = (reason: string) => {
        if (run.gone) return;
        run.gone = true;
        resolve();
        this.#onExit(slot, child, reason);
      };
      child.once("exit", (code, signal) => ended(signal ? `killed by ${signal}` : `exited with code ${String(code)}`));
      child.once("error", (error) => ended(error.message));
    });
    this.#set(slot, "starting");
    const deadline = performance.now() + (this.#options.readyTimeoutMs ?? 30_000);
    const over = () => run.gone || this.#stopping;
    while (!over()) {
      const probe = await definition.ready({ paths: this.#paths, tool: (n) => this.#tool(n), timeoutMs: 5000 });
      if (over()) return;
      if (probe.ok) {
        slot.loaded = signature;
        slot.since = new Date().toISOString();
        this.#set(slot, "running");
        this.#options.logger.event("COMPONENT_STARTED", { daemon: name, pid: child.pid, restarts: slot.restarts }, `${name} started and is ready`);
        return;
      }
      if (performance.now() > deadline) {
        slot.lastExit = `not ready within ${Math.round((this.#options.readyTimeoutMs ?? 30_000) / 1000)} s: ${probe.why}`;
        this.#options.logger.event("ERROR", { daemon: name, pid: child.pid, reason: slot.lastExit }, `${name} did not become ready; stopping it`);
        if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
        return;
      }
      slot.detail = probe.why;
      await sleep(200);
    }
  }

  #onExit(slot: Slot, child: ChildProcess, reason: string): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    const pid = child.pid;
    if (this.#stopping) return;
    // What the daemon left behind in its group dies with it: Postfix's smtpd processes, say, keep
    // its listening socket open, and a new master could not bind the port while they live.
    if (pid !== undefined) signalGroup(pid, "SIGKILL");
    slot.pid = undefined;
    slot.since = undefined;
    slot.lastExit ??= reason;
    if (performance.now() - slot.startedAt >= this.#backoff.resetAfterMs) slot.delayMs = this.#backoff.initialMs;
    this.#options.logger.event("COMPONENT_EXITED", { daemon: slot.definition.name, pid, reason: slot.lastExit }, `${slot.definition.name} ended`);
    this.#scheduleRestart(slot);
  }

  #scheduleRestart(slot: Slot): void {
    if (this.#stopping) return;
    const delay = slot.delayMs;
    slot.delayMs = Math.min(slot.delayMs * 2, this.#backoff.maxMs);
    this.#set(slot, "restarting", `next start in ${delay} ms`);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      slot.restarts += 1;
      void this.#tryStart(slot);
    }, delay);
  }

  async #reloadIfChanged(slot: Slot): Promise<void> {
    const { definition } = slot;
    const pid = slot.pid;
    if (pid === undefined) return;
    slot.busy = true;
    try {
      const signature = await watchSignature(definition.watch(this.#paths));
      // A reload caught between two files of one commit is followed by another at the next look.
      if (signature === slot.loaded) return;
      slot.loaded = signature;
      const error = await this.#reload(definition, pid);
      slot.reloadError = error;
      if (error === undefined) {
        slot.reloads += 1;
        this.#options.logger.event("CONFIG_RELOADED", { daemon: definition.name, pid }, `${definition.name} reloaded its configuration`);
      } else {
        this.#options.logger.event("ERROR", { daemon: definition.name, pid, reason: error }, `reloading ${definition.name} failed`);
      }
      this.#publish();
    } finally {
      slot.busy = false;
    }
  }

  async #reload(definition: DaemonDefinition, pid: number): Promise<string | undefined> {
    const action = definition.reload;
    if (action.kind === "signal") {
      try {
        process.kill(pid, action.signal);
        return undefined;
      } catch (error) {
        return `sending ${action.signal} to ${pid}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
      }
    }
    const tool = this.#tool(action.tool);
    if (tool === undefined) return `${action.tool} not found`;
    const result = await runBounded(tool, action.args(this.#paths), RELOAD_TIMEOUT_MS);
    return result.code === 0 ? undefined : `${action.tool} ${action.args(this.#paths).join(" ")}: ${result.code === undefined ? "did not finish" : `exit ${result.code}`} ${result.output.trim().slice(-300)}`;
  }

  /** Waits until nothing is left in a process group, and kills what is left after `graceMs`. */
  async #reapGroup(pgid: number, graceMs: number): Promise<void> {
    const deadline = performance.now() + graceMs;
    while ((await groupMembers(pgid)).length > 0) {
      if (performance.now() > deadline) {
        signalGroup(pgid, "SIGKILL");
        await sleep(50);
        if (performance.now() > deadline + 2000) return;
      }
      await sleep(50);
    }
  }

  #publish(): void {
    const file: DaemonStatesFile = { schemaVersion: 1, supervisorPid: process.pid, writtenAt: new Date().toISOString(), daemons: this.states() };
    const path = daemonStatesPath(this.#options.stateDir);
    // Writes are chained so that two never race on the temp file; a failed write is retried by the next change.
    this.#writing = this.#writing
      .then(() => {
        mkdirSync(this.#paths.runDir, { recursive: true });
        return writeFileAtomic(path, `${JSON.stringify(file)}\n`);
      })
      .catch((error: unknown) => this.#options.logger.event("ERROR", { err: error, file: path }, "writing the daemons' states failed"));
  }
}
