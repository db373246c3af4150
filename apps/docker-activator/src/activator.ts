import type { CoyoteLogger } from "@coyote/log";
import type { ActivatorUnits, ActivityReport, WakeResponse } from "@coyote/spec";
import { ActivatorError } from "./errors.ts";
import { MemoryBudget } from "./memory-budget.ts";
import { waitReady } from "./probe.ts";
import { errorText, unitHash } from "./runtime.ts";
import type { Runtime, Unit } from "./runtime.ts";
import { exclusive, newUnitRecord, type UnitRecord, type UnitStats } from "./unit-record.ts";
import { UnitObserver, type Removal } from "./unit-observer.ts";
import { UnitStopper, type AlarmSink } from "./unit-stopper.ts";

export type { AlarmSink } from "./unit-stopper.ts";
export type { DownReason, UnitStats } from "./unit-record.ts";

/** Options of {@link Activator}. */
export interface ActivatorOptions {
  /** The activator's logger. */
  readonly logger: CoyoteLogger;
  /** The process runtime, always there. */
  readonly processRuntime: Runtime;
  /** The docker runtime, when an engine is used. */
  readonly dockerRuntime?: Runtime | undefined;
  /** Why there is no docker runtime, for the error of a docker unit's wake. */
  readonly dockerMissingReason?: string;
  /** Alarms. */
  readonly alarms: AlarmSink;
  /** How often units are observed and idle ones stopped (default 1000 ms). */
  readonly tickMs?: number;
  /** How often memory is read and the budget checked (default 5000 ms). */
  readonly memoryIntervalMs?: number;
  /**
   * How long an open-connections count holds without a new activity report (default 60 s): a
   * proxy that died cannot keep its units awake forever.
   */
  readonly activityStaleMs?: number;
  /** How long a stop waits after SIGTERM before SIGKILL (default 10 s). */
  readonly stopGraceMs?: number;
  /** How long after a failed dump the next attempt to stop that unit waits (default 60 s). */
  readonly dumpRetryMs?: number;
}

/**
 * The heart of docker-activator: the units, their state and activity, and when each thing happens
 * to them. Wakes start a unit once however many callers wait (here); a tick observes the runtimes
 * and stops idle units (unit-observer.ts); a slower tick reads memory and keeps the units within
 * the budget (memory-budget.ts). Every stop runs the unit's dump hook first, and a failed dump
 * keeps the unit running and raises an alarm (unit-stopper.ts). A unit's record and its lock are
 * in unit-record.ts.
 */
export class Activator {
  readonly #options: ActivatorOptions;
  readonly #logger: CoyoteLogger;
  readonly #units = new Map<string, UnitRecord>();
  /** Units that left units.json and whose container or process is still being removed. */
  readonly #removing = new Map<string, Removal>();
  readonly #stopper: UnitStopper;
  readonly #observer: UnitObserver;
  readonly #budget: MemoryBudget;
  /** How long an open-connections count holds without a new activity report. */
  readonly #staleMs: number;
  #loaded = false;
  #ticking: Promise<void> | undefined;
  #checking: Promise<void> | undefined;
  /** Aborted by close(): readiness waits give up instead of holding the shutdown. */
  readonly #closing = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #memoryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Makes the activator; nothing runs before {@link Activator.run}. */
  constructor(options: ActivatorOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#staleMs = options.activityStaleMs ?? 60_000;
    const current = (id: string) => this.#units.get(id);
    this.#stopper = new UnitStopper({
      logger: options.logger,
      alarms: options.alarms,
      stopGraceMs: options.stopGraceMs ?? 10_000,
      dumpRetryMs: options.dumpRetryMs ?? 60_000,
      current,
      runtimeFor: (unit) => this.#runtimeFor(unit),
    });
    this.#observer = new UnitObserver({
      logger: options.logger,
      stopper: this.#stopper,
      staleMs: this.#staleMs,
      dumpRetryMs: options.dumpRetryMs ?? 60_000,
      units: this.#units,
      removing: this.#removing,
      runtimes: () => this.#runtimes(),
    });
    this.#budget = new MemoryBudget({
      logger: options.logger,
      stopper: this.#stopper,
      activityStaleMs: this.#staleMs,
      records: () => this.#units.values(),
      current,
      runtimes: () => this.#runtimes(),
    });
  }

  /** The runtimes in use: processes always, Docker when an engine is used. */
  #runtimes(): Runtime[] {
    return [this.#options.processRuntime, ...(this.#options.dockerRuntime === undefined ? [] : [this.#options.dockerRuntime])];
  }

  /** Starts the periodic ticks. */
  run(): void {
    this.#timer = setInterval(() => void this.tick(), this.#options.tickMs ?? 1000);
    this.#memoryTimer = setInterval(() => void this.checkMemory(), this.#options.memoryIntervalMs ?? 5000);
  }

  /** Stops the ticks and waits for operations under way; units keep running, to be adopted again. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#timer);
    clearInterval(this.#memoryTimer);
    await this.#ticking;
    await this.#checking;
    await Promise.all([...this.#units.values()].map((r) => r.lock.queue.catch(() => undefined)));
  }

  /** Sets the memory budget of the units, in bytes (undefined: none). Takes effect at once. */
  setMemoryBudget(bytes: number | undefined): void {
    const changed = bytes !== this.#budget.bytes;
    this.#budget.bytes = bytes;
    if (changed && this.#loaded) void this.checkMemory();
  }

  /** The memory budget in bytes, if any. */
  get memoryBudgetBytes(): number | undefined {
    return this.#budget.bytes;
  }

  /**
   * Takes a new units document: new units are made (created stopped), changed ones are replaced
   * at the next tick (dumped and stopped first when running), removed ones are dumped, stopped
   * and removed.
   */
  async setUnits(document: ActivatorUnits): Promise<void> {
    const ids = new Set(document.units.map((u) => u.id));
    for (const [id, record] of this.#units) {
      if (ids.has(id)) continue;
      this.#units.delete(id);
      // The runtime's copy goes in the next tick, through the removal path (with its dump).
      this.#removing.set(id, { until: 0, busy: false });
      void record.waking?.catch(() => undefined);
    }
    for (const unit of document.units) {
      const hash = unitHash(unit);
      const record = this.#units.get(unit.id);
      if (record === undefined) {
        this.#units.set(unit.id, newUnitRecord(unit, hash));
        this.#removing.delete(unit.id);
      } else if (record.hash !== hash) {
        // A unit moved to the other runtime leaves an orphan there, removed by the tick; within
        // one runtime the old copy is replaced before the unit serves again.
        if (record.previous === undefined && record.unit.runtime === unit.runtime) record.previous = record.unit;
        if (record.previous !== undefined && (unitHash(record.previous) === hash || record.previous.runtime !== unit.runtime)) record.previous = undefined;
        record.unit = unit;
        record.hash = hash;
      } else {
        record.unit = unit;
      }
    }
    this.#loaded = true;
    await this.tick();
  }

  /** The ids of the units now known. */
  unitIds(): string[] {
    return [...this.#units.keys()].sort();
  }

  #runtimeFor(unit: Unit): Runtime | undefined {
    return unit.runtime === "docker" ? this.#options.dockerRuntime : this.#options.processRuntime;
  }

  /**
   * Wakes a unit and waits until its readiness probe passes.
   * @throws ActivatorError UNIT_UNKNOWN, WAKE_FAILED or WAKE_TIMEOUT.
   */
  async wake(unitId: string, requestId?: string): Promise<WakeResponse> {
    const started = performance.now();
    const record = this.#units.get(unitId);
    if (record === undefined) {
      const known = this.#loaded ? `it has ${this.#units.size} unit(s)` : "it has not been read yet";
      throw new ActivatorError("UNIT_UNKNOWN", `waking unit ${unitId}: no such unit in activator/units.json (${known})`);
    }
    record.traffic.lastActivity = Date.now();
    const answer = (didStart: boolean): WakeResponse => ({ unit: unitId, address: `${this.#runtimeFor(record.unit)?.serveHost?.(record.unit) ?? record.unit.host}:${record.unit.port}`, started: didStart, waitedMs: Math.round((performance.now() - started) * 1000) / 1000 });
    if (record.state === "running" && record.waking === undefined && record.previous === undefined) return answer(false);
    if (record.waking !== undefined) {
      await record.waking;
      return answer(false);
    }
    const waking = exclusive(record, () => this.#start(record, requestId));
    record.waking = waking;
    try {
      return answer(await waking);
    } finally {
      if (record.waking === waking) record.waking = undefined;
    }
  }

  /** Starts a unit (under its lock). Resolves to whether this call started it. */
  async #start(record: UnitRecord, requestId: string | undefined): Promise<boolean> {
    const { unit } = record;
    const t0 = performance.now();
    const runtime = this.#runtimeFor(unit);
    if (runtime === undefined) {
      record.state = "failed";
      record.lastError = `it needs a Docker engine and this activator has none (${this.#options.dockerMissingReason ?? "no docker runtime"})`;
      throw new ActivatorError("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`);
    }
    if (record.previous !== undefined) {
      const running = (await runtime.status(unit.id).catch(() => ({ running: false }))).running;
      if (!(await this.#stopper.replaceLocked(record, runtime, record.previous, running))) {
        throw new ActivatorError("WAKE_FAILED", `waking unit ${unit.id}: its configuration changed and the old ${runtime.kind === "docker" ? "container" : "process"} could not dump its state, so it was not replaced (${record.lastError ?? "see the alarm"})`);
      }
    }
    let status = await runtime.status(unit.id).catch(() => ({ running: false }));
    let didStart = false;
    if (!status.running) {
      record.state = "starting";
      await this.#budget.makeRoom(record);
      try {
        if (record.ensuredHash !== record.hash) {
          await runtime.ensure(unit, record.hash);
          record.ensuredHash = record.hash;
        }
        await runtime.start(unit, record.hash);
      } catch (error) {
        record.state = "failed";
        record.lastError = errorText(error);
        this.#logger.event("ERROR", { unit: unit.id, requestId, err: error }, `waking unit ${unit.id}: ${record.lastError}`);
        throw new ActivatorError("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`, { cause: error });
      }
      didStart = true;
    }
    const probeHost = await runtime.probeHost?.(unit).catch(() => undefined);
    const probed = probeHost === undefined ? unit : { ...unit, host: probeHost };
    const outcome = await waitReady(probed, t0 + unit.readinessTimeoutSeconds * 1000, () => runtime.status(unit.id), this.#closing.signal);
    if (outcome.kind !== "ready") {
      record.state = "failed";
      status = await runtime.status(unit.id).catch(() => ({ running: false }));
      if (outcome.kind === "exited") {
        record.lastError = `it exited before it was ready (${outcome.detail}); see its log`;
        throw new ActivatorError("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`);
      }
      record.lastError = `not ready within ${unit.readinessTimeoutSeconds} s (last probe: ${outcome.detail})${status.running ? "; it is left running and probed again at the next wake" : ""}`;
      throw new ActivatorError("WAKE_TIMEOUT", `waking unit ${unit.id}: ${record.lastError}`);
    }
    const waitedMs = performance.now() - t0;
    record.state = "running";
    record.lastError = undefined;
    record.traffic.lastActivity = Date.now();
    if (didStart) {
      record.wakeCount++;
      record.lastWakeMs = Math.round(waitedMs * 1000) / 1000;
      this.#logger.event("BACKEND_WOKEN", { unit: unit.id, serviceId: unit.serviceId, runtime: runtime.kind, waitedMs: record.lastWakeMs, requestId }, `woke unit ${unit.id} in ${Math.round(waitedMs)} ms`);
    }
    this.#logger.event("SERVICE_UP", { unit: unit.id, serviceId: unit.serviceId, reason: didStart ? "woken" : "adopted", requestId });
    return didStart;
  }

  /** Takes snitch-proxy's traffic report: any request, byte or open connection is activity. */
  reportActivity(report: ActivityReport): void {
    const now = Date.now();
    for (const [id, activity] of Object.entries(report.units)) {
      const record = this.#units.get(id);
      if (record === undefined) continue;
      record.traffic.requests += activity.requests;
      record.traffic.bytesIn += activity.bytesIn;
      record.traffic.bytesOut += activity.bytesOut;
      record.traffic.openConnections = activity.openConnections;
      record.traffic.reportAt = now;
      if (activity.requests > 0 || activity.bytesIn > 0 || activity.bytesOut > 0 || activity.openConnections > 0) record.traffic.lastActivity = now;
    }
  }

  /** Each unit's stats, as `stats/docker-activator.json` and `GET /units` show them. */
  stats(): Record<string, UnitStats> {
    const out: Record<string, UnitStats> = {};
    for (const [id, r] of this.#units) {
      out[id] = {
        state: r.state,
        wakeCount: r.wakeCount,
        ...(r.lastWakeMs === undefined ? {} : { lastWakeMs: r.lastWakeMs }),
        ...(r.memoryBytes === undefined ? {} : { memoryBytes: r.memoryBytes }),
        ...(r.traffic.lastActivity === undefined ? {} : { lastActivityAt: new Date(r.traffic.lastActivity).toISOString() }),
        bytesIn: r.traffic.bytesIn,
        bytesOut: r.traffic.bytesOut,
      };
    }
    return out;
  }

  /** Why a unit last failed, if it did. */
  lastError(unitId: string): string | undefined {
    return this.#units.get(unitId)?.lastError;
  }

  /**
   * Reads the running units' memory and stops LRU idle units when they exceed the budget. Runs of
   * it never overlap: two would both count a unit being evicted and evict one more.
   */
  checkMemory(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#checking ??= this.#budget
      .check()
      .catch((error: unknown) => this.#logger.event("ERROR", { err: error }, `checking the memory budget: ${errorText(error)}`))
      .finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  /**
   * One pass of observation: adopt units that run without the activator having started them,
   * notice crashes, make missing containers, replace changed units, remove removed ones, and stop
   * idle units. Runs of it never overlap.
   */
  tick(): Promise<void> {
    if (this.#closed || !this.#loaded) return Promise.resolve();
    this.#ticking ??= this.#observer
      .pass()
      .catch((error: unknown) => this.#logger.event("ERROR", { err: error }, `observing the units: ${errorText(error)}`))
      .finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }
}
