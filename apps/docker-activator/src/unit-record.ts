import type { UnitStats as UnitStatsSchema } from "@coyote/spec";
import type { Unit } from "./runtime.ts";

// What the activator keeps of each unit, and the small rules every part of it reads them by.

/** One unit's stats (`@coyote/spec` exports the schema only). */
export type UnitStats = ReturnType<typeof UnitStatsSchema.parse>;

/** Why a unit went down, as SERVICE_DOWN's `reason` says it. */
export type DownReason = "idle" | "evicted" | "removed" | "replaced" | "crashed";

/** The traffic snitch-proxy reported for a unit. */
export interface UnitTraffic {
  /** `Date.now()` of the last request, byte or open connection seen, or of the wake or adoption. */
  lastActivity: number | undefined;
  openConnections: number;
  /** When the last report came: an open-connections count older than the stale period no longer holds. */
  reportAt: number;
  bytesIn: number;
  bytesOut: number;
  requests: number;
}

/** The lock of a unit: start, stop, replace and removal run one at a time. */
export interface UnitLock {
  queue: Promise<unknown>;
  /** Operations queued or running. */
  busy: number;
  /** Moves whenever an operation on the unit starts or ends: an observation older than that is stale. */
  epoch: number;
}

/** What the activator keeps of one unit. */
export interface UnitRecord {
  unit: Unit;
  hash: string;
  state: UnitStats["state"];
  /** The hash the runtime was last asked to make (so that `ensure` runs once per change). */
  ensuredHash: string | undefined;
  /**
   * The configuration the runtime's copy was made from, while it differs from `unit`: that copy
   * must be dumped, stopped and made anew before the unit serves again.
   */
  previous: Unit | undefined;
  readonly traffic: UnitTraffic;
  readonly lock: UnitLock;
  /** The wake under way, which later callers wait for. */
  waking: Promise<boolean> | undefined;
  wakeCount: number;
  lastWakeMs: number | undefined;
  memoryBytes: number | undefined;
  /** The last memory read while it ran, used to foresee what a wake costs. */
  lastMemoryBytes: number | undefined;
  /** No stop is tried before this `Date.now()` (after a failed dump or replacement). */
  nextStopAttempt: number;
  lastError: string | undefined;
  dumpAlarm: boolean;
}

/** A unit the activator has just learnt of: stopped, never woken. */
export function newUnitRecord(unit: Unit, hash: string): UnitRecord {
  return {
    unit,
    hash,
    state: "stopped",
    ensuredHash: undefined,
    previous: undefined,
    traffic: { lastActivity: undefined, openConnections: 0, reportAt: 0, bytesIn: 0, bytesOut: 0, requests: 0 },
    lock: { queue: Promise.resolve(), busy: 0, epoch: 0 },
    waking: undefined,
    wakeCount: 0,
    lastWakeMs: undefined,
    memoryBytes: undefined,
    lastMemoryBytes: undefined,
    nextStopAttempt: 0,
    lastError: undefined,
    dumpAlarm: false,
  };
}

/** Runs `fn` under the unit's lock, after the operations queued before it. */
export function exclusive<T>(record: UnitRecord, fn: () => Promise<T>): Promise<T> {
  const lock = record.lock;
  lock.busy++;
  lock.epoch++;
  const run = lock.queue.then(fn, fn);
  lock.queue = run.catch(() => undefined).finally(() => {
    lock.busy--;
    lock.epoch++;
  });
  return run;
}

/** Whether the proxy's last report, younger than `staleMs`, says connections are open. */
export function connectionsOpen(record: UnitRecord, now: number, staleMs: number): boolean {
  return record.traffic.openConnections > 0 && now - record.traffic.reportAt < staleMs;
}

/** Whether a unit has seen no activity for its idle timeout and holds no open connection. */
export function isIdle(record: UnitRecord, now: number, staleMs: number): boolean {
  return !connectionsOpen(record, now, staleMs) && now - (record.traffic.lastActivity ?? 0) >= record.unit.idleTimeoutSeconds * 1000;
}

/** Whether a unit holds memory now: running, starting, or dumping before a stop. */
export function holdsMemory(record: UnitRecord): boolean {
  return record.state === "running" || record.state === "starting" || record.state === "dumping";
}

const MIB = 1024 * 1024;

/** The memory a running unit counts for: as read, or its limit until it has been read. */
export function accountedBytes(record: UnitRecord): number {
  return record.memoryBytes ?? record.unit.memoryMb * MIB;
}

/** The memory a unit about to start will need: what it used when it last ran, or its limit. */
export function neededBytes(record: UnitRecord): number {
  return record.lastMemoryBytes ?? record.unit.memoryMb * MIB;
}

/** The key of a unit's dump alarm. */
export function dumpAlarmKey(unitId: string): string {
  return `docker-activator/dump/${unitId}`;
}
