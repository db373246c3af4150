import type { CoyoteLogger } from "@coyote/log";
import type { Runtime } from "./runtime.ts";
import { accountedBytes, connectionsOpen, holdsMemory, neededBytes, type UnitRecord } from "./unit-record.ts";
import type { UnitStopper } from "./unit-stopper.ts";

/** What {@link MemoryBudget} works with. */
export interface BudgetDeps {
  readonly logger: CoyoteLogger;
  readonly stopper: UnitStopper;
  /** How long an open-connections count holds without a new report. */
  readonly activityStaleMs: number;
  /** The units now known. */
  records(): Iterable<UnitRecord>;
  /** The record of a unit id now. */
  current(unitId: string): UnitRecord | undefined;
  /** The runtimes in use. */
  runtimes(): readonly Runtime[];
}

/**
 * The memory budget of the units: before a wake, and whenever the running units' memory read says
 * they exceed it, the least recently used running units without open connections are dumped and
 * stopped (SERVICE_DOWN reason `evicted`). With nothing left to evict, the wake goes ahead and a
 * warning says so.
 */
export class MemoryBudget {
  readonly #deps: BudgetDeps;
  /** The budget in bytes; undefined: none. */
  bytes: number | undefined;

  /** Makes the budget, with none set. */
  constructor(deps: BudgetDeps) {
    this.#deps = deps;
  }

  #running(except: UnitRecord | undefined): UnitRecord[] {
    return [...this.#deps.records()].filter((r) => r !== except && holdsMemory(r));
  }

  /**
   * Makes room in the budget for a unit about to start, by dumping and stopping the least
   * recently used running units without open connections. The unit's need is what it used when
   * it last ran, or its memory limit when it never ran.
   */
  async makeRoom(record: UnitRecord): Promise<void> {
    const budget = this.bytes;
    if (budget === undefined) return;
    const need = neededBytes(record);
    let used = this.#running(record).reduce((sum, r) => sum + accountedBytes(r), 0);
    if (used + need <= budget) return;
    used = await this.#evict(budget - need, record);
    if (used + need > budget) {
      this.#deps.logger.warn({ unit: record.unit.id, usedBytes: used, needBytes: need, budgetBytes: budget }, `starting unit ${record.unit.id} over the memory budget: no more idle units to stop`);
    }
  }

  /**
   * Dumps and stops least recently used idle units until the running ones use at most `target`.
   * @returns the memory the running units use afterwards.
   */
  async #evict(target: number, except: UnitRecord | undefined): Promise<number> {
    const now = Date.now();
    const stale = this.#deps.activityStaleMs;
    const running = this.#running(except);
    let used = running.reduce((sum, r) => sum + accountedBytes(r), 0);
    const candidates = running
      .filter((r) => r.state === "running" && r.waking === undefined && !connectionsOpen(r, now, stale) && now >= r.nextStopAttempt)
      .sort((a, b) => (a.traffic.lastActivity ?? 0) - (b.traffic.lastActivity ?? 0));
    for (const candidate of candidates) {
      if (used <= target) break;
      const freed = accountedBytes(candidate);
      const chosenAt = candidate.traffic.lastActivity;
      this.#deps.logger.info({ unit: candidate.unit.id, usedBytes: used, targetBytes: target }, `evicting unit ${candidate.unit.id}, the least recently used, to stay within the memory budget`);
      // A wake or traffic after the choice means a caller was just told it is ready: spare it.
      const stillIdle = () => candidate.state === "running" && candidate.waking === undefined && candidate.traffic.lastActivity === chosenAt && !connectionsOpen(candidate, Date.now(), stale);
      if (await this.#deps.stopper.stop(candidate, "evicted", stillIdle)) used -= freed;
    }
    return used;
  }

  /** Reads the running units' memory, then stops LRU idle units when they exceed the budget. */
  async check(): Promise<void> {
    for (const runtime of this.#deps.runtimes()) {
      const ids = [...this.#deps.records()].filter((r) => r.unit.runtime === runtime.kind && r.state === "running").map((r) => r.unit.id);
      if (ids.length === 0) continue;
      try {
        const memory = await runtime.memory(ids);
        for (const [id, bytes] of memory) {
          const record = this.#deps.current(id);
          if (record === undefined || record.state !== "running") continue;
          record.memoryBytes = bytes;
          record.lastMemoryBytes = bytes;
        }
      } catch (error) {
        this.#deps.logger.warn({ runtime: runtime.kind, err: error }, `reading the memory of the ${runtime.kind} units failed`);
      }
    }
    const budget = this.bytes;
    if (budget === undefined) return;
    const used = this.#running(undefined).reduce((sum, r) => sum + accountedBytes(r), 0);
    if (used > budget) await this.#evict(budget, undefined);
  }
}
