import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the minion's coded errors (docs/CONTRIBUTING.md, "Conventions"). A failed
 * reconcile is an actuator's `ActuatorError` and shows as a condition; these are the minion's own.
 */
export const MINION_ERRORS = catalogue;

/** A code from {@link MINION_ERRORS}. */
export type MinionErrorCode = keyof typeof MINION_ERRORS;

/** An error of the minion itself, with its code and cause. */
export class MinionError extends codedErrors("MinionError", MINION_ERRORS) {}
