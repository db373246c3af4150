import { codedErrors } from "@coyote/log";

/**
 * The catalogue of the mail actuator's own coded errors (docs/CONTRIBUTING.md, "Conventions"). A
 * failed reconcile reaches the minion as an `ActuatorError` with one of these as its cause; a
 * damaged fragment is only logged, with its code.
 */
export const MAILCONF_ERRORS = {
  MAILCONF_ERR_FRAGMENT_INVALID: "a mail fragment is not the one its file name says",
  MAILCONF_ERR_DKIM_KEY_NOT_RSA: "the dkim key is not an rsa private key",
  MAILCONF_ERR_PROGRAM_KILLED: "a mail program was ended by a signal",
} as const;

/** A code from {@link MAILCONF_ERRORS}. */
export type MailconfErrorCode = keyof typeof MAILCONF_ERRORS;

/** An error of the mail actuator, with its code and cause. */
export class MailconfError extends codedErrors("MailconfError", MAILCONF_ERRORS) {}
