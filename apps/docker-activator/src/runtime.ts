import { createHash } from "node:crypto";
import type { ActivatorUnits } from "@coyote/spec";

/** One unit of `activator/units.json`: a sleeping-capable backend. */
export type Unit = ActivatorUnits["units"][number];

/** A unit's dump-state hook. */
export type DumpHook = NonNullable<Unit["dumpState"]>;

/** What a runtime holds for one unit of this activator. */
export interface ObservedUnit {
  /** Whether it runs now. */
  readonly running: boolean;
  /** The {@link unitHash} it was made from, so that a changed unit is made anew. */
  readonly hash: string | undefined;
  /** The unit it was made from, when the runtime recorded it: a removed unit can still be dumped. */
  readonly unit?: Unit;
}

/**
 * Where units run: Docker containers or child processes. The activator decides when; a runtime
 * only does what it is told, and each call is safe to repeat (start of a running unit, stop of a
 * stopped one and removal of a missing one do nothing).
 */
export interface Runtime {
  /** Which runtime this is, as units name it. */
  readonly kind: "docker" | "process";
  /** Every unit this runtime holds for this activator (state folder), running or not. */
  observe(): Promise<Map<string, ObservedUnit>>;
  /** Makes the unit's container (created stopped) or records its process; nothing runs yet. */
  ensure(unit: Unit, hash: string): Promise<void>;
  /** Starts the unit. Resolves once the runtime says it runs (not that it is ready). */
  start(unit: Unit, hash: string): Promise<void>;
  /** Whether the unit runs now, and how it ended when it does not. */
  status(unitId: string): Promise<{ running: boolean; exit?: string }>;
  /** Stops the unit: SIGTERM, then SIGKILL after `graceMs`. */
  stop(unitId: string, graceMs: number): Promise<void>;
  /** Removes what {@link Runtime.ensure} made; stops the unit first if it runs. */
  remove(unitId: string): Promise<void>;
  /**
   * Runs the unit's dump-state hook and waits for it.
   * @throws Error saying why the dump failed (exit status, timeout, signal not delivered).
   */
  dump(unit: Unit, hook: DumpHook, timeoutMs: number): Promise<void>;
  /**
   * The address to probe the unit's readiness on, when it is not the unit's own `host` (a
   * container on its own network); undefined to probe `host`.
   */
  probeHost?(unit: Unit): Promise<string | undefined>;
  /**
   * The address the unit is reached at once running, when it is not its own `host` (a process in
   * a network of its own); undefined for `host`.
   */
  serveHost?(unit: Unit): string | undefined;
  /** The memory used now by each of these running units, in bytes; units it cannot read are left out. */
  memory(unitIds: readonly string[]): Promise<Map<string, number>>;
  /** Lets go of the runtime's connections; units keep running. */
  close(): Promise<void>;
}

/**
 * A hash of what a unit's container or process is made from. Idle timeout, readiness and dump
 * settings are left out: changing them needs no new container.
 */
export function unitHash(unit: Unit): string {
  const made = {
    runtime: unit.runtime,
    image: unit.image ?? null,
    command: unit.command ?? null,
    cwd: unit.cwd ?? null,
    host: unit.host,
    port: unit.port,
    env: Object.fromEntries(Object.entries(unit.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    memoryMb: unit.memoryMb,
  };
  return createHash("sha256").update(JSON.stringify(made)).digest("hex").slice(0, 16);
}

/**
 * The environment a unit runs with: its own variables, plus `HOST` and `PORT` (unless it sets
 * them) so that an app can listen where the activator probes it.
 * @param host where the unit is reached, when not its `host` (its own network's address).
 */
export function unitEnvironment(unit: Unit, host: string = unit.host): Record<string, string> {
  return { HOST: host, PORT: String(unit.port), ...unit.env };
}

import { errorText } from "@coyote/log";

export { errorText };
