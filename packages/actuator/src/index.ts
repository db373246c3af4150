/**
 * `@coyote/actuator`: the contract between the minion and the actuators that change the machine
 * (docs/CONTRIBUTING.md, "Adding an actuator").
 *
 * The minion reconciles services in batches, through the loop kept here (`reconcile.ts`,
 * `reconciler.ts`). For each actuator, in the bundled order, it calls `observe` (read the world),
 * the pure `plan` (what must change so the world matches the spec), and `apply` only when the
 * plan has steps. After a batch of services it calls `commit` once on every actuator that applied
 * something, which is where daemons are reloaded: a thousand changed services cost one reload,
 * not a thousand.
 */
import type { CoyoteLogger } from "@coyote/log";
import type { ServerSpec, ServiceSpec } from "@coyote/spec";
import type { ActuatorStore } from "./actuator-store.ts";

export { actuatorStore, type ActuatorStore } from "./actuator-store.ts";

/** What every actuator call is given. */
export interface ActuatorContext {
  /** The state folder (`COYOTE_STATE`). */
  readonly stateDir: string;
  /** The state store as actuators see it: runtime files and secrets, never specs ({@link ActuatorStore}). */
  readonly store: ActuatorStore;
  /** The minion's logger, bound to the actuator and the service being reconciled. */
  readonly logger: CoyoteLogger;
  /** Aborted when the minion stops; long operations should give up. */
  readonly signal: AbortSignal;
  /** The server spec (its defaults when none has been written yet). */
  readonly server: ServerSpec;
}

/** The service one reconcile is about. */
export interface Target {
  /** The service id. */
  readonly id: string;
  /**
   * The desired spec, or undefined when the service was deleted: the actuator then removes what
   * it made for that id, and nothing else.
   */
  readonly spec: ServiceSpec | undefined;
}

/** What an actuator means to do. No steps: the world already matches the spec. */
export interface Plan<Step = unknown> {
  /** The changes, in order; empty when converged. */
  readonly steps: readonly Step[];
  /** For people: one short line per step, for logs and `coyote status`. */
  readonly describe: readonly string[];
}


/**
 * What an `apply` returns when the service is not converged yet and nothing failed: a certificate
 * order still under way, a retry time kept on disk. The minion reports the condition as False
 * with this reason and message, and reconciles the service again after `afterMs` (a level-based
 * "requeue after", as controller-runtime's Result). Exceptions are for failures only.
 */
export interface Requeue {
  /** How long to wait before the next reconcile of this service, in milliseconds. */
  readonly afterMs: number;
  /** A PascalCase word for the condition's reason, e.g. `CertificatePending`. */
  readonly reason: string;
  /** Where things stand, in lowercase words with a context prefix. */
  readonly message: string;
}

/** Makes a {@link Requeue}: call again after `afterMs` (at least 1 ms, at most a day). */
export function requeueAfter(afterMs: number, reason: string, message: string): Requeue {
  return { afterMs: Math.min(Math.max(1, Math.ceil(afterMs)), 86_400_000), reason, message };
}

/** Tells whether an apply's result asks to be called again (a {@link Requeue}). */
export function isRequeue(value: unknown): value is Requeue {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.afterMs === "number" && Number.isFinite(r.afterMs) && typeof r.reason === "string" && typeof r.message === "string";
}

/**
 * One actuator. Its constructor (or factory) has no side effects; `observe` only reads; `plan` is
 * pure (same input, same plan, no I/O); `apply` and `commit` may be interrupted at any point
 * (SIGKILL) and run again: both must be idempotent.
 */
export interface Actuator<Observed = unknown, Step = unknown> {
  /** A namespaced id, e.g. `actuator.dnsconf.knot`. */
  readonly id: string;
  /** The condition type this actuator reports on each service, e.g. `DnsReady`. */
  readonly condition: string;
  /**
   * Whether this actuator's condition means anything for a service (a service without mail has
   * no `MailReady`). The actuator still runs for every service, so that what it made for a spec
   * that dropped a feature is removed. Without this method, every service gets the condition.
   */
  appliesTo?(spec: ServiceSpec): boolean;
  /** Reads what the world looks like for this service. */
  observe(target: Target, context: ActuatorContext): Promise<Observed>;
  /**
   * Decides what must change. Pure: no I/O, no clock, no randomness (keys and serials that need
   * them are made in `apply`, or observed).
   * @throws ActuatorError with `terminal: true` when the spec cannot be served (retrying would not help).
   */
  plan(target: Target, observed: Observed, server: ServerSpec): Plan<Step>;
  /**
   * Carries out a plan with steps. Must tolerate a half-finished earlier apply. Resolves to a
   * {@link Requeue} when the service is not converged yet through no failure (work under way
   * elsewhere, a retry time not reached): the minion reconciles it again after that long.
   */
  // `void` stays in the union: an apply with nothing to report is a plain `async apply() {}`.
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
  apply(plan: Plan<Step>, target: Target, context: ActuatorContext): Promise<void | Requeue>;
  /**
   * Makes applied changes live (reload a daemon, rebuild a combined map), once per batch. Called
   * after a batch in which `apply` ran, and at minion start when an earlier run was killed between
   * an apply and its commit.
   */
  commit?(context: ActuatorContext): Promise<void>;
  /**
   * Starts what the actuator keeps running (the built-in DNS server, say), at minion start.
   * Resolves to a handle that stops it.
   */
  start?(context: ActuatorContext): Promise<{ stop(): Promise<void> }>;
}

/** Where a plugin actuator is loaded from and what its factory gets. */
export interface ActuatorFactoryOptions {
  /** The state folder. */
  readonly stateDir: string;
}

/**
 * What a plugin module exports as `createActuator` (docs/ARCHITECTURE.md: a plugin folder rescanned without
 * restarting the minion). It must not have side effects.
 */
export type ActuatorFactory = (options: ActuatorFactoryOptions) => Actuator;

export { ACTUATOR_ERRORS, ActuatorError, type ActuatorErrorCode } from "./errors.ts";

/** Tells whether a value looks like an actuator (for plugins, whose types are not checked). */
export function isActuator(value: unknown): value is Actuator {
  if (typeof value !== "object" || value === null) return false;
  const a = value as Record<string, unknown>;
  return typeof a.id === "string" && /^actuator\.[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(a.id) && typeof a.condition === "string"
    && typeof a.observe === "function" && typeof a.plan === "function" && typeof a.apply === "function";
}

export { DirectoryCache, FileCache, memoizeByIdentity } from "./directory-cache.ts";
export { LiveMemo } from "./live-memo.ts";
export { runProgram, type ProgramOptions, type ProgramOutcome } from "./program.ts";
export { errorText, observeFragment, readTextIfExists } from "./files.ts";
export { ApplyLock, ReconcileLoop, commitActuator, converge, loopFor, type ReconcileLoopOptions, type StepResult } from "./reconcile.ts";
export { READY, Reconciler, SPEC_VALID, type Outcome, type ReconcilerDeps } from "./reconciler.ts";
export { CommitJournal, type Journal } from "./journal.ts";
export { conditionOf, mergeConditions, type ConditionUpdate } from "./conditions.ts";
export type { ObservedFragment } from "./files.ts";
