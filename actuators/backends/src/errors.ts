import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the backends actuator's own coded errors (docs/CONTRIBUTING.md, "Conventions").
 * A failed reconcile reaches the minion as an `ActuatorError`; these are the errors about the
 * files the actuator keeps, which the minion only logs.
 */
export const BACKENDS_ERRORS = catalogue;

/** A code from {@link BACKENDS_ERRORS}. */
export type BackendsErrorCode = keyof typeof BACKENDS_ERRORS;

/** An error of the backends actuator's files, with its code and cause. */
export class BackendsError extends codedErrors("BackendsError", BACKENDS_ERRORS) {}
