import { readFile, rm } from "node:fs/promises";
import type { CoyoteLogger } from "@coyote/log";
import { ContractError, ServiceStatus, parseSpec, readJsonText, specPath, type ServerSpec, type ServiceSpec, type Spec, type StateStore } from "@coyote/spec";
import { actuatorStore, type ActuatorStore } from "./actuator-store.ts";
import { mergeConditions, type ConditionUpdate } from "./conditions.ts";
import { FileCache } from "./directory-cache.ts";
import { ActuatorError, type Actuator, type ActuatorContext, type Requeue, type Target } from "./index.ts";
import type { Journal } from "./journal.ts";
import { ReconcileLoop } from "./reconcile.ts";

/** What one reconcile of a service asks of the work queue. */
export type Outcome =
  | { readonly kind: "done" }
  /** Check again after this long (a level-based "requeue after"). */
  | { readonly kind: "after"; readonly ms: number }
  /** A transient failure: retry with backoff. */
  | { readonly kind: "retry" }
  /** A terminal failure: do not retry until the key is added again. */
  | { readonly kind: "terminal" };

/** What the reconciler needs from the minion. */
export interface ReconcilerDeps {
  /** The state store. */
  readonly store: StateStore;
  /** The minion's logger. */
  readonly logger: CoyoteLogger;
  /** The commit journal. */
  readonly journal: Journal;
  /** Aborted when the minion stops. */
  readonly signal: AbortSignal;
  /** The clock, for condition times. */
  readonly now: () => Date;
}

/** The result of one actuator for one service in a batch. */
interface ActuatorResult {
  readonly actuator: Actuator;
  readonly reported: boolean;
  ok: boolean;
  reason: string;
  message: string;
  terminal: boolean;
  applied: boolean;
  /** Set when the apply asked to be called again: not converged, and not failed either. */
  requeue: Requeue | undefined;
}

/** One service's part of a batch. */
interface ServiceWork {
  readonly id: string;
  readonly spec: ServiceSpec | undefined;
  readonly generation: number;
  readonly specProblem: string | undefined;
  readonly results: ActuatorResult[];
  startedAt?: number;
}

/** How many services of a batch are observed at once. */
const CONCURRENCY = 8;
/**
 * How many status files are written at once. Each write syncs its file and folder; syncs made
 * together share the file system's journal commits, so a batch's statuses written side by side
 * cost a fraction of the same writes one after another.
 */
const STATUS_WRITES = 16;

/** Runs `fn` on every item, at most `limit` at a time, in order of start. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** What a condition's reason may be: one PascalCase word. */
const REASON = /^[A-Z][A-Za-z0-9]{0,63}$/;

/** The condition the reconciler itself reports on every service: whether its spec is usable. */
export const SPEC_VALID = "SpecValid";
/** The summary condition: every other condition is True. */
export const READY = "Ready";

/**
 * Reconciles batches of services: for each service every actuator in order observes, plans and
 * applies; then every actuator that applied commits once; then each service's status is written
 * (only when it changed, so a converged resync writes nothing).
 */
export class Reconciler {
  readonly #deps: ReconcilerDeps;
  /** The last status written per service, so that unchanged statuses are not rewritten. */
  readonly statuses = new Map<string, ServiceStatus>();
  readonly #specs = new Map<string, FileCache<Spec>>();
  /** The store as the actuators see it: no specs, no history. */
  readonly #actuatorStore: ActuatorStore;
  /** The steps every service goes through, with the one lock all applies take. */
  readonly #loop: ReconcileLoop;

  /** Makes a reconciler. */
  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#actuatorStore = actuatorStore(deps.store);
    this.#loop = new ReconcileLoop({ journal: deps.journal });
  }

  /**
   * Reconciles a batch of services against the given actuators.
   * @returns each service's outcome for the work queue.
   */
  async reconcileBatch(ids: readonly string[], actuators: readonly Actuator[], server: ServerSpec): Promise<Map<string, Outcome>> {
    const { logger } = this.#deps;
    const started = performance.now();
    const work: ServiceWork[] = [];
    for (const id of ids) work.push(await this.#load(id));
    const appliedBy = new Map<Actuator, ServiceWork[]>();

    // A service gets a status before anything is made for it: the status files are how a
    // restarted minion finds services deleted while it was down, whose leftovers it removes.
    // The new services of a batch get theirs together, before any apply, rather than one by one
    // under the lock.
    const unseen = work.filter((item) => item.specProblem === undefined && item.spec !== undefined && !this.statuses.has(item.id));
    await eachLimited(unseen, STATUS_WRITES, (item) => this.#firstStatus(item.id));

    // Services are reconciled several at a time: a converged service costs only reads, and those
    // wait on the disk, not the CPU. Every change is made under one lock, after observing and
    // planning again under it, so that two services never act on what the other is changing
    // (two claiming one domain, say). One service's actuators still run in order.
    const reconcileOne = async (item: ServiceWork) => {
      if (item.specProblem !== undefined) return;
      const target: Target = { id: item.id, spec: item.spec };
      item.startedAt = performance.now();
      logger.event("RECONCILE_STARTED", { serviceId: item.id, generation: item.generation });
      for (const actuator of actuators) {
        const reported = item.spec !== undefined && (actuator.appliesTo?.(item.spec) ?? true);
        const result: ActuatorResult = { actuator, reported, ok: true, reason: "Converged", message: "matches the spec", terminal: false, applied: false, requeue: undefined };
        item.results.push(result);
        const context = this.#context(actuator, item.id, server);
        try {
          // Written above for a new service; again here for one whose status went meanwhile.
          const { changed, plan, requeue } = await this.#loop.step(actuator, target, context, () => this.#firstStatus(item.id));
          if (!changed) continue;
          if (requeue) {
            result.requeue = requeue;
            result.reason = REASON.test(requeue.reason) ? requeue.reason : "NotConverged";
            result.message = requeue.message.slice(0, 2000);
          }
          // The condition says where things stand, not what was just done (that goes to the
          // log), so that the next, converged pass leaves the status untouched.
          result.applied = true;
          context.logger.info({ serviceId: item.id, changes: plan.describe }, `${actuator.id} applied ${plan.describe.length} change(s) for ${item.id}`);
          const list = appliedBy.get(actuator) ?? [];
          list.push(item);
          appliedBy.set(actuator, list);
        } catch (error) {
          this.#fail(result, error);
          context.logger.event("ERROR", { serviceId: item.id, actuator: actuator.id, reason: result.reason, terminal: result.terminal, err: error }, `${actuator.id} failed for ${item.id}`);
        }
      }
    };
    await eachLimited(work, CONCURRENCY, reconcileOne);

    await this.commit(actuators, server, appliedBy);

    const outcomes = new Map<string, Outcome>();
    await eachLimited(work, STATUS_WRITES, async (item) => {
      outcomes.set(item.id, await this.#finish(item));
    });
    logger.debug({ services: ids.length, ms: Math.round(performance.now() - started) }, "batch reconciled");
    return outcomes;
  }

  /**
   * Commits every actuator that applied in this batch or owes a commit from an earlier run. A
   * failed commit fails the services that applied through that actuator (they are retried).
   */
  async commit(actuators: readonly Actuator[], server: ServerSpec, appliedBy: ReadonlyMap<Actuator, ServiceWork[]> = new Map()): Promise<void> {
    const owed = new Set(this.#deps.journal.pending);
    for (const actuator of actuators) {
      if (!appliedBy.has(actuator) && !owed.has(actuator.id)) continue;
      const context = this.#context(actuator, undefined, server);
      const started = performance.now();
      try {
        await this.#loop.commit(actuator, context);
        this.#deps.logger.event("CONFIG_RELOADED", { actuator: actuator.id, services: (appliedBy.get(actuator) ?? []).length, ms: Math.round(performance.now() - started) });
      } catch (error) {
        context.logger.event("ERROR", { actuator: actuator.id, err: error }, `committing ${actuator.id} failed`);
        for (const item of appliedBy.get(actuator) ?? []) {
          const result = item.results.find((r) => r.actuator === actuator);
          if (result) this.#fail(result, new ActuatorError("CommitFailed", `committing ${actuator.id}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
        }
      }
    }
  }

  #context(actuator: Actuator, serviceId: string | undefined, server: ServerSpec): ActuatorContext {
    const bindings: Record<string, unknown> = { actuator: actuator.id };
    if (serviceId !== undefined) bindings.serviceId = serviceId;
    return { stateDir: this.#deps.store.root, store: this.#actuatorStore, logger: this.#deps.logger.child(bindings), signal: this.#deps.signal, server };
  }

  #fail(result: ActuatorResult, error: unknown): void {
    result.ok = false;
    if (error instanceof ActuatorError) {
      result.reason = REASON.test(error.reason) ? error.reason : "ActuatorFailed";
      result.terminal = error.terminal;
    } else {
      result.reason = "ActuatorFailed";
      result.terminal = false;
    }
    result.message = (error instanceof Error ? error.message : String(error)).slice(0, 2000);
  }

  async #load(id: string): Promise<ServiceWork> {
    try {
      const spec = await this.#readSpec(id);
      if (spec && spec.kind !== "Service") throw new ContractError("SPEC_ERR_INVALID", specPath(id), [{ field: "kind", message: 'a service spec has kind "Service"' }]);
      if (spec && spec.id !== id) throw new ContractError("SPEC_ERR_INVALID", specPath(id), [{ field: "id", message: `the file of service ${id} holds service ${spec.id}` }]);
      return { id, spec, generation: spec?.generation ?? 0, specProblem: undefined, results: [] };
    } catch (error) {
      return { id, spec: undefined, generation: await this.#rawGeneration(id), specProblem: error instanceof Error ? error.message : String(error), results: [] };
    }
  }

  /**
   * Reads a service spec, validated, parsing it again only when its file changed: a resync reads
   * every spec, and most have not changed since the last one.
   */
  async #readSpec(id: string): Promise<Spec | undefined> {
    let cache = this.#specs.get(id);
    if (!cache) {
      const file = specPath(id);
      cache = new FileCache(this.#deps.store.path(file), (text) => parseSpec(readJsonText(text, file), file));
      this.#specs.set(id, cache);
    }
    return cache.read();
  }

  /** The generation written in an invalid spec file, when it can be read at all. */
  async #rawGeneration(id: string): Promise<number> {
    try {
      const raw = readJsonText(await readFile(this.#deps.store.path(`specs/services/${id}.json`), "utf8"), id);
      const generation = typeof raw === "object" && raw !== null && "generation" in raw ? raw.generation : undefined;
      return typeof generation === "number" && Number.isInteger(generation) && generation >= 0 ? generation : this.statuses.get(id)?.observedGeneration ?? 0;
    } catch {
      return this.statuses.get(id)?.observedGeneration ?? 0;
    }
  }

  async #finish(item: ServiceWork): Promise<Outcome> {
    const { logger, store } = this.#deps;
    const failed = item.results.filter((r) => !r.ok);
    // The soonest time an actuator asked to be called again, when one did and nothing failed.
    const waits = item.results.flatMap((r) => (r.requeue ? [r.requeue.afterMs] : []));
    const requeue: Outcome | undefined = waits.length > 0 ? { kind: "after", ms: Math.min(...waits) } : undefined;
    if (item.spec === undefined && item.specProblem === undefined) {
      // Deleted: once every actuator has removed its part, the status goes too.
      if (failed.length === 0) {
        if (requeue) return requeue;
        await rm(store.path(`status/${item.id}.json`), { force: true });
        this.statuses.delete(item.id);
        logger.event("RECONCILE_DONE", { serviceId: item.id, deleted: true }, `${item.id} removed`);
        return { kind: "done" };
      }
      logger.event("RECONCILE_FAILED", { serviceId: item.id, deleted: true, reasons: failed.map((r) => r.reason) });
      return failed.every((r) => r.terminal) ? { kind: "terminal" } : { kind: "retry" };
    }

    const updates: ConditionUpdate[] = [];
    const generation = item.generation;
    if (item.specProblem !== undefined) {
      updates.push({ type: SPEC_VALID, status: "False", reason: "InvalidSpec", message: `${item.specProblem.slice(0, 1900)} (nothing was changed; the last good state stays)`, observedGeneration: generation });
      updates.push({ type: READY, status: "False", reason: "InvalidSpec", message: "the spec is invalid, see SpecValid", observedGeneration: generation });
      // The actuators' last conditions are kept: what they made from the last good spec is still there.
    } else {
      updates.push({ type: SPEC_VALID, status: "True", reason: "Valid", message: "the spec is valid", observedGeneration: generation });
      for (const r of item.results.filter((r) => r.reported)) {
        updates.push({ type: r.actuator.condition, status: r.ok && r.requeue === undefined ? "True" : "False", reason: r.reason, message: r.message || (r.ok ? "converged" : "failed"), observedGeneration: generation });
      }
      const notReady = updates.filter((u) => u.status !== "True");
      updates.push(notReady.length === 0
        ? { type: READY, status: "True", reason: "Converged", message: "every part of the service matches its spec", observedGeneration: generation }
        : { type: READY, status: "False", reason: notReady[0]?.reason ?? "NotConverged", message: `not converged: ${notReady.map((u) => u.type).join(", ")}`, observedGeneration: generation });
    }
    await this.#writeStatus(item.id, generation, updates, item.specProblem === undefined);

    if (item.specProblem !== undefined) {
      logger.event("RECONCILE_FAILED", { serviceId: item.id, generation, reason: "InvalidSpec", terminal: true }, item.specProblem);
      return { kind: "terminal" };
    }
    if (failed.length === 0 && requeue?.kind === "after") {
      const waiting = item.results.filter((r) => r.requeue !== undefined);
      logger.event("RECONCILE_DONE", { serviceId: item.id, generation, converged: false, requeueAfterMs: requeue.ms, reasons: waiting.map((r) => r.reason) }, `not converged yet: ${waiting.map((r) => r.message).join("; ")}`);
      return requeue;
    }
    if (failed.length === 0) {
      const ms = item.startedAt === undefined ? undefined : Math.round(performance.now() - item.startedAt);
      logger.event("RECONCILE_DONE", { serviceId: item.id, generation, ms, applied: item.results.filter((r) => r.applied).map((r) => r.actuator.id) }, ms === undefined ? undefined : `converged in ${ms} ms`);
      return { kind: "done" };
    }
    logger.event("RECONCILE_FAILED", { serviceId: item.id, generation, reasons: failed.map((r) => r.reason), terminal: failed.every((r) => r.terminal) });
    return failed.every((r) => r.terminal) ? { kind: "terminal" } : { kind: "retry" };
  }

  /** Writes a new service's first status (Ready: Unknown) unless it has one. */
  async #firstStatus(id: string): Promise<void> {
    if (this.statuses.has(id)) return;
    await this.#writeStatus(id, 0, [{ type: READY, status: "Unknown", reason: "Reconciling", message: "the first reconcile is under way", observedGeneration: 0 }], true);
  }

  async #writeStatus(id: string, generation: number, updates: readonly ConditionUpdate[], replace: boolean): Promise<void> {
    const previous = this.statuses.get(id);
    const now = this.#deps.now().toISOString();
    const conditions = mergeConditions(previous?.conditions ?? [], updates, now, replace);
    const next: ServiceStatus = { schemaVersion: 1, id, observedGeneration: generation, conditions, updatedAt: now };
    if (previous && previous.observedGeneration === next.observedGeneration && JSON.stringify(previous.conditions) === JSON.stringify(next.conditions)) return;
    await this.#deps.store.writeJson(`status/${id}.json`, ServiceStatus, next);
    this.statuses.set(id, next);
  }
}
