import type { CoyoteLogger } from "@coyote/log";
import { errorText } from "./runtime.ts";
import type { ObservedUnit, Runtime, Unit } from "./runtime.ts";
import { dumpAlarmKey, exclusive, type DownReason, type UnitRecord } from "./unit-record.ts";

/** Raises and clears alarms (in production, lines of `alarms.jsonl` through the state store). */
export interface AlarmSink {
  /** Raises the alarm with this key, unless it is raised already. */
  raise(key: string, alarm: { code: string; message: string; serviceId?: string; severity?: "critical" | "warning" | "info" }): Promise<void>;
  /** Clears the alarm with this key, if it is raised. */
  clear(key: string, message: string, serviceId?: string): Promise<void>;
}

/** What {@link UnitStopper} works with. */
export interface StopperDeps {
  readonly logger: CoyoteLogger;
  readonly alarms: AlarmSink;
  /** How long a stop waits after SIGTERM before SIGKILL. */
  readonly stopGraceMs: number;
  /** How long after a failed dump or replacement the next attempt waits. */
  readonly dumpRetryMs: number;
  /** The record of a unit id now, to tell a removed or replaced record from the current one. */
  current(unitId: string): UnitRecord | undefined;
  /** The runtime of a unit, undefined when it has none here. */
  runtimeFor(unit: Unit): Runtime | undefined;
}

/**
 * How units go down: every stop, replacement and removal runs the unit's dump hook first, and a
 * failed dump keeps the unit running, raises the alarm and waits before the next attempt.
 */
export class UnitStopper {
  readonly #deps: StopperDeps;

  /** Makes the stopper. */
  constructor(deps: StopperDeps) {
    this.#deps = deps;
  }

  /**
   * Dumps and stops a unit (under its lock). For `idle` and `evicted`, whether the unit still
   * qualifies is decided again under the lock: a wake or traffic may have come meanwhile.
   * @returns whether the unit is stopped now.
   */
  stop(record: UnitRecord, reason: DownReason, stillWanted: () => boolean): Promise<boolean> {
    return exclusive(record, async () => {
      if (this.#deps.current(record.unit.id) !== record && reason !== "removed") return false;
      // Stopped meanwhile (an eviction queued twice, say): that is what the caller wants.
      if (record.state === "stopped") return true;
      if (!stillWanted()) return false;
      const runtime = this.#deps.runtimeFor(record.unit);
      if (runtime === undefined) return true;
      const status = await runtime.status(record.unit.id);
      if (!status.running) {
        record.state = "stopped";
        return true;
      }
      if (!(await this.dump(record.unit, runtime, reason, record))) return false;
      record.state = "stopping";
      await runtime.stop(record.unit.id, this.#deps.stopGraceMs);
      record.state = "stopped";
      record.memoryBytes = undefined;
      this.#wentDown(record.unit, runtime, reason);
      return true;
    }).catch((error: unknown) => {
      record.state = "failed";
      record.lastError = `stopping: ${errorText(error)}`;
      this.#deps.logger.event("ERROR", { unit: record.unit.id, err: error }, `stopping unit ${record.unit.id} (${reason}): ${errorText(error)}`);
      return false;
    });
  }

  #wentDown(unit: Unit, runtime: Runtime, reason: DownReason): void {
    this.#deps.logger.event("BACKEND_STOPPED", { unit: unit.id, serviceId: unit.serviceId, runtime: runtime.kind, reason }, `stopped unit ${unit.id} (${reason})`);
    this.#deps.logger.event("SERVICE_DOWN", { unit: unit.id, serviceId: unit.serviceId, reason });
  }

  /**
   * Runs a unit's dump hook, if it has one.
   * @returns whether the unit may be stopped: false when the dump failed (the alarm is raised).
   */
  async dump(unit: Unit, runtime: Runtime, reason: DownReason, record: UnitRecord | undefined): Promise<boolean> {
    if (unit.dumpState === undefined) return true;
    if (record !== undefined) record.state = "dumping";
    const t0 = performance.now();
    try {
      await runtime.dump(unit, unit.dumpState, unit.dumpTimeoutSeconds * 1000);
    } catch (error) {
      const message = `dumping the state of unit ${unit.id} before stopping it (${reason}): ${errorText(error)}; the unit is left running`;
      if (record !== undefined) {
        record.state = "running";
        record.lastError = message;
        record.nextStopAttempt = Date.now() + this.#deps.dumpRetryMs;
        record.dumpAlarm = true;
      }
      this.#deps.logger.event("ERROR", { unit: unit.id, serviceId: unit.serviceId, reason, err: error }, message);
      await this.#deps.alarms.raise(dumpAlarmKey(unit.id), { code: "ACTIVATOR_DUMP_FAILED", message, serviceId: unit.serviceId, severity: "warning" });
      return false;
    }
    this.#deps.logger.event("STATE_DUMPED", { unit: unit.id, serviceId: unit.serviceId, reason, tookMs: Math.round(performance.now() - t0) }, `unit ${unit.id} dumped its state`);
    if (record !== undefined) record.dumpAlarm = false;
    await this.#deps.alarms.clear(dumpAlarmKey(unit.id), `unit ${unit.id} dumped its state`, unit.serviceId);
    return true;
  }

  /**
   * Replaces a unit whose container or process was made from another configuration: dumps (with
   * the old configuration's hook) and stops the old copy if it runs, removes it and makes the new
   * one, stopped. Called under the unit's lock.
   * @returns false when the dump failed: the old copy keeps running and the alarm is raised.
   */
  async replaceLocked(record: UnitRecord, runtime: Runtime, old: Unit, running: boolean): Promise<boolean> {
    if (running) {
      if (!(await this.dump(old, runtime, "replaced", record))) return false;
      record.state = "stopping";
      await runtime.stop(record.unit.id, this.#deps.stopGraceMs);
      this.#wentDown(record.unit, runtime, "replaced");
    }
    await runtime.remove(record.unit.id);
    record.ensuredHash = undefined;
    record.state = "stopped";
    record.memoryBytes = undefined;
    record.lastMemoryBytes = undefined;
    await runtime.ensure(record.unit, record.hash);
    record.ensuredHash = record.hash;
    record.previous = undefined;
    this.#deps.logger.event("CONFIG_RELOADED", { unit: record.unit.id, runtime: runtime.kind }, `unit ${record.unit.id} changed; its ${runtime.kind === "docker" ? "container was made anew" : "old process was stopped"}`);
    return true;
  }

  /** {@link UnitStopper.replaceLocked} from the tick, under the unit's lock, errors logged. */
  replace(record: UnitRecord, runtime: Runtime, seen: ObservedUnit | undefined): Promise<void> {
    return exclusive(record, async () => {
      // Decided again under the lock: a wake may have replaced it meanwhile.
      const old = record.previous ?? (seen !== undefined && seen.hash !== record.hash ? (seen.unit ?? record.unit) : undefined);
      if (old === undefined) return;
      const running = (await runtime.status(record.unit.id)).running;
      await this.replaceLocked(record, runtime, old, running);
    }).catch((error: unknown) => {
      record.lastError = `replacing: ${errorText(error)}`;
      record.nextStopAttempt = Date.now() + this.#deps.dumpRetryMs;
      this.#deps.logger.event("ERROR", { unit: record.unit.id, err: error }, `replacing unit ${record.unit.id}: ${errorText(error)}`);
    });
  }

  /** Dumps, stops and removes a unit that left units.json. @returns whether it is gone. */
  async removeOrphan(runtime: Runtime, id: string, seen: ObservedUnit): Promise<boolean> {
    try {
      if (seen.running) {
        if (seen.unit !== undefined && !(await this.dump(seen.unit, runtime, "removed", undefined))) return false;
        await runtime.stop(id, this.#deps.stopGraceMs);
        this.#wentDown(seen.unit ?? ({ id, serviceId: id } as Unit), runtime, "removed");
      }
      await runtime.remove(id);
      this.#deps.logger.info({ unit: id, runtime: runtime.kind }, `removed unit ${id}, which left activator/units.json`);
      return true;
    } catch (error) {
      this.#deps.logger.event("ERROR", { unit: id, err: error }, `removing unit ${id}: ${errorText(error)}`);
      return false;
    }
  }
}
