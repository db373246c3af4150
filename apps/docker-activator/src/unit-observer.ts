import type { CoyoteLogger } from "@coyote/log";
import { errorText } from "./runtime.ts";
import type { ObservedUnit, Runtime } from "./runtime.ts";
import { exclusive, isIdle, type UnitRecord } from "./unit-record.ts";
import type { UnitStopper } from "./unit-stopper.ts";

/** How many creations, replacements and removals run at once; the rest wait for later ticks. */
const MAX_BACKGROUND = 4;

/** A unit that left units.json, while its container or process is being removed. */
export interface Removal {
  /** No attempt before this `Date.now()` (after a failed dump). */
  until: number;
  busy: boolean;
}

/** What {@link UnitObserver} works with. */
export interface ObserverDeps {
  readonly logger: CoyoteLogger;
  readonly stopper: UnitStopper;
  /** How long an open-connections count holds without a new report. */
  readonly staleMs: number;
  /** How long after a failed removal the next attempt waits. */
  readonly dumpRetryMs: number;
  /** The units, by id (the activator's own map). */
  readonly units: ReadonlyMap<string, UnitRecord>;
  /** Units that left units.json and whose copy is still being removed (the activator's own map). */
  readonly removing: Map<string, Removal>;
  /** The runtimes in use. */
  runtimes(): readonly Runtime[];
}

/**
 * One pass of observation at a time: adopts units that run without the activator having started
 * them, notices crashes, makes missing containers, replaces changed units, removes removed ones,
 * and stops idle units. Engine work runs in the background, a few at a time.
 */
export class UnitObserver {
  readonly #deps: ObserverDeps;
  /** Background engine work (creating, replacing, removing) under way; bounded so that a units file of thousands does not flood the engine. */
  #background = 0;
  /** The runtimes whose last observation failed, so that an outage is logged once. */
  readonly #observeFailing = new Set<string>();

  /** Makes the observer. */
  constructor(deps: ObserverDeps) {
    this.#deps = deps;
  }

  /** One pass over every runtime; never run twice at once (the activator sees to it). */
  async pass(): Promise<void> {
    const held = new Set<string>();
    let complete = true;
    for (const runtime of this.#deps.runtimes()) {
      let observed: Map<string, ObservedUnit>;
      // Taken before observing: a unit whose epoch moved meanwhile was started or stopped while the
      // runtime was being listed, and what the list says of it is stale.
      const epochs = new Map([...this.#deps.units].map(([id, r]) => [id, r.lock.epoch]));
      try {
        observed = await runtime.observe();
      } catch (error) {
        complete = false;
        // Said once per outage, not once per tick.
        if (!this.#observeFailing.has(runtime.kind)) {
          this.#observeFailing.add(runtime.kind);
          this.#deps.logger.event("ERROR", { runtime: runtime.kind, err: error }, `observing the ${runtime.kind} units failed: ${errorText(error)}; retrying every tick`);
        }
        continue;
      }
      if (this.#observeFailing.delete(runtime.kind)) this.#deps.logger.info({ runtime: runtime.kind }, `observing the ${runtime.kind} units works again`);
      for (const id of observed.keys()) held.add(id);
      await this.#reconcile(runtime, observed, epochs);
    }
    if (complete) {
      // A removed unit that no runtime holds (a process unit that was not running) has nothing left to remove.
      for (const [id, removal] of this.#deps.removing) if (!removal.busy && !held.has(id)) this.#deps.removing.delete(id);
    }
    const now = Date.now();
    for (const record of this.#deps.units.values()) {
      const timeout = record.unit.idleTimeoutSeconds * 1000;
      if (timeout === 0 || record.lock.busy > 0 || record.state !== "running" || now < record.nextStopAttempt) continue;
      if (isIdle(record, now, this.#deps.staleMs)) void this.#deps.stopper.stop(record, "idle", () => record.state === "running" && record.waking === undefined && isIdle(record, Date.now(), this.#deps.staleMs));
    }
  }

  async #reconcile(runtime: Runtime, observed: Map<string, ObservedUnit>, epochs: ReadonlyMap<string, number>): Promise<void> {
    const now = Date.now();
    for (const [id, seen] of observed) {
      const record = this.#deps.units.get(id);
      if (record !== undefined && record.unit.runtime === runtime.kind) continue;
      // Not (or no longer) a unit of this runtime: dumped, stopped and removed.
      const removal = this.#deps.removing.get(id) ?? { until: 0, busy: false };
      if (removal.busy || now < removal.until || this.#background >= MAX_BACKGROUND) continue;
      removal.busy = true;
      this.#deps.removing.set(id, removal);
      void this.#inBackground(() => this.#deps.stopper.removeOrphan(runtime, id, seen)).then(
        (done) => {
          removal.busy = false;
          if (done) this.#deps.removing.delete(id);
          else removal.until = Date.now() + this.#deps.dumpRetryMs;
        },
        () => (removal.busy = false),
      );
    }
    for (const record of this.#deps.units.values()) {
      if (record.unit.runtime !== runtime.kind || record.lock.busy > 0 || epochs.get(record.unit.id) !== record.lock.epoch) continue;
      const seen = observed.get(record.unit.id);
      if (record.previous !== undefined || (seen !== undefined && seen.hash !== record.hash)) {
        if (now >= record.nextStopAttempt && this.#background < MAX_BACKGROUND) void this.#inBackground(() => this.#deps.stopper.replace(record, runtime, seen));
        continue;
      }
      if (seen?.running === true && (record.state === "stopped" || record.state === "failed")) {
        // Started by hand or by an earlier activator: it counts as awake and its idle time starts now.
        record.state = "running";
        record.traffic.lastActivity = Date.now();
        record.lastError = undefined;
        this.#deps.logger.event("SERVICE_UP", { unit: record.unit.id, serviceId: record.unit.serviceId, reason: "adopted" }, `unit ${record.unit.id} runs; adopted`);
      } else if (seen?.running !== true && record.state === "running") {
        const status = await runtime.status(record.unit.id).catch(() => ({ running: false, exit: "unknown" }));
        if (status.running || record.lock.busy > 0 || epochs.get(record.unit.id) !== record.lock.epoch) continue;
        record.state = "failed";
        record.memoryBytes = undefined;
        record.lastError = `it stopped by itself (${status.exit ?? "unknown"})`;
        this.#deps.logger.event("SERVICE_DOWN", { unit: record.unit.id, serviceId: record.unit.serviceId, reason: "crashed", exit: status.exit }, `unit ${record.unit.id} ${status.exit ?? "stopped"}`);
      }
      if (seen === undefined && runtime.kind === "docker" && record.ensuredHash !== record.hash && this.#background < MAX_BACKGROUND) {
        // Containers are made stopped as soon as the unit appears, so that the first wake only starts one.
        void this.#inBackground(() => exclusive(record, async () => {
          if (record.ensuredHash === record.hash) return;
          await runtime.ensure(record.unit, record.hash);
          record.ensuredHash = record.hash;
        })).catch((error: unknown) => {
          record.state = "failed";
          record.lastError = `making its container: ${errorText(error)}`;
          // Not retried every tick: the next wake tries again and answers with the reason.
          record.ensuredHash = record.hash;
          this.#deps.logger.event("ERROR", { unit: record.unit.id, err: error }, `unit ${record.unit.id}: ${record.lastError}`);
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
}
