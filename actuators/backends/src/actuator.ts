import { mkdir, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ActuatorError, observeFragment, readTextIfExists } from "@coyote/actuator";
import type { Actuator, ActuatorContext, Plan, Target } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { ActivatorUnits, fsyncDir, parseEnvSecret, parseJson, removeStaleTempFiles, writeFileAtomic } from "@coyote/spec";
import type { ServerSpec, ServiceSpec } from "@coyote/spec";
import { BackendsError } from "./errors.ts";
import { reservedPorts } from "./reserved.ts";

/** The actuator's id. */
export const BACKENDS_ACTUATOR_ID = "actuator.backends.activator";
/** The condition it reports on each service with a container or process backend. */
export const BACKENDS_CONDITION = "BackendReady";
/** The combined file docker-activator reads, relative to the state folder. */
export const UNITS_FILE = "activator/units.json";
/** The folder of per-service fragments, relative to the state folder. */
export const FRAGMENTS_DIR = "activator/units.d";

/** One unit of `activator/units.json`. */
export type Unit = ActivatorUnits["units"][number];

/** Options of {@link createBackendsActuator}. */
export interface BackendsActuatorOptions {
  /** The state folder (`COYOTE_STATE`). */
  readonly stateDir: string;
}

/** What `observe` saw for one service. */
export interface BackendsObserved {
  /** The service's fragment as it is on disk, or undefined when there is none or it is invalid. */
  readonly fragment: Unit | undefined;
  /** Whether a fragment file exists (valid or not), so that an invalid one is removed too. */
  readonly fragmentExists: boolean;
  /** The service's unit in the combined file as of the last commit, if any. */
  readonly combined: Unit | undefined;
  /** Which unit holds each `host:port` in the combined file, to refuse a taken address early. */
  readonly addresses: Readonly<Record<string, string>>;
  /** What the combined file says of the server spec, or undefined when there is no valid file. */
  readonly settings: ActivatorSettings | undefined;
}

/** What docker-activator needs of the server spec, carried in `activator/units.json`. */
export interface ActivatorSettings {
  readonly runtime: ServerSpec["runtime"];
  readonly memoryBudgetMb: number;
}

/** The settings the server spec asks for. */
function settingsOf(server: ServerSpec): ActivatorSettings {
  return { runtime: server.runtime, memoryBudgetMb: server.limits.memoryBudgetMb };
}

/** The settings a combined file carries, absent ones as the activator reads them. */
function settingsIn(document: ActivatorUnits): ActivatorSettings {
  return { runtime: document.runtime ?? "auto", memoryBudgetMb: document.memoryBudgetMb ?? 2048 };
}

/** One change the actuator makes for a service. */
export type BackendsStep =
  | { readonly kind: "write-fragment"; readonly unit: Unit }
  | { readonly kind: "remove-fragment" }
  /** The fragment is right but the combined file lags behind it (a commit was interrupted). */
  | { readonly kind: "refresh-combined" };

/** JSON with object keys sorted, so that two units compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** Whether a service has a backend that docker-activator runs. */
function sleepingBackend(spec: ServiceSpec | undefined) {
  const backend = spec?.web?.backend;
  return backend?.kind === "container" || backend?.kind === "process" ? backend : undefined;
}

/**
 * The unit a service asks for. Pure.
 * @throws ActuatorError `RuntimeUnavailable` (terminal) for a container backend on a server whose
 *   runtime is `process`: child processes cannot run an image.
 */
export function unitOf(id: string, spec: ServiceSpec, server: ServerSpec): Unit | undefined {
  const backend = sleepingBackend(spec);
  if (backend === undefined) return undefined;
  const common = {
    id,
    serviceId: id,
    host: "127.0.0.1",
    port: backend.port,
    // Values stay in secrets/: the unit names the secret, and the activator reads it when it
    // creates the container or process (never written to units.json or a container label).
    env: backend.env,
    ...(backend.envSecret === undefined ? {} : { envSecret: backend.envSecret }),
    memoryMb: backend.memoryMb,
    idleTimeoutSeconds: backend.idleTimeoutSeconds,
    ...(backend.dumpState === undefined ? {} : { dumpState: backend.dumpState }),
    dumpTimeoutSeconds: backend.dumpTimeoutSeconds,
    readiness: backend.readiness,
    readinessTimeoutSeconds: backend.readinessTimeoutSeconds,
  };
  if (backend.kind === "process") {
    return { ...common, runtime: "process", command: [...backend.command], ...(backend.cwd === undefined ? {} : { cwd: backend.cwd }) };
  }
  if (server.runtime === "process") {
    throw new ActuatorError(
      "RuntimeUnavailable",
      `planning the backend of service ${id}: the server's runtime is "process", which cannot run the container image ${backend.image}; set the server's runtime to "docker" or "auto", or give the service a process backend`,
      { terminal: true },
    );
  }
  return { ...common, runtime: "docker", image: backend.image, ...(backend.command === undefined ? {} : { command: [...backend.command] }) };
}

/** The text a fragment is stored as: a units document with one unit, so the same schema checks it. */
function fragmentText(unit: Unit, generatedAt: string): string {
  const document: ActivatorUnits = { schemaVersion: 1, generatedAt, units: [unit] };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/**
 * Parses a backend fragment and checks it is the one its file name says.
 * @param text the fragment file's text.
 * @param name the fragment's file name (`<service id>.json`).
 * @returns the one unit the fragment holds.
 * @throws BackendsError `BACKENDS_ERR_FRAGMENT_INVALID` when it holds more or fewer units than
 *   one, or another service's unit; the schema's error when it is not a units document.
 */
export function parseFragment(text: string, name: string): Unit {
  const document = parseJson(ActivatorUnits, text, `${FRAGMENTS_DIR}/${name}`);
  const unit = document.units[0];
  const id = name.replace(/\.json$/, "");
  if (document.units.length !== 1 || unit === undefined) throw new BackendsError("BACKENDS_ERR_FRAGMENT_INVALID", `${FRAGMENTS_DIR}/${name}: a fragment holds exactly one unit`);
  if (unit.id !== id) throw new BackendsError("BACKENDS_ERR_FRAGMENT_INVALID", `${FRAGMENTS_DIR}/${name}: the fragment holds unit ${unit.id}, not ${id}`);
  return unit;
}

async function readCombined(path: string, logger: CoyoteLogger): Promise<ActivatorUnits | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  try {
    return parseJson(ActivatorUnits, text, UNITS_FILE);
  } catch (error) {
    // The combined file is rebuilt from the fragments at every commit; a damaged one only hides
    // taken addresses from the plan until then.
    logger.warn({ file: path, err: error }, "the combined units file is invalid; it is rebuilt at the next commit");
    return undefined;
  }
}

/**
 * Plans one service. Pure: everything it needs was observed.
 * @throws ActuatorError `RuntimeUnavailable` (terminal), `PortReserved` (terminal: a port of the
 *   box's own daemons), `PortTaken` (retried: it clears when the other service lets go of the address).
 */
export function planBackends(target: Target, observed: BackendsObserved, server: ServerSpec): Plan<BackendsStep> {
  const desired = target.spec === undefined ? undefined : unitOf(target.id, target.spec, server);
  if (desired === undefined) {
    return observed.fragmentExists ? { steps: [{ kind: "remove-fragment" }], describe: ["remove the service's backend unit (its container or process is stopped and removed)"] } : { steps: [], describe: [] };
  }
  const reserved = reservedPorts(server).get(desired.port);
  if (reserved !== undefined) {
    throw new ActuatorError("PortReserved", `planning the backend of service ${target.id}: port ${desired.port} is reserved for ${reserved}; choose another port for the backend`, { terminal: true });
  }
  const address = `${desired.host}:${desired.port}`;
  const holder = observed.addresses[address];
  if (holder !== undefined && holder !== target.id) {
    throw new ActuatorError("PortTaken", `planning the backend of service ${target.id}: ${address} is already the address of service ${holder}'s backend`);
  }
  const text = canonical(desired);
  if (observed.fragment === undefined || canonical(observed.fragment) !== text) {
    const what = desired.runtime === "docker" ? `container ${desired.image ?? ""}` : `process ${(desired.command ?? []).join(" ")}`;
    return { steps: [{ kind: "write-fragment", unit: desired }], describe: [`write the backend unit: ${what} on ${address}`] };
  }
  if (observed.combined === undefined || canonical(observed.combined) !== text) {
    return { steps: [{ kind: "refresh-combined" }], describe: ["rebuild activator/units.json, which lags behind the service's unit"] };
  }
  if (observed.settings === undefined || canonical(observed.settings) !== canonical(settingsOf(server))) {
    return { steps: [{ kind: "refresh-combined" }], describe: ["rebuild activator/units.json, which lags behind the server spec's runtime or memory budget"] };
  }
  return { steps: [], describe: [] };
}

/**
 * Creates the backends actuator (`actuator.backends.activator`, condition `BackendReady`): the
 * sleeping-capable backends (web backends of kind `container` or `process`) that docker-activator
 * runs. Side-effect free.
 *
 * Per service, `apply` writes the service's fragment `activator/units.d/<id>.json` (a units
 * document holding that one unit). `commit` combines every fragment into `activator/units.json`
 * atomically, once per batch, and only when the units changed, so that docker-activator (which
 * watches the file) reloads once per batch and never for nothing. A deleted service, or one whose
 * backend is no longer a container or process, loses its fragment; docker-activator then dumps,
 * stops and removes its unit.
 */
export function createBackendsActuator(options: BackendsActuatorOptions): Actuator<BackendsObserved, BackendsStep> {
  const fragmentsDir = join(options.stateDir, FRAGMENTS_DIR);
  const unitsFile = join(options.stateDir, UNITS_FILE);
  return {
    id: BACKENDS_ACTUATOR_ID,
    condition: BACKENDS_CONDITION,
    appliesTo: (spec) => sleepingBackend(spec) !== undefined,

    async observe(target: Target, context: ActuatorContext): Promise<BackendsObserved> {
      const path = join(fragmentsDir, `${target.id}.json`);
      const { text, fragment } = await observeFragment(path, (t) => parseFragment(t, `${target.id}.json`), context.logger, "backend");
      const combined = await readCombined(unitsFile, context.logger);
      const addresses: Record<string, string> = {};
      for (const unit of combined?.units ?? []) addresses[`${unit.host}:${unit.port}`] = unit.id;
      // A missing or bad environment secret is a terminal error for a human, never a unit that
      // the activator would start without its configuration.
      const envSecret = sleepingBackend(target.spec)?.envSecret;
      if (envSecret !== undefined) {
        const bytes = await context.store.readSecret(envSecret);
        if (bytes === undefined) throw new ActuatorError("MissingSecret", `observing the backend of service ${target.id}: its environment secret ${envSecret} is missing from secrets/`, { terminal: true });
        parseEnvSecret(bytes, envSecret);
      }
      return { fragment, fragmentExists: text !== undefined, combined: combined?.units.find((u) => u.id === target.id), addresses, settings: combined === undefined ? undefined : settingsIn(combined) };
    },

    plan(target: Target, observed: BackendsObserved, server: ServerSpec): Plan<BackendsStep> {
      return planBackends(target, observed, server);
    },

    async apply(plan: Plan<BackendsStep>, target: Target, context: ActuatorContext): Promise<void> {
      const path = join(fragmentsDir, `${target.id}.json`);
      for (const step of plan.steps) {
        switch (step.kind) {
          case "write-fragment":
            await mkdir(fragmentsDir, { recursive: true });
            await writeFileAtomic(path, fragmentText(step.unit, new Date().toISOString()));
            context.logger.info({ unit: target.id, file: path }, `wrote the backend unit of service ${target.id}`);
            break;
          case "remove-fragment":
            try {
              await unlink(path);
              await fsyncDir(fragmentsDir);
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
            }
            context.logger.info({ unit: target.id }, `removed the backend unit of service ${target.id}`);
            break;
          case "refresh-combined":
            // Nothing to write here: the commit that follows every apply rebuilds the combined file.
            break;
        }
      }
    },

    async commit(context: ActuatorContext): Promise<void> {
      await removeStaleTempFiles(fragmentsDir);
      let names: string[];
      try {
        names = (await readdir(fragmentsDir)).filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        names = [];
      }
      const units: Unit[] = [];
      const taken = new Map<string, string>();
      for (const name of names) {
        const text = await readTextIfExists(join(fragmentsDir, name));
        if (text === undefined) continue;
        let unit: Unit;
        try {
          unit = parseFragment(text, name);
        } catch (error) {
          // One bad fragment must not take every other backend away: it is left out, and its
          // service's next apply rewrites it.
          context.logger.error({ file: join(fragmentsDir, name), err: error }, "skipping an invalid backend fragment");
          continue;
        }
        const address = `${unit.host}:${unit.port}`;
        const holder = taken.get(address);
        if (holder !== undefined) {
          context.logger.error({ unit: unit.id, address, holder }, `the backend of service ${unit.id} asks for ${address}, which service ${holder} has; it is left out`);
          continue;
        }
        taken.set(address, unit.id);
        units.push(unit);
      }
      const previous = await readCombined(unitsFile, context.logger);
      const settings = settingsOf(context.server);
      if (previous !== undefined && canonical(previous.units) === canonical(units) && canonical(settingsIn(previous)) === canonical(settings)) return;
      await context.store.writeJson(UNITS_FILE, ActivatorUnits, { schemaVersion: 1, generatedAt: new Date().toISOString(), ...settings, units });
      context.logger.info({ file: unitsFile, units: units.length }, `wrote ${UNITS_FILE} with ${units.length} unit(s)`);
    },
  };
}
