/**
 * What a plan cannot do. A spec may be partly servable: one user's password hash is unusable, one
 * domain is another service's. The plan then lists the steps for everything else and names what
 * it leaves undone in `unmet`; the minion applies the steps (if any) and reports the actuator's
 * condition as False with the unmet reason, terminally: it looks again when the spec or the world
 * changes. A plan with no steps and an `unmet` is as converged as the spec allows: nothing is
 * applied, and the condition still says what is wrong.
 */
import { ActuatorError } from "./errors.ts";
import type { Plan } from "./index.ts";

/** Why part of a spec cannot be served. */
export interface Unmet {
  /** A PascalCase word for the condition's reason, e.g. `DomainTaken`. */
  readonly reason: string;
  /** What is wrong, in lowercase words with a context prefix, naming the offending entries. */
  readonly message: string;
}

/** A plan that may leave part of the spec undone ({@link Unmet}). */
export interface PartialPlan<Step = unknown> extends Plan<Step> {
  /** What the steps leave undone because the spec asks for something that cannot be done. */
  readonly unmet?: Unmet;
}

/**
 * The unmet part of a plan, when it names one. Plugins' plans are not type-checked, so the shape
 * is checked here.
 */
export function unmetOf(plan: Plan): Unmet | undefined {
  if (!("unmet" in plan)) return undefined;
  const unmet: unknown = plan.unmet;
  if (typeof unmet !== "object" || unmet === null) return undefined;
  const { reason, message } = unmet as Record<string, unknown>;
  return typeof reason === "string" && typeof message === "string" ? { reason, message } : undefined;
}

/** The terminal failure an unmet plan is reported as (its reason becomes the condition's reason). */
export function unmetError(unmet: Unmet): ActuatorError {
  return new ActuatorError(unmet.reason, unmet.message, { terminal: true });
}
