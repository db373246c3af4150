import type { CoyoteLogger } from "@coyote/log";
import type { ActivatorUnits, ActivityReport, UnitStats as UnitStatsSchema, WakeResponse } from "@coyote/spec";
import { ActivatorFailure } from "./errors.ts";
import { waitReady } from "./probe.ts";
import { errorText, unitHash } from "./runtime.ts";
import type { ObservedUnit, Runtime, Unit } from "./runtime.ts";

/** Raises and clears alarms (in production, lines of `alarms.jsonl` through the state store). */
export interface AlarmSink {
  /** Raises the alarm with this key, unless it is raised already. */
  raise(key: string, alarm: { code: string; message: string; serviceId?: string; severity?: "critical" | "warning" | "info" }): Promise<void>;
  /** Clears the alarm with this key, if it is raised. */
  clear(key: string, message: string, serviceId?: string): Promise<void>;
}

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

/** Why a unit went down, as SERVICE_DOWN's `reason` says it. */
export type DownReason = "idle" | "evicted" | "removed" | "replaced" | "crashed";

const MIB = 1024 * 1024;
/** How many creations, replacements and removals run at once; the rest wait for later ticks. */
const MAX_BACKGROUND = 4;

/** One unit's stats (`@coyote/spec` exports the schema only). */
export type UnitStats = ReturnType<typeof UnitStatsSchema.parse>;

interface UnitRecord {
  unit: Unit;
  hash: string;
  state: UnitStats["state"];
  /** The hash the runtime was last asked to make (so that `ensure` runs once per change). */
  ensuredHash: string | undefined;
  wakeCount: number;
  lastWakeMs: number | undefined;
  memoryBytes: number | undefined;
  /** The last memory read while it ran, used to foresee what a wake costs. */
  lastMemoryBytes: number | undefined;
  /** `Date.now()` of the last request, byte or open connection seen, or of the wake or adoption. */
  lastActivity: number | undefined;
  openConnections: number;
  reportAt: number;
  bytesIn: number;
  bytesOut: number;
  requests: number;
  waking: Promise<boolean> | undefined;
  /** Serialises start, stop, replace and removal of the unit. */
  queue: Promise<unknown>;
  busy: number;
  /** Moves whenever an operation on the unit starts or ends: an observation older than that is stale. */
  epoch: number;
  nextStopAttempt: number;
  lastError: string | undefined;
  dumpAlarm: boolean;
  /**
   * The configuration the runtime's copy was made from, while it differs from `unit`: that copy
   * must be dumped, stopped and made anew before the unit serves again.
   */
  previous: Unit | undefined;
}

function dumpAlarmKey(unitId: string): string {
  return `docker-activator/dump/${unitId}`;
}

/**
 * The heart of docker-activator: the units, their state and activity, and every decision about
 * them. Wakes start a unit once however many callers wait; a tick observes the runtimes (adopting
 * units started outside, noticing crashes, replacing changed units, removing removed ones) and
 * stops idle units; a slower tick reads memory and keeps the units within the budget. Every stop
 * runs the unit's dump hook first, and a failed dump keeps the unit running and raises an alarm.
 */
export class Activator {
  readonly #options: ActivatorOptions;
  readonly #logger: CoyoteLogger;
  readonly #units = new Map<string, UnitRecord>();
  /** Units that left units.json and whose container or process is still being removed. */
  readonly #removing = new Map<string, { until: number; busy: boolean }>();
  #budgetBytes: number | undefined;
  #loaded = false;
  #ticking: Promise<void> | undefined;
  #checking: Promise<void> | undefined;
  /** Background engine work (creating, replacing, removing) under way; bounded so that a units file of thousands does not flood the engine. */
  #background = 0;
  /** The runtimes whose last observation failed, so that an outage is logged once. */
  readonly #observeFailing = new Set<string>();
  /** Aborted by close(): readiness waits give up instead of holding the shutdown. */
  readonly #closing = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #memoryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Makes the activator; nothing runs before {@link Activator.run}. */
  constructor(options: ActivatorOptions) {
    this.#options = options;
    this.#logger = options.logger;
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
    await Promise.all([...this.#units.values()].map((r) => r.queue.catch(() => undefined)));
  }

  /** Sets the memory budget of the units, in bytes (undefined: none). Takes effect at once. */
  setMemoryBudget(bytes: number | undefined): void {
    const changed = bytes !== this.#budgetBytes;
    this.#budgetBytes = bytes;
    if (changed && this.#loaded) void this.checkMemory();
  }

  /** The memory budget in bytes, if any. */
  get memoryBudgetBytes(): number | undefined {
    return this.#budgetBytes;
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
        this.#units.set(unit.id, {
          unit,
          hash,
          state: "stopped",
          ensuredHash: undefined,
          wakeCount: 0,
          lastWakeMs: undefined,
          memoryBytes: undefined,
          lastMemoryBytes: undefined,
          lastActivity: undefined,
          openConnections: 0,
          reportAt: 0,
          bytesIn: 0,
          bytesOut: 0,
          requests: 0,
          waking: undefined,
          queue: Promise.resolve(),
          busy: 0,
          epoch: 0,
          nextStopAttempt: 0,
          lastError: undefined,
          dumpAlarm: false,
          previous: undefined,
        });
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

  #exclusive<T>(record: UnitRecord, fn: () => Promise<T>): Promise<T> {
    record.busy++;
    record.epoch++;
    const run = record.queue.then(fn, fn);
    record.queue = run.catch(() => undefined).finally(() => {
      record.busy--;
      record.epoch++;
    });
    return run;
  }

  #connectionsOpen(record: UnitRecord, now: number): boolean {
    return record.openConnections > 0 && now - record.reportAt < (this.#options.activityStaleMs ?? 60_000);
  }

  /**
   * Wakes a unit and waits until its readiness probe passes.
   * @throws ActivatorFailure UNIT_UNKNOWN, WAKE_FAILED or WAKE_TIMEOUT.
   */
  async wake(unitId: string, requestId?: string): Promise<WakeResponse> {
    const started = performance.now();
    const record = this.#units.get(unitId);
    if (record === undefined) {
      const known = this.#loaded ? `it has ${this.#units.size} unit(s)` : "it has not been read yet";
      throw new ActivatorFailure("UNIT_UNKNOWN", `waking unit ${unitId}: no such unit in activator/units.json (${known})`);
    }
    record.lastActivity = Date.now();
    const answer = (didStart: boolean): WakeResponse => ({ unit: unitId, address: `${this.#runtimeFor(record.unit)?.serveHost?.(record.unit) ?? record.unit.host}:${record.unit.port}`, started: didStart, waitedMs: Math.round((performance.now() - started) * 1000) / 1000 });
    if (record.state === "running" && record.waking === undefined && record.previous === undefined) return answer(false);
    if (record.waking !== undefined) {
      await record.waking;
      return answer(false);
    }
    const waking = this.#exclusive(record, () => this.#start(record, requestId));
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
      throw new ActivatorFailure("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`);
    }
    if (record.previous !== undefined) {
      const running = (await runtime.status(unit.id).catch(() => ({ running: false }))).running;
      if (!(await this.#replaceLocked(record, runtime, record.previous, running))) {
        throw new ActivatorFailure("WAKE_FAILED", `waking unit ${unit.id}: its configuration changed and the old ${runtime.kind === "docker" ? "container" : "process"} could not dump its state, so it was not replaced (${record.lastError ?? "see the alarm"})`);
      }
    }
    let status = await runtime.status(unit.id).catch(() => ({ running: false }));
    let didStart = false;
    if (!status.running) {
      record.state = "starting";
      await this.#makeRoom(record);
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
        throw new ActivatorFailure("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`, { cause: error });
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
        throw new ActivatorFailure("WAKE_FAILED", `waking unit ${unit.id}: ${record.lastError}`);
      }
      record.lastError = `not ready within ${unit.readinessTimeoutSeconds} s (last probe: ${outcome.detail})${status.running ? "; it is left running and probed again at the next wake" : ""}`;
      throw new ActivatorFailure("WAKE_TIMEOUT", `waking unit ${unit.id}: ${record.lastError}`);
    }
    const waitedMs = performance.now() - t0;
    record.state = "running";
    record.lastError = undefined;
    record.lastActivity = Date.now();
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
      record.requests += activity.requests;
      record.bytesIn += activity.bytesIn;
      record.bytesOut += activity.bytesOut;
      record.openConnections = activity.openConnections;
      record.reportAt = now;
      if (activity.requests > 0 || activity.bytesIn > 0 || activity.bytesOut > 0 || activity.openConnections > 0) record.lastActivity = now;
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
        ...(r.lastActivity === undefined ? {} : { lastActivityAt: new Date(r.lastActivity).toISOString() }),
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
      };
    }
    return out;
  }

  /** Why a unit last failed, if it did. */
  lastError(unitId: string): string | undefined {
    return this.#units.get(unitId)?.lastError;
  }

  /**
   * Dumps and stops a unit (under its lock). For `idle` and `evicted`, whether the unit still
   * qualifies is decided again under the lock: a wake or traffic may have come meanwhile.
   * @returns whether the unit is stopped now.
   */
  #stop(record: UnitRecord, reason: DownReason, stillWanted: () => boolean): Promise<boolean> {
    return this.#exclusive(record, async () => {
      if (this.#units.get(record.unit.id) !== record && reason !== "removed") return false;
      // Stopped meanwhile (an eviction queued twice, say): that is what the caller wants.
      if (record.state === "stopped") return true;
      if (!stillWanted()) return false;
      const runtime = this.#runtimeFor(record.unit);
      if (runtime === undefined) return true;
      const status = await runtime.status(record.unit.id);
      if (!status.running) {
        record.state = "stopped";
        return true;
      }
      if (!(await this.#dump(record.unit, runtime, reason, record))) return false;
      record.state = "stopping";
      await runtime.stop(record.unit.id, this.#options.stopGraceMs ?? 10_000);
      record.state = "stopped";
      record.memoryBytes = undefined;
      this.#wentDown(record.unit, runtime, reason);
      return true;
    }).catch((error: unknown) => {
      record.state = "failed";
      record.lastError = `stopping: ${errorText(error)}`;
      this.#logger.event("ERROR", { unit: record.unit.id, err: error }, `stopping unit ${record.unit.id} (${reason}): ${errorText(error)}`);
      return false;
    });
  }

  #wentDown(unit: Unit, runtime: Runtime, reason: DownReason): void {
    this.#logger.event("BACKEND_STOPPED", { unit: unit.id, serviceId: unit.serviceId, runtime: runtime.kind, reason }, `stopped unit ${unit.id} (${reason})`);
    this.#logger.event("SERVICE_DOWN", { unit: unit.id, serviceId: unit.serviceId, reason });
  }

  /**
   * Runs a unit's dump hook, if it has one.
   * @returns whether the unit may be stopped: false when the dump failed (the alarm is raised).
   */
  async #dump(unit: Unit, runtime: Runtime, reason: DownReason, record: UnitRecord | undefined): Promise<boolean> {
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
        record.nextStopAttempt = Date.now() + (this.#options.dumpRetryMs ?? 60_000);
        record.dumpAlarm = true;
      }
      this.#logger.event("ERROR", { unit: unit.id, serviceId: unit.serviceId, reason, err: error }, message);
      await this.#options.alarms.raise(dumpAlarmKey(unit.id), { code: "ACTIVATOR_DUMP_FAILED", message, serviceId: unit.serviceId, severity: "warning" });
      return false;
    }
    this.#logger.event("STATE_DUMPED", { unit: unit.id, serviceId: unit.serviceId, reason, tookMs: Math.round(performance.now() - t0) }, `unit ${unit.id} dumped its state`);
    if (record !== undefined) record.dumpAlarm = false;
    await this.#options.alarms.clear(dumpAlarmKey(unit.id), `unit ${unit.id} dumped its state`, unit.serviceId);
    return true;
  }

  /** The memory a running unit counts for: as read, or its limit until it has been read. */
  #accounted(record: UnitRecord): number {
    return record.memoryBytes ?? record.unit.memoryMb * MIB;
  }

  /**
   * Makes room in the budget for a unit about to start, by dumping and stopping the least
   * recently used running units without open connections. The unit's need is what it used when
   * it last ran, or its memory limit when it never ran.
   */
  async #makeRoom(record: UnitRecord): Promise<void> {
    const budget = this.#budgetBytes;
    if (budget === undefined) return;
    const need = record.lastMemoryBytes ?? record.unit.memoryMb * MIB;
    const others = () => [...this.#units.values()].filter((r) => r !== record && (r.state === "running" || r.state === "starting" || r.state === "dumping"));
    let used = others().reduce((sum, r) => sum + this.#accounted(r), 0);
    if (used + need <= budget) return;
    used = await this.#evict(budget - need, record);
    if (used + need > budget) {
      this.#logger.warn({ unit: record.unit.id, usedBytes: used, needBytes: need, budgetBytes: budget }, `starting unit ${record.unit.id} over the memory budget: no more idle units to stop`);
    }
  }

  /**
   * Dumps and stops least recently used idle units until the running ones use at most `target`.
   * @returns the memory the running units use afterwards.
   */
  async #evict(target: number, except: UnitRecord | undefined): Promise<number> {
    const now = Date.now();
    const running = [...this.#units.values()].filter((r) => r !== except && (r.state === "running" || r.state === "starting" || r.state === "dumping"));
    let used = running.reduce((sum, r) => sum + this.#accounted(r), 0);
    const candidates = running
      .filter((r) => r.state === "running" && r.waking === undefined && !this.#connectionsOpen(r, now) && now >= r.nextStopAttempt)
      .sort((a, b) => (a.lastActivity ?? 0) - (b.lastActivity ?? 0));
    for (const candidate of candidates) {
      if (used <= target) break;
      const freed = this.#accounted(candidate);
      const chosenAt = candidate.lastActivity;
      this.#logger.info({ unit: candidate.unit.id, usedBytes: used, targetBytes: target }, `evicting unit ${candidate.unit.id}, the least recently used, to stay within the memory budget`);
      // A wake or traffic after the choice means a caller was just told it is ready: spare it.
      const stopped = await this.#stop(candidate, "evicted", () => candidate.state === "running" && candidate.waking === undefined && candidate.lastActivity === chosenAt && !this.#connectionsOpen(candidate, Date.now()));
      if (stopped) used -= freed;
    }
    return used;
  }

  /**
   * Reads the running units' memory and stops LRU idle units when they exceed the budget. Runs of
   * it never overlap: two would both count a unit being evicted and evict one more.
   */
  checkMemory(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#checking ??= this.#checkMemory()
      .catch((error: unknown) => this.#logger.event("ERROR", { err: error }, `checking the memory budget: ${errorText(error)}`))
      .finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #checkMemory(): Promise<void> {
    for (const runtime of [this.#options.processRuntime, this.#options.dockerRuntime]) {
      if (runtime === undefined) continue;
      const ids = [...this.#units.values()].filter((r) => r.unit.runtime === runtime.kind && r.state === "running").map((r) => r.unit.id);
      if (ids.length === 0) continue;
      try {
        const memory = await runtime.memory(ids);
        for (const [id, bytes] of memory) {
          const record = this.#units.get(id);
          if (record === undefined || record.state !== "running") continue;
          record.memoryBytes = bytes;
          record.lastMemoryBytes = bytes;
        }
      } catch (error) {
        this.#logger.warn({ runtime: runtime.kind, err: error }, `reading the memory of the ${runtime.kind} units failed`);
      }
    }
    const budget = this.#budgetBytes;
    if (budget === undefined) return;
    const used = [...this.#units.values()].filter((r) => r.state === "running" || r.state === "starting" || r.state === "dumping").reduce((sum, r) => sum + this.#accounted(r), 0);
    if (used > budget) await this.#evict(budget, undefined);
  }

  /**
   * One pass of observation: adopt units that run without the activator having started them,
   * notice crashes, make missing containers, replace changed units, remove removed ones, and stop
   * idle units. Runs of it never overlap.
   */
  tick(): Promise<void> {
    if (this.#closed || !this.#loaded) return Promise.resolve();
    this.#ticking ??= this.#tick()
      .catch((error: unknown) => this.#logger.event("ERROR", { err: error }, `observing the units: ${errorText(error)}`))
      .finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    const held = new Set<string>();
    let complete = true;
    for (const runtime of [this.#options.processRuntime, this.#options.dockerRuntime]) {
      if (runtime === undefined) continue;
      let observed: Map<string, ObservedUnit>;
      // Taken before observing: a unit whose epoch moved meanwhile was started or stopped while the
      // runtime was being listed, and what the list says of it is stale.
      const epochs = new Map([...this.#units].map(([id, r]) => [id, r.epoch]));
      try {
        observed = await runtime.observe();
      } catch (error) {
        complete = false;
        // Said once per outage, not once per tick.
        if (!this.#observeFailing.has(runtime.kind)) {
          this.#observeFailing.add(runtime.kind);
          this.#logger.event("ERROR", { runtime: runtime.kind, err: error }, `observing the ${runtime.kind} units failed: ${errorText(error)}; retrying every tick`);
        }
        continue;
      }
      if (this.#observeFailing.delete(runtime.kind)) this.#logger.info({ runtime: runtime.kind }, `observing the ${runtime.kind} units works again`);
      for (const id of observed.keys()) held.add(id);
      await this.#reconcile(runtime, observed, epochs);
    }
    if (complete) {
      // A removed unit that no runtime holds (a process unit that was not running) has nothing left to remove.
      for (const [id, removal] of this.#removing) if (!removal.busy && !held.has(id)) this.#removing.delete(id);
    }
    const now = Date.now();
    for (const record of this.#units.values()) {
      const timeout = record.unit.idleTimeoutSeconds * 1000;
      if (timeout === 0 || record.busy > 0 || record.state !== "running" || now < record.nextStopAttempt) continue;
      if (this.#isIdle(record, now)) void this.#stop(record, "idle", () => record.state === "running" && record.waking === undefined && this.#isIdle(record, Date.now()));
    }
  }

  #isIdle(record: UnitRecord, now: number): boolean {
    return !this.#connectionsOpen(record, now) && now - (record.lastActivity ?? 0) >= record.unit.idleTimeoutSeconds * 1000;
  }

  async #reconcile(runtime: Runtime, observed: Map<string, ObservedUnit>, epochs: ReadonlyMap<string, number>): Promise<void> {
    const now = Date.now();
    for (const [id, seen] of observed) {
      const record = this.#units.get(id);
      if (record !== undefined && record.unit.runtime === runtime.kind) continue;
      // Not (or no longer) a unit of this runtime: dumped, stopped and removed.
      const removal = this.#removing.get(id) ?? { until: 0, busy: false };
      if (removal.busy || now < removal.until || this.#background >= MAX_BACKGROUND) continue;
      removal.busy = true;
      this.#removing.set(id, removal);
      void this.#inBackground(() => this.#removeOrphan(runtime, id, seen)).then(
        (done) => {
          removal.busy = false;
          if (done) this.#removing.delete(id);
          else removal.until = Date.now() + (this.#options.dumpRetryMs ?? 60_000);
        },
        () => (removal.busy = false),
      );
    }
    for (const record of this.#units.values()) {
      if (record.unit.runtime !== runtime.kind || record.busy > 0 || epochs.get(record.unit.id) !== record.epoch) continue;
      const seen = observed.get(record.unit.id);
      if (record.previous !== undefined || (seen !== undefined && seen.hash !== record.hash)) {
        if (now >= record.nextStopAttempt && this.#background < MAX_BACKGROUND) void this.#inBackground(() => this.#replace(record, runtime, seen));
        continue;
      }
      if (seen?.running === true && (record.state === "stopped" || record.state === "failed")) {
        // Started by hand or by an earlier activator: it counts as awake and its idle time starts now.
        record.state = "running";
        record.lastActivity = Date.now();
        record.lastError = undefined;
        this.#logger.event("SERVICE_UP", { unit: record.unit.id, serviceId: record.unit.serviceId, reason: "adopted" }, `unit ${record.unit.id} runs; adopted`);
      } else if (seen?.running !== true && record.state === "running") {
        const status = await runtime.status(record.unit.id).catch(() => ({ running: false, exit: "unknown" }));
        if (status.running || record.busy > 0 || epochs.get(record.unit.id) !== record.epoch) continue;
        record.state = "failed";
        record.memoryBytes = undefined;
        record.lastError = `it stopped by itself (${status.exit ?? "unknown"})`;
        this.#logger.event("SERVICE_DOWN", { unit: record.unit.id, serviceId: record.unit.serviceId, reason: "crashed", exit: status.exit }, `unit ${record.unit.id} ${status.exit ?? "stopped"}`);
      }
      if (seen === undefined && runtime.kind === "docker" && record.ensuredHash !== record.hash && this.#background < MAX_BACKGROUND) {
        // Containers are made stopped as soon as the unit appears, so that the first wake only starts one.
        void this.#inBackground(() => this.#exclusive(record, async () => {
          if (record.ensuredHash === record.hash) return;
          await runtime.ensure(record.unit, record.hash);
          record.ensuredHash = record.hash;
        })).catch((error: unknown) => {
          record.state = "failed";
          record.lastError = `making its container: ${errorText(error)}`;
          // Not retried every tick: the next wake tries again and answers with the reason.
          record.ensuredHash = record.hash;
          this.#logger.event("ERROR", { unit: record.unit.id, err: error }, `unit ${record.unit.id}: ${record.lastError}`);
        });
      }
    }
  }

  /** Runs engine work in the background, counted against {@link MAX_BACKGROUND}. */
  async #inBackground<T>(work: () => Promise<T>): Promise<T> {
    this.#background++;
    try {
      return await work();
    } finally {
      this.#background--;
    }
  }

  /**
   * Replaces a unit whose container or process was made from another configuration: dumps (with
   * the old configuration's hook) and stops the old copy if it runs, removes it and makes the new
   * one, stopped. Called under the unit's lock.
   * @returns false when the dump failed: the old copy keeps running and the alarm is raised.
   */
  async #replaceLocked(record: UnitRecord, runtime: Runtime, old: Unit, running: boolean): Promise<boolean> {
    if (running) {
      if (!(await this.#dump(old, runtime, "replaced", record))) return false;
      record.state = "stopping";
      await runtime.stop(record.unit.id, this.#options.stopGraceMs ?? 10_000);
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
    this.#logger.event("CONFIG_RELOADED", { unit: record.unit.id, runtime: runtime.kind }, `unit ${record.unit.id} changed; its ${runtime.kind === "docker" ? "container was made anew" : "old process was stopped"}`);
    return true;
  }

  /** {@link Activator.#replaceLocked} from the tick, under the unit's lock, errors logged. */
  #replace(record: UnitRecord, runtime: Runtime, seen: ObservedUnit | undefined): Promise<void> {
    return this.#exclusive(record, async () => {
      // Decided again under the lock: a wake may have replaced it meanwhile.
      const old = record.previous ?? (seen !== undefined && seen.hash !== record.hash ? (seen.unit ?? record.unit) : undefined);
      if (old === undefined) return;
      const running = (await runtime.status(record.unit.id)).running;
      await this.#replaceLocked(record, runtime, old, running);
    }).catch((error: unknown) => {
      record.lastError = `replacing: ${errorText(error)}`;
      record.nextStopAttempt = Date.now() + (this.#options.dumpRetryMs ?? 60_000);
      this.#logger.event("ERROR", { unit: record.unit.id, err: error }, `replacing unit ${record.unit.id}: ${errorText(error)}`);
    });
  }


  /** Dumps, stops and removes a unit that left units.json. @returns whether it is gone. */
  async #removeOrphan(runtime: Runtime, id: string, seen: ObservedUnit): Promise<boolean> {
    try {
      if (seen.running) {
        if (seen.unit !== undefined && !(await this.#dump(seen.unit, runtime, "removed", undefined))) return false;
        await runtime.stop(id, this.#options.stopGraceMs ?? 10_000);
        this.#wentDown(seen.unit ?? { id, serviceId: id } as Unit, runtime, "removed");
      }
      await runtime.remove(id);
      this.#logger.info({ unit: id, runtime: runtime.kind }, `removed unit ${id}, which left activator/units.json`);
      return true;
    } catch (error) {
      this.#logger.event("ERROR", { unit: id, err: error }, `removing unit ${id}: ${errorText(error)}`);
      return false;
    }
  }
}
