/**
 * One step of the reconcile loop (docs/ARCHITECTURE.md, "The reconcile loop"): one actuator, one
 * service. The minion's batches (`Reconciler`) and the actuators' own tests both go through
 * {@link ReconcileLoop}, so that a test exercises the lock, the plan made again under it, the
 * commit journal and the commit exactly as the minion runs them.
 */
import { isRequeue, type Actuator, type ActuatorContext, type Plan, type Requeue, type Target } from "./index.ts";
import { CommitJournal, type Journal } from "./journal.ts";
import { unmetError, unmetOf } from "./unmet.ts";

/** Runs functions one at a time, in call order: the lock that every apply of a loop takes. */
export class ApplyLock {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every earlier call has settled, and resolves (or rejects) as it does. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** What one step did. */
export interface StepResult<Step = unknown> {
  /** Whether `apply` ran (the plan had steps). */
  readonly changed: boolean;
  /** The plan made under the lock (or, when the first look found nothing to do, that one). */
  readonly plan: Plan<Step>;
  /** Set when the apply asked to be called again: not converged, and not failed either. */
  readonly requeue?: Requeue;
}

/** What a {@link ReconcileLoop} is made of. */
export interface ReconcileLoopOptions {
  /** Where owed commits are recorded before each apply. */
  readonly journal: Journal;
  /** The lock applies take; a loop of its own by default. */
  readonly lock?: ApplyLock;
}

/**
 * The reconcile loop's steps: observe and plan, then (only when the plan has steps) take the lock,
 * observe and plan again under it, record the owed commit, apply; and later commit once.
 */
export class ReconcileLoop {
  /** Where owed commits are recorded. */
  readonly journal: Journal;
  /** The one lock every apply of this loop takes. */
  readonly lock: ApplyLock;

  /** Makes a loop over a journal (and a lock, when several loops must share one). */
  constructor(options: ReconcileLoopOptions) {
    this.journal = options.journal;
    this.lock = options.lock ?? new ApplyLock();
  }

  /**
   * Converges one actuator for one service, without committing. The first observe and plan run
   * outside the lock: a converged service costs only reads and waits for no one. A plan with
   * steps is made again under the lock, so that two services never act on what the other is
   * changing (two claiming one domain, say).
   * @param beforeApply runs under the lock, after the plan and before the journal and the apply
   *   (the minion writes a new service's first status there).
   * @returns whether anything was applied, the plan, and the apply's {@link Requeue} when it asked for one.
   * @throws whatever observe, plan or apply throws (an ActuatorError for a known failure), and a
   *   terminal ActuatorError naming what the plan leaves unmet, once the rest is applied.
   */
  async step<O, S>(actuator: Actuator<O, S>, target: Target, context: ActuatorContext, beforeApply?: () => Promise<void>): Promise<StepResult<S>> {
    const first = actuator.plan(target, await actuator.observe(target, context), context.server);
    if (first.steps.length === 0) return settled({ changed: false, plan: first });
    return this.lock.run(async () => {
      const plan = actuator.plan(target, await actuator.observe(target, context), context.server);
      if (plan.steps.length === 0) return settled({ changed: false, plan });
      await beforeApply?.();
      // Recorded before the apply: a kill after it must still end in a commit.
      await this.journal.owe(actuator.id);
      const returned = await actuator.apply(plan, target, context);
      return settled(isRequeue(returned) ? { changed: true, plan, requeue: returned } : { changed: true, plan });
    });
  }

  /**
   * Commits one actuator (reloads what it applied) and records in the journal that nothing is
   * owed any more. A failed commit stays owed.
   */
  async commit(actuator: Actuator, context: ActuatorContext): Promise<void> {
    await actuator.commit?.(context);
    await this.journal.paid(actuator.id);
  }
}

/**
 * A step's result, or, when its plan leaves part of the spec undone ({@link unmetOf}), the
 * terminal failure that reports it: after the rest was applied, and on every later pass, when
 * there is nothing left to apply, so that the condition keeps saying what is wrong.
 */
function settled<S>(result: StepResult<S>): StepResult<S> {
  const unmet = unmetOf(result.plan);
  if (unmet !== undefined) throw unmetError(unmet);
  return result;
}

/**
 * Drives one actuator for one service through the loop the minion runs ({@link ReconcileLoop.step}):
 * observe, plan, and under the lock observe, plan, journal and apply. It does not commit; call
 * {@link ReconcileLoop.commit} (or the actuator's `commit`) for that.
 * @param loop the loop to go through; by default one with its own lock and the commit journal
 *   kept in the context's state folder, as the minion keeps it.
 * @returns the plan, whether anything was applied, and the apply's {@link Requeue} when it asked for one.
 */
export async function converge<O, S>(actuator: Actuator<O, S>, target: Target, context: ActuatorContext, loop?: ReconcileLoop): Promise<StepResult<S>> {
  return (loop ?? (await loopFor(context.stateDir))).step(actuator, target, context);
}

/**
 * Commits one actuator through the loop the minion runs ({@link ReconcileLoop.commit}): the
 * actuator's `commit`, then its entry in the commit journal crossed off.
 * @param loop the loop to go through; by default one over the journal in the context's state folder.
 */
export async function commitActuator(actuator: Actuator, context: ActuatorContext, loop?: ReconcileLoop): Promise<void> {
  await (loop ?? (await loopFor(context.stateDir))).commit(actuator, context);
}

/** The loop of a state folder, with its journal loaded. */
export async function loopFor(stateDir: string): Promise<ReconcileLoop> {
  const journal = new CommitJournal(stateDir);
  await journal.load();
  return new ReconcileLoop({ journal });
}
