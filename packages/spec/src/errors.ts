import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of coded errors of `@coyote/spec` (docs/CONTRIBUTING.md, "Conventions"): every
 * error carries a stable code, a lowercase message with a context prefix, and keeps its cause.
 */
export const SPEC_ERRORS = catalogue;

/** A code from {@link SPEC_ERRORS}. */
export type SpecErrorCode = keyof typeof SPEC_ERRORS;

/** One problem found in a file: where (a field path like `domains[0].name`) and what. */
export interface FieldIssue {
  /** The field's path inside the document, `(root)` for the document itself. */
  readonly field: string;
  /** What is wrong with it, in lowercase words. */
  readonly message: string;
}

/**
 * The base class of every error `@coyote/spec` throws: its `code` is one of {@link SPEC_ERRORS},
 * its message lowercase with a context prefix, its `cause` kept for the log.
 */
export class CoyoteError extends codedErrors("CoyoteError", SPEC_ERRORS) {}

/**
 * A file that could not be parsed or validated. The message names the file and every field that
 * is wrong, e.g. `specs/services/blog.json: domains[0].name: not a valid domain name`.
 */
export class ContractError extends CoyoteError {
  /** The file (or other source) the document came from. */
  readonly file: string;
  /** Every problem found, in document order. */
  readonly issues: readonly FieldIssue[];

  /**
   * Makes the error from the issues found in one file.
   * @param code SPEC_ERR_PARSE, SPEC_ERR_INVALID or SPEC_ERR_UNKNOWN_KIND.
   * @param file the file the document came from.
   * @param issues what is wrong, at least one.
   * @param options the cause, kept for the log.
   */
  constructor(code: SpecErrorCode, file: string, issues: readonly FieldIssue[], options?: { cause?: unknown }) {
    super(code, `${file}: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`, options);
    this.name = "ContractError";
    this.file = file;
    this.issues = issues;
  }
}
