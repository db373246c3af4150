import { randomBytes } from "node:crypto";
import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { startStatsHeartbeat } from "@coyote/component";
import type { ComponentContext, RunningComponent } from "@coyote/component";
import type { CoyoteLogger } from "@coyote/log";
import { ACTIVATOR_SOCKET, ActivatorUnits, LastGood, holdsCapabilities, parseJson, serverOrDefaults, StateStore } from "@coyote/spec";
import { Activator } from "./activator.ts";
import type { AlarmSink } from "./activator.ts";
import type { ContainerConfinement } from "./confinement.ts";
import { DockerRuntime } from "./docker-runtime.ts";
import { DEFAULT_DOCKER_SOCKET } from "./env.ts";
import { DockerActivatorError } from "./errors.ts";
import { DEFAULT_PROCESS_UNIT_NETWORK, ProcessUnitNetwork } from "./process-network.ts";
import { ProcessRuntime } from "./process-runtime.ts";
import { errorText } from "./runtime.ts";
import { withUnitSecrets } from "./unit-secrets.ts";
import type { Runtime } from "./runtime.ts";
import { startControlServer } from "./server.ts";

/** The units file, relative to the state folder. */
export const UNITS_FILE = "activator/units.json";
/** The server spec's defaults: what holds before the minion has written units.json. */
const DEFAULTS = serverOrDefaults(undefined);
const SOURCE = "docker-activator";
const MIB = 1024 * 1024;

/** Options of {@link startActivator}; the defaults suit production, tests shorten the intervals. */
export interface ActivatorStartOptions {
  /** The Docker engine's socket (default `/var/run/docker.sock`). */
  readonly dockerSocket?: string;
  /** How unit containers are confined (defaults: DEFAULT_CONFINEMENT of confinement.ts). */
  readonly containerConfinement?: Partial<ContainerConfinement>;
  /** The uid and gid process units run as when the activator is root (default 65534:65534). */
  readonly processUnitUser?: { readonly uid: number; readonly gid: number };
  /**
   * Where process units' own networks come from: a private IPv4 range (default
   * DEFAULT_PROCESS_UNIT_NETWORK of process-network.ts), or `host` to share the host's network.
   * Used when the activator runs as root.
   */
  readonly processUnitNetwork?: string;
  /** Variables process units inherit (default: only PATH as `/usr/local/bin:/usr/bin:/bin`). */
  readonly baseEnv?: Record<string, string>;
  /** See {@link ActivatorOptions}. */
  readonly tickMs?: number;
  /** See {@link ActivatorOptions}. */
  readonly memoryIntervalMs?: number;
  /** See {@link ActivatorOptions}. */
  readonly activityStaleMs?: number;
  /** See {@link ActivatorOptions}. */
  readonly stopGraceMs?: number;
  /** See {@link ActivatorOptions}. */
  readonly dumpRetryMs?: number;
  /** How often `stats/docker-activator.json` is rewritten (default 5000 ms). */
  readonly statsIntervalMs?: number;
  /** How often units.json is checked besides file watching (default 2000 ms). */
  readonly pollMs?: number;
  /**
   * Whether to write `stats/docker-activator.json` itself (default true). Under the supervisor it
   * does not: the supervisor writes that file with what the component's `stats` returns.
   */
  readonly writeStats?: boolean;
}

/** A started activator: the component, plus what tests and the CLI look at. */
export interface RunningActivator extends RunningComponent {
  /** The activator itself. */
  readonly activator: Activator;
  /** Which runtime container units use: `docker`, or none when no engine is used. */
  readonly dockerRuntime: boolean;
  /** The wake API's socket. */
  readonly socketPath: string;
}

type ActivatorOptions = ConstructorParameters<typeof Activator>[0];

/** Alarms as lines of `alarms.jsonl`, raised and cleared once per change of state. */
async function storeAlarms(store: StateStore, logger: CoyoteLogger): Promise<AlarmSink> {
  const raised = new Set<string>();
  // Alarms raised by an earlier run stay raised until something clears them.
  const { alarms } = await store.readAlarms();
  for (const alarm of alarms) {
    if (alarm.source !== SOURCE) continue;
    if (alarm.state === "raised") raised.add(alarm.key);
    else raised.delete(alarm.key);
  }
  const append = async (key: string, state: "raised" | "cleared", code: string, message: string, serviceId: string | undefined, severity: "critical" | "warning" | "info") => {
    try {
      await store.appendAlarm({
        schemaVersion: 1,
        id: randomBytes(8).toString("hex"),
        key,
        state,
        severity,
        source: SOURCE,
        ...(serviceId === undefined ? {} : { serviceId }),
        code,
        message: message.slice(0, 2000),
        at: new Date().toISOString(),
      });
      logger.event(state === "raised" ? "ALARM_RAISED" : "ALARM_CLEARED", { key, code, serviceId }, message);
    } catch (error) {
      logger.event("ERROR", { key, err: error }, `writing alarm ${key}: ${errorText(error)}`);
    }
  };
  return {
    async raise(key, alarm) {
      if (raised.has(key)) return;
      raised.add(key);
      await append(key, "raised", alarm.code, alarm.message, alarm.serviceId, alarm.severity ?? "warning");
    },
    async clear(key, message, serviceId) {
      if (!raised.has(key)) return;
      raised.delete(key);
      await append(key, "cleared", "ACTIVATOR_CLEARED", message, serviceId, "info");
    },
  };
}

/** A file's identity, to tell whether it changed since it was last read. */
async function fileStamp(path: string): Promise<string> {
  const s = await stat(path).catch(() => undefined);
  return s === undefined ? "missing" : `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/**
 * Starts docker-activator: chooses the runtime for container units, adopts what runs, opens the
 * wake API on `run/docker-activator.sock`, follows `activator/units.json` live (the units, and the
 * memory budget the minion copies there from the server spec; the activator reads no spec), and
 * writes `stats/docker-activator.json`.
 *
 * Container units use Docker when the server spec's runtime (as units.json carries it) is `docker`
 * (the engine must answer, else this fails naming the socket) or `auto` and an engine answers;
 * otherwise they cannot run and their wakes fail with the reason. Process units always run. While
 * units.json is invalid, the last good one holds.
 * @throws DockerActivatorError ENGINE_UNAVAILABLE, SOCKET_IN_USE.
 */
export async function startActivator(context: ComponentContext, options: ActivatorStartOptions = {}): Promise<RunningActivator> {
  const { logger, stateDir } = context;
  const store = await StateStore.open(stateDir);
  const root = store.root;
  const unitsFile = join(root, UNITS_FILE);
  // The last valid units.json, kept on disk (names of secrets only, never their values), so that an
  // activator restarted while the file is invalid still knows every unit it had.
  const lastGoodUnits = new LastGood({ schema: ActivatorUnits, label: UNITS_FILE, keepFile: join(root, "activator", "last-good", "units.json") });
  const readUnitsText = async (): Promise<string | undefined> => {
    try {
      return await readFile(unitsFile, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return undefined;
    }
  };
  // Where container units run is read once, at start, from what the minion wrote of the server
  // spec into units.json (the last good one when it is invalid; the defaults before the first).
  const initialText = await readUnitsText();
  const initial = await lastGoodUnits.refresh(() => Promise.resolve(initialText === undefined ? undefined : parseJson(ActivatorUnits, initialText, UNITS_FILE)));
  const runtimeSetting = initial.value?.runtime ?? DEFAULTS.runtime;

  const socket = options.dockerSocket ?? DEFAULT_DOCKER_SOCKET;
  let dockerRuntime: Runtime | undefined;
  let dockerMissingReason: string | undefined;
  if (runtimeSetting === "process") {
    dockerMissingReason = `the server spec's runtime is "process"`;
  } else {
    try {
      dockerRuntime = await DockerRuntime.connect({ socketPath: socket, stateDir: root, logger, ...(options.containerConfinement === undefined ? {} : { confinement: options.containerConfinement }) });
    } catch (error) {
      if (runtimeSetting === "docker") {
        throw new DockerActivatorError("ENGINE_UNAVAILABLE", `starting docker-activator: the server spec's runtime is "docker" but ${errorText(error).replace(/^docker runtime: /, "")}`, { cause: error });
      }
      dockerMissingReason = errorText(error);
      logger.warn({ socket, err: error }, `no Docker engine on ${socket}; container units cannot run, process units can`);
    }
  }
  const poolCidr = options.processUnitNetwork ?? DEFAULT_PROCESS_UNIT_NETWORK;
  let network: ProcessUnitNetwork | undefined;
  if (poolCidr === "host") logger.warn({ network: "host" }, "process units share the host's network (COYOTE_PROCESS_UNIT_NETWORK=host): a unit can reach every loopback service and take other units' ports");
  else if (holdsCapabilities("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID")) network = await ProcessUnitNetwork.open(poolCidr, logger);
  else logger.warn({ uid: process.getuid?.() }, "the activator holds neither root's rights nor CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SETUID and CAP_SETGID, so process units cannot have networks of their own: they share the host's");
  const processRuntime = await ProcessRuntime.open({
    stateDir: root,
    baseEnv: options.baseEnv ?? { PATH: "/usr/local/bin:/usr/bin:/bin" },
    logger,
    ...(options.processUnitUser === undefined ? {} : { unitUser: options.processUnitUser }),
    ...(network === undefined ? {} : { network }),
  });
  const alarms = await storeAlarms(store, logger);
  const activatorOptions: ActivatorOptions = {
    logger,
    processRuntime,
    dockerRuntime,
    ...(dockerMissingReason === undefined ? {} : { dockerMissingReason }),
    alarms,
    ...(options.tickMs === undefined ? {} : { tickMs: options.tickMs }),
    ...(options.memoryIntervalMs === undefined ? {} : { memoryIntervalMs: options.memoryIntervalMs }),
    ...(options.activityStaleMs === undefined ? {} : { activityStaleMs: options.activityStaleMs }),
    ...(options.stopGraceMs === undefined ? {} : { stopGraceMs: options.stopGraceMs }),
    ...(options.dumpRetryMs === undefined ? {} : { dumpRetryMs: options.dumpRetryMs }),
  };
  const activator = new Activator(activatorOptions);
  activator.setMemoryBudget((initial.value?.memoryBudgetMb ?? DEFAULTS.limits.memoryBudgetMb) * MIB);

  let unitsStamp = "";
  let unitsApplied = false;
  const loadUnits = async (): Promise<void> => {
    const stamp = await fileStamp(unitsFile);
    if (stamp === unitsStamp) return;
    // Any failure but ENOENT (EMFILE, EIO) throws before the stamp is kept, so the next reload reads the file again.
    const text = await readUnitsText();
    unitsStamp = stamp;
    const state = await lastGoodUnits.refresh(() => Promise.resolve(text === undefined ? undefined : parseJson(ActivatorUnits, text, UNITS_FILE)));
    if (state.problem !== undefined) {
      const message = `loading units: ${state.problem}`;
      logger.event("ERROR", { file: unitsFile }, message);
      await alarms.raise("docker-activator/units", { code: "ACTIVATOR_UNITS_INVALID", message, severity: "critical" });
    } else if (text === undefined) {
      // No file yet: the minion has not written one. Nothing is removed on that account.
      logger.info({ file: unitsFile }, `${UNITS_FILE} does not exist yet; no units`);
    }
    const units = state.value;
    if (units === undefined || (unitsApplied && !state.changed)) return;
    let document: ActivatorUnits;
    try {
      document = await withUnitSecrets(units, (name) => store.readSecret(name));
    } catch (error) {
      const message = `loading units: ${errorText(error)}; the last good units are kept`;
      logger.event("ERROR", { file: unitsFile, err: error }, message);
      await alarms.raise("docker-activator/units", { code: "ACTIVATOR_UNITS_INVALID", message, severity: "critical" });
      return;
    }
    if (state.problem === undefined) await alarms.clear("docker-activator/units", `${UNITS_FILE} is valid again`);
    unitsApplied = true;
    const budgetMb = units.memoryBudgetMb ?? DEFAULTS.limits.memoryBudgetMb;
    if (budgetMb * MIB !== activator.memoryBudgetBytes) {
      activator.setMemoryBudget(budgetMb * MIB);
      logger.event("CONFIG_RELOADED", { memoryBudgetMb: budgetMb }, `memory budget of the units is now ${budgetMb} MiB`);
    }
    if ((units.runtime ?? DEFAULTS.runtime) !== runtimeSetting) {
      logger.warn({ runtime: units.runtime, running: runtimeSetting }, `the server spec's runtime is now ${units.runtime ?? DEFAULTS.runtime}; it takes effect when docker-activator restarts`);
    }
    await activator.setUnits(document);
    logger.event("CONFIG_RELOADED", { file: unitsFile, units: document.units.length }, `loaded ${document.units.length} unit(s) from ${state.problem === undefined ? UNITS_FILE : "the last good units"}`);
  };
  // Reloads never overlap and never throw: a watcher event during a reload runs one more after it.
  let reloading: Promise<void> = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(() => loadUnits()).then(
      () => undefined,
      (error: unknown) => logger.event("ERROR", { err: error }, `reloading: ${errorText(error)}`),
    );
    return reloading;
  };

  await reload();
  let control: Awaited<ReturnType<typeof startControlServer>>;
  try {
    control = await startControlServer(join(root, ACTIVATOR_SOCKET), activator, logger);
  } catch (error) {
    await activator.close();
    await processRuntime.close();
    await dockerRuntime?.close();
    throw error;
  }
  const watchers: FSWatcher[] = [];
  for (const dir of [join(root, "activator")]) {
    try {
      const watcher = watch(dir, () => void reload());
      watcher.on("error", (error) => logger.warn({ dir, err: error }, `watching ${dir} failed; polling continues`));
      watchers.push(watcher);
    } catch (error) {
      logger.warn({ dir, err: error }, `cannot watch ${dir}; polling only`);
    }
  }
  // fs.watch can miss events (some file systems, a folder replaced): a slow poll catches those.
  const poll = setInterval(() => void reload(), options.pollMs ?? 2000);
  const stopStats = options.writeStats === false ? undefined : startStatsHeartbeat(root, SOURCE, { intervalMs: options.statsIntervalMs ?? 5000, extra: () => ({ units: activator.stats() }) });
  activator.run();
  logger.info({ runtime: dockerRuntime === undefined ? "process" : "docker+process", socket: control.socketPath }, "docker-activator started");

  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
      await control.close();
      await reloading;
      await activator.close();
      await processRuntime.close();
      await dockerRuntime?.close();
      await stopStats?.();
    })().finally(finish);
    return stopping;
  };
  context.signal.addEventListener("abort", () => void stop(), { once: true });
  return { done, stop, stats: () => ({ units: activator.stats() }), activator, dockerRuntime: dockerRuntime !== undefined, socketPath: control.socketPath };
}
