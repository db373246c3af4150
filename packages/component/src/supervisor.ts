import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import type { ComponentContext, RunnableComponent, RunningComponent } from "./component.ts";
import { startStatsHeartbeat } from "./stats.ts";

/** How a supervised component is doing. */
export interface ComponentState {
  /** The component's name. */
  readonly name: string;
  /** `running`, `restarting` (waiting out its backoff after it died) or `stopped`. */
  readonly state: "running" | "restarting" | "stopped";
  /** How often it has been restarted after dying. */
  readonly restarts: number;
  /** Its process id: its own in `processes` mode, the supervisor's in `one-process` mode. */
  readonly pid?: number;
}

/** Restart backoff: doubles from `initialMs` up to `maxMs`, and starts over after a long healthy run. */
export interface Backoff {
  /** The first delay before a restart. */
  readonly initialMs: number;
  /** The longest delay. */
  readonly maxMs: number;
  /** A run at least this long counts as healthy and resets the delay. */
  readonly resetAfterMs: number;
}

/** How the supervisor runs its components. */
export interface SupervisorOptions {
  /** The state folder given to every component. */
  readonly stateDir: string;
  /** The supervisor's own logger. */
  readonly logger: CoyoteLogger;
  /**
   * `one-process` runs every component inside this process (easy to debug);
   * `processes` runs each in its own child process, so that one crash or restart leaves the others'
   * memory and connections alone.
   */
  readonly mode: "one-process" | "processes";
  /**
   * For `processes`: the command that runs ONE component in the foreground; the component's name
   * is appended to `args` (e.g. `node --import tsx packages/cli/src/main.ts run`).
   */
  readonly spawnCommand?: {
    readonly command: string;
    readonly args: readonly string[];
    /** Node's flags for one component's process, put before `args` (its V8 settings). */
    readonly nodeFlags?: (name: string) => readonly string[];
  };
  /** Restart backoff; by default 0.5 s doubling to 30 s, reset after a minute of health. */
  readonly backoff?: Backoff;
  /** How long a child process gets to stop after SIGTERM before it is killed; 10 s by default. */
  readonly stopTimeoutMs?: number;
  /** The level of the components' own loggers in `one-process` mode. */
  readonly logLevel?: "debug" | "info" | "warn" | "error" | "silent";
}

interface Slot {
  readonly definition: RunnableComponent;
  state: ComponentState["state"];
  restarts: number;
  delayMs: number;
  pid?: number;
  stop?: () => Promise<void>;
  timer?: NodeJS.Timeout;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

/**
 * Starts components and restarts the ones that die (docs/ARCHITECTURE.md, "Components"), with
 * exponential backoff so that a component that cannot start does not spin.
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #backoff: Backoff;
  readonly #slots: Slot[];
  #stopping = false;

  /**
   * Makes a supervisor; nothing starts before {@link Supervisor.start}.
   * @param components the components to run, in start order.
   * @param options how to run them.
   */
  constructor(components: readonly RunnableComponent[], options: SupervisorOptions) {
    if (options.mode === "processes" && !options.spawnCommand) {
      throw new Error("supervisor: the processes mode needs a spawnCommand");
    }
    this.#options = options;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#slots = components.map((definition) => ({ definition, state: "stopped", restarts: 0, delayMs: this.#backoff.initialMs }));
  }

  /** Starts every component in order; a component that fails to start is retried with backoff. */
  async start(): Promise<void> {
    for (const slot of this.#slots) await this.#launch(slot);
  }

  /** How each component is doing. */
  states(): ComponentState[] {
    return this.#slots.map((slot) => ({
      name: slot.definition.name,
      state: slot.state,
      restarts: slot.restarts,
      ...(slot.pid === undefined ? {} : { pid: slot.pid }),
    }));
  }

  /** Stops every component, in reverse start order, and restarts nothing after. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const slot of [...this.#slots].reverse()) {
      if (slot.timer) clearTimeout(slot.timer);
      const stop = slot.stop;
      slot.stop = undefined;
      slot.state = "stopped";
      if (stop) await stop();
    }
  }

  async #launch(slot: Slot): Promise<void> {
    if (this.#stopping) return;
    const name = slot.definition.name;
    const startedAt = Date.now();
    const onEnd = (reason: string | undefined) => {
      if (this.#stopping) return;
      slot.stop = undefined;
      slot.pid = undefined;
      this.#options.logger.event("COMPONENT_EXITED", { component: name, reason: reason ?? "ended by itself" }, `${name} ended`);
      if (Date.now() - startedAt >= this.#backoff.resetAfterMs) slot.delayMs = this.#backoff.initialMs;
      this.#scheduleRestart(slot);
    };
    try {
      if (this.#options.mode === "one-process") await this.#startInProcess(slot, onEnd);
      else this.#startChild(slot, onEnd);
      slot.state = "running";
      this.#options.logger.event("COMPONENT_STARTED", { component: name, pid: slot.pid, restarts: slot.restarts }, `${name} started`);
    } catch (error) {
      this.#options.logger.event("ERROR", { component: name, err: error }, `starting ${name} failed`);
      this.#scheduleRestart(slot);
    }
  }

  #scheduleRestart(slot: Slot): void {
    if (this.#stopping) return;
    slot.state = "restarting";
    const delay = slot.delayMs;
    slot.delayMs = Math.min(slot.delayMs * 2, this.#backoff.maxMs);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      slot.restarts += 1;
      void this.#launch(slot);
    }, delay);
  }

  async #startInProcess(slot: Slot, onEnd: (reason: string | undefined) => void): Promise<void> {
    const name = slot.definition.name;
    const controller = new AbortController();
    const logger = createLogger({ component: name, file: logFileFor(this.#options.stateDir, name), level: this.#options.logLevel ?? "info" });
    const context: ComponentContext = { name, stateDir: this.#options.stateDir, logger, signal: controller.signal };
    let running: RunningComponent;
    try {
      running = await slot.definition.start(context);
    } catch (error) {
      await logger.close();
      throw error;
    }
    slot.pid = process.pid;
    const stopStats = startStatsHeartbeat(this.#options.stateDir, name, running.stats ? { extra: running.stats } : {});
    running.done.finally(() => void stopStats()).catch(() => undefined);
    running.done.then(
      () => onEnd(undefined),
      (error: unknown) => onEnd(error instanceof Error ? error.message : String(error)),
    ).finally(() => void logger.close());
    slot.stop = async () => {
      controller.abort();
      await running.stop();
      await stopStats();
    };
  }

  #startChild(slot: Slot, onEnd: (reason: string | undefined) => void): void {
    const name = slot.definition.name;
    const spawnCommand = this.#options.spawnCommand;
    if (!spawnCommand) throw new Error("supervisor: no spawnCommand");
    // A child's own output (a crash trace before its logger is up, say) goes to a file beside its
    // log, never to the supervisor's terminal.
    const logsDir = join(this.#options.stateDir, "logs");
    mkdirSync(logsDir, { recursive: true });
    const out = openSync(join(logsDir, `${name}.out`), "a");
    let child: ChildProcess;
    try {
      child = spawn(spawnCommand.command, [...(spawnCommand.nodeFlags?.(name) ?? []), ...spawnCommand.args, name], { stdio: ["ignore", out, out] });
    } finally {
      closeSync(out);
    }
    const exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        resolve();
        onEnd(signal ? `killed by ${signal}` : `exited with code ${String(code)}`);
      });
      child.once("error", (error) => {
        resolve();
        onEnd(error.message);
      });
    });
    slot.pid = child.pid;
    slot.stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timeout = setTimeout(() => child.kill("SIGKILL"), this.#options.stopTimeoutMs ?? 10_000);
      await exited;
      clearTimeout(timeout);
    };
  }
}
