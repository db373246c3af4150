import { codedErrors } from "@coyote/log";

/**
 * The catalogue of the certificate actuator's own coded errors (docs/CONTRIBUTING.md,
 * "Conventions"). A failed order is kept in the certificate's attempts and retried with backoff;
 * these codes tell its causes apart, and the errors of the local CA from them.
 */
export const SNICKERS_ERRORS = {
  SNICKERS_ERR_ACME_TRANSPORT: "a request to the acme ca got no answer",
  SNICKERS_ERR_CA_ANSWER_INVALID: "the acme ca answered something that cannot be used",
  SNICKERS_ERR_ORDER_FAILED: "ordering a certificate from the acme ca failed",
  SNICKERS_ERR_LOCAL_CA_UNREADABLE: "the local ca cannot be loaded or made",
  SNICKERS_ERR_REVOCATIONS_FULL: "the local ca lists as many revoked certificates as it may",
  SNICKERS_ERR_INVALID_INPUT: "a name, certificate or number given is not valid",
} as const;

/** A code from {@link SNICKERS_ERRORS}. */
export type SnickersErrorCode = keyof typeof SNICKERS_ERRORS;

/** An error of the certificate actuator, with its code and cause. */
export class SnickersError extends codedErrors("SnickersError", SNICKERS_ERRORS) {}
