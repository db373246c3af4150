import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the crm's coded errors (docs/CONTRIBUTING.md, "Conventions"): what a page's
 * action, a supervisor or an operator tells apart. A form's own validation problems are not
 * errors: they go back to the form, field by field.
 */
export const CRM_ERRORS = catalogue;

/** A code from {@link CRM_ERRORS}. */
export type CrmErrorCode = keyof typeof CRM_ERRORS;

/** An error of the crm, with its code and cause. */
export class CrmError extends codedErrors("CrmError", CRM_ERRORS) {}
