import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of `@coyote/actuator`'s coded errors (docs/CONTRIBUTING.md, "Conventions"): the
 * code says whether the minion retries; the error's `reason` says why, as the condition shows it.
 */
export const ACTUATOR_ERRORS = catalogue;

/** A code from {@link ACTUATOR_ERRORS}. */
export type ActuatorErrorCode = keyof typeof ACTUATOR_ERRORS;

/**
 * An actuator failure. `terminal` means retrying cannot help (the spec asks for something
 * impossible, a provider said 4xx): the minion reports it and waits for the spec to change.
 * Anything else is retried with backoff. `reason` becomes the condition's reason.
 */
export class ActuatorError extends codedErrors("ActuatorError", ACTUATOR_ERRORS) {
  /** Whether retrying could help. */
  readonly terminal: boolean;
  /** A PascalCase word for the condition's reason, e.g. `InvalidZone`. */
  readonly reason: string;

  /**
   * Makes the error.
   * @param reason a PascalCase word for the condition's reason.
   * @param message a lowercase message with a context prefix.
   * @param options `terminal` (default false) and the `cause`.
   */
  constructor(reason: string, message: string, options: { terminal?: boolean; cause?: unknown } = {}) {
    const terminal = options.terminal ?? false;
    super(terminal ? "ACTUATOR_ERR_TERMINAL" : "ACTUATOR_ERR_FAILED", message, options);
    this.reason = reason;
    this.terminal = terminal;
  }
}
