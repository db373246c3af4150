import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of the DNS actuator's own coded errors (docs/CONTRIBUTING.md, "Conventions"). A
 * failed reconcile reaches the minion as an `ActuatorError`; these are the errors of the helpers
 * the other actuators call (the DKIM file path, the wait for a DNS-01 record).
 */
export const DNSCONF_ERRORS = catalogue;

/** A code from {@link DNSCONF_ERRORS}. */
export type DnsconfErrorCode = keyof typeof DNSCONF_ERRORS;

/** An error of the DNS actuator's helpers, with its code and cause. */
export class DnsconfError extends codedErrors("DnsconfError", DNSCONF_ERRORS) {}
