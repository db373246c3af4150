import { codedErrors } from "@coyote/log";

/**
 * The catalogue of the crm's coded errors (docs/CONTRIBUTING.md, "Conventions"): what a page's
 * action, a supervisor or an operator tells apart. A form's own validation problems are not
 * errors: they go back to the form, field by field.
 */
export const CRM_ERRORS = {
  CRM_ERR_NOT_BUILT: "the panel is not built",
  CRM_ERR_SETTING_REFUSED: "a settings change is refused for one field",
  CRM_ERR_ALREADY_DECIDED: "the coyote request was already decided",
  CRM_ERR_SERVICE_IDS_TAKEN: "every service id made from the domain is taken",
  CRM_ERR_SITE_WRITE: "the starter site could not be written",
} as const;

/** A code from {@link CRM_ERRORS}. */
export type CrmErrorCode = keyof typeof CRM_ERRORS;

/** An error of the crm, with its code and cause. */
export class CrmError extends codedErrors("CrmError", CRM_ERRORS) {}
