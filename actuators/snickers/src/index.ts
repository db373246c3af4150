/**
 * `@coyote/actuator-snickers`: proxy routes and TLS certificates for the web hostnames of hosted
 * services (docs/ARCHITECTURE.md). It writes `proxy/routes.json` and `proxy/certs/`, which snitch-proxy serves.
 */
export { createSnickersActuator, routesFor, renewalTime, backoffMs, snickersPaths, CertificateMeta, SNICKERS_ACTUATOR_ID, WEB_CONDITION, type SnickersObserved, type SnickersStep, type SnickersOptions } from "./actuator.ts";
export { ACME_CALL_TIMEOUT_MS, AcmeTransportError } from "./acme-http.ts";
export { SNICKERS_ERRORS, SnickersError, type SnickersErrorCode } from "./errors.ts";
export { AcmeIssuer, ariCertId, type AcmeSettings, type RenewalAdvice } from "./acme.ts";
export { LocalCa, newKeyPair, CRL_VALIDITY_MS, type IssuedCertificate } from "./local-ca.ts";
export { createCrl, REVOCATION_REASONS, type RevocationReason, type RevokedEntry } from "./crl.ts";
export { createCertificate, keyIdentifier, type CertificateRequest } from "./x509.ts";
