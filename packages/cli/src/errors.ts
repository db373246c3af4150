import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };
import { CoyoteError } from "@coyote/spec";

/**
 * The CLI's exit codes. Scripts may rely on them: 0 all is well, 1 an operation failed, 2 the
 * command line is wrong, 3 an input file is invalid, 4 the thing named does not exist, 5 the state
 * store is busy, 6 something the command needs is missing from the machine.
 */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  INVALID: 3,
  NOT_FOUND: 4,
  BUSY: 5,
  MISSING: 6,
} as const;

/** An exit code from {@link EXIT}. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The catalogue of the CLI's coded errors (docs/CONTRIBUTING.md, "Conventions"): one code for each
 * exit code a failed command ends with.
 */
export const CLI_ERRORS = catalogue;

/** A code from {@link CLI_ERRORS}. */
export type CliErrorCode = keyof typeof CLI_ERRORS;

/** The code of each exit code; an error that asks for exit 0 is still a failure to a program. */
const CODE_OF_EXIT: Readonly<Record<ExitCode, CliErrorCode>> = {
  [EXIT.OK]: "CLI_ERR_FAILED",
  [EXIT.FAILED]: "CLI_ERR_FAILED",
  [EXIT.USAGE]: "CLI_ERR_USAGE",
  [EXIT.INVALID]: "CLI_ERR_INVALID",
  [EXIT.NOT_FOUND]: "CLI_ERR_NOT_FOUND",
  [EXIT.BUSY]: "CLI_ERR_BUSY",
  [EXIT.MISSING]: "CLI_ERR_MISSING",
};

/** An error that ends a command with a message for people and a chosen exit code. */
export class CliError extends codedErrors("CliError", CLI_ERRORS) {
  /** The process exit code. */
  readonly exitCode: ExitCode;

  /**
   * Makes the error.
   * @param message what went wrong and, where it helps, how to fix it.
   * @param exitCode the exit code, {@link EXIT.FAILED} by default; it chooses the error's code.
   * @param options the cause.
   */
  constructor(message: string, exitCode: ExitCode = EXIT.FAILED, options?: { cause?: unknown }) {
    super(CODE_OF_EXIT[exitCode], message, options);
    this.exitCode = exitCode;
  }
}

/** The exit code for an error from `@coyote/spec`, by its code. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof CoyoteError) {
    switch (error.code) {
      case "SPEC_ERR_PARSE":
      case "SPEC_ERR_INVALID":
      case "SPEC_ERR_UNKNOWN_KIND":
        return EXIT.INVALID;
      case "SPEC_ERR_NOT_FOUND":
      case "STORE_ERR_UNKNOWN_REVISION":
        return EXIT.NOT_FOUND;
      case "STORE_ERR_LOCKED":
        return EXIT.BUSY;
      default:
        return EXIT.FAILED;
    }
  }
  return EXIT.FAILED;
}
