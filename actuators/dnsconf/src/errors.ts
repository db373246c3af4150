import { codedErrors } from "@coyote/log";

/**
 * The catalogue of the DNS actuator's own coded errors (docs/CONTRIBUTING.md, "Conventions"). A
 * failed reconcile reaches the minion as an `ActuatorError`; these are the errors of the helpers
 * the other actuators call (the DKIM file path, the wait for a DNS-01 record).
 */
export const DNSCONF_ERRORS = {
  DNSCONF_ERR_NOT_A_DOMAIN: "the name given is not a domain name",
  DNSCONF_ERR_TXT_NOT_SERVED: "the dns server does not serve the txt record in time",
} as const;

/** A code from {@link DNSCONF_ERRORS}. */
export type DnsconfErrorCode = keyof typeof DNSCONF_ERRORS;

/** An error of the DNS actuator's helpers, with its code and cause. */
export class DnsconfError extends codedErrors("DnsconfError", DNSCONF_ERRORS) {}
