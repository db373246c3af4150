/**
 * The catalogue of docker-activator's coded errors (docs/CONTRIBUTING.md, "Conventions"). The wake
 * API answers with these codes and their HTTP status.
 */
export const ACTIVATOR_ERRORS = {
  UNIT_UNKNOWN: { status: 404, summary: "no unit with that id in activator/units.json" },
  WAKE_FAILED: { status: 503, summary: "the unit cannot be started" },
  WAKE_TIMEOUT: { status: 504, summary: "the unit did not pass its readiness probe in time" },
  BAD_REQUEST: { status: 400, summary: "the request body is not what the API takes" },
  NOT_FOUND: { status: 404, summary: "no such endpoint" },
  ENGINE_UNAVAILABLE: { status: 503, summary: "the Docker engine the server spec asks for does not answer" },
  SOCKET_IN_USE: { status: 500, summary: "another docker-activator answers on the control socket" },
} as const;

/** A code from {@link ACTIVATOR_ERRORS}. */
export type ActivatorErrorCode = keyof typeof ACTIVATOR_ERRORS;

/** An error of docker-activator with its code; the wake API sends it with the code's status. */
export class ActivatorFailure extends Error {
  /** The catalogue code. */
  readonly code: ActivatorErrorCode;

  /**
   * Makes the error.
   * @param code the catalogue code.
   * @param message a lowercase message with a context prefix, naming the unit.
   * @param options the cause, kept for the log.
   */
  constructor(code: ActivatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ActivatorFailure";
    this.code = code;
  }

  /** The HTTP status the wake API answers this error with. */
  get status(): number {
    return ACTIVATOR_ERRORS[this.code].status;
  }
}
