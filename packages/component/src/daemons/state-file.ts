/**
 * `run/daemons.json`: what the daemon supervisor of `coyote up` last knew about each daemon, for
 * `coyote status` and `coyote doctor`, which run in other processes. Written atomically by the
 * supervisor only; read (and checked field by field) by anyone.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isPidAlive } from "@coyote/spec";

/** What a daemon is doing. */
export type DaemonRunState = "running" | "starting" | "restarting" | "not installed" | "needs root" | "no configuration" | "stopped";

const RUN_STATES: ReadonlySet<string> = new Set<DaemonRunState>(["running", "starting", "restarting", "not installed", "needs root", "no configuration", "stopped"]);

/** One daemon as the supervisor reports it. */
export interface DaemonState {
  /** The daemon's name. */
  readonly name: string;
  /** What it is doing. */
  readonly state: DaemonRunState;
  /** Its main process, while it runs or starts. */
  readonly pid?: number;
  /** When it last became ready (ISO time), while running. */
  readonly since?: string;
  /** How often it was restarted after dying. */
  readonly restarts: number;
  /** How its last run ended (`killed by SIGKILL`, `exited with code 1`, `not ready within 30 s`). */
  readonly lastExit?: string;
  /** How often it reloaded a changed configuration. */
  readonly reloads: number;
  /** The last reload's outcome, when one failed. */
  readonly reloadError?: string;
  /** Why it is not running: the missing program or configuration, or the readiness check's answer. */
  readonly detail?: string;
}

/** The whole file. */
export interface DaemonStatesFile {
  readonly schemaVersion: 1;
  /** The supervisor's pid: the states are stale when it is gone. */
  readonly supervisorPid: number;
  /** When the file was written (ISO time). */
  readonly writtenAt: string;
  /** One entry per daemon of the catalogue. */
  readonly daemons: readonly DaemonState[];
}

/** The file's path in a state folder. */
export function daemonStatesPath(stateDir: string): string {
  return join(stateDir, "run", "daemons.json");
}

function fieldError(file: string, field: string, what: string): Error {
  return new Error(`reading ${file}: ${field} ${what}`);
}

function optionalString(file: string, field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length > 2000) throw fieldError(file, field, "must be a string of at most 2000 characters");
  return value;
}

function count(file: string, field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw fieldError(file, field, "must be a whole number of at least 0");
  return value;
}

/**
 * Checks a parsed `run/daemons.json`.
 * @throws Error naming the file and the bad field.
 */
export function parseDaemonStates(value: unknown, file: string): DaemonStatesFile {
  if (typeof value !== "object" || value === null) throw fieldError(file, "the file", "must hold an object");
  const record = value as Record<string, unknown>;
  if (record.schemaVersion !== 1) throw fieldError(file, "schemaVersion", "must be 1");
  const supervisorPid = count(file, "supervisorPid", record.supervisorPid);
  const writtenAt = optionalString(file, "writtenAt", record.writtenAt) ?? "";
  if (!Array.isArray(record.daemons) || record.daemons.length > 64) throw fieldError(file, "daemons", "must be a list of at most 64 entries");
  const daemons = record.daemons.map((entry: unknown, i): DaemonState => {
    const at = `daemons[${i}]`;
    if (typeof entry !== "object" || entry === null) throw fieldError(file, at, "must be an object");
    const d = entry as Record<string, unknown>;
    const name = optionalString(file, `${at}.name`, d.name);
    if (name === undefined || !/^[a-z][a-z0-9-]{0,31}$/.test(name)) throw fieldError(file, `${at}.name`, "must be a daemon name");
    if (typeof d.state !== "string" || !RUN_STATES.has(d.state)) throw fieldError(file, `${at}.state`, `must be one of ${[...RUN_STATES].join(", ")}`);
    const pid = d.pid === undefined ? undefined : count(file, `${at}.pid`, d.pid);
    const since = optionalString(file, `${at}.since`, d.since);
    const lastExit = optionalString(file, `${at}.lastExit`, d.lastExit);
    const reloadError = optionalString(file, `${at}.reloadError`, d.reloadError);
    const detail = optionalString(file, `${at}.detail`, d.detail);
    return {
      name,
      state: d.state as DaemonRunState,
      restarts: count(file, `${at}.restarts`, d.restarts),
      reloads: count(file, `${at}.reloads`, d.reloads),
      ...(pid === undefined ? {} : { pid }),
      ...(since === undefined ? {} : { since }),
      ...(lastExit === undefined ? {} : { lastExit }),
      ...(reloadError === undefined ? {} : { reloadError }),
      ...(detail === undefined ? {} : { detail }),
    };
  });
  return { schemaVersion: 1, supervisorPid, writtenAt, daemons };
}

/**
 * Reads `run/daemons.json` when the supervisor that wrote it still runs.
 * @returns undefined when there is no file or its writer is gone (nothing supervises the daemons).
 * @throws Error naming the file and field when the file is malformed.
 */
export async function readDaemonStates(stateDir: string): Promise<DaemonStatesFile | undefined> {
  const states = await readDaemonStatesFile(stateDir);
  return states !== undefined && isPidAlive(states.supervisorPid) ? states : undefined;
}

/**
 * Reads `run/daemons.json` whether or not its writer still runs (the supervisor reads what a dead
 * predecessor left, to stop the daemons it left running).
 * @returns undefined when there is no file.
 * @throws Error naming the file and field when the file is malformed.
 */
export async function readDaemonStatesFile(stateDir: string): Promise<DaemonStatesFile | undefined> {
  const file = daemonStatesPath(stateDir);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  if (text.length > 1024 * 1024) throw new Error(`reading ${file}: larger than 1 MiB`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`reading ${file}: not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  return parseDaemonStates(parsed, file);
}
