import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the certificate actuator's own coded errors (docs/CONTRIBUTING.md,
 * "Conventions"). A failed order is kept in the certificate's attempts and retried with backoff;
 * these codes tell its causes apart, and the errors of the local CA from them.
 */
export const SNICKERS_ERRORS = catalogue;

/** A code from {@link SNICKERS_ERRORS}. */
export type SnickersErrorCode = keyof typeof SNICKERS_ERRORS;

/** An error of the certificate actuator, with its code and cause. */
export class SnickersError extends codedErrors("SnickersError", SNICKERS_ERRORS) {}
