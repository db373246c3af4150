import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the mail actuator's own coded errors (docs/CONTRIBUTING.md, "Conventions"). A
 * failed reconcile reaches the minion as an `ActuatorError` with one of these as its cause; a
 * damaged fragment is only logged, with its code.
 */
export const MAILCONF_ERRORS = catalogue;

/** A code from {@link MAILCONF_ERRORS}. */
export type MailconfErrorCode = keyof typeof MAILCONF_ERRORS;

/** An error of the mail actuator, with its code and cause. */
export class MailconfError extends codedErrors("MailconfError", MAILCONF_ERRORS) {}
