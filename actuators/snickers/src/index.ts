/**
 * `@coyote/actuator-snickers`: proxy routes and TLS certificates for the web hostnames of hosted
 * services (DESIGN.md). It writes `proxy/routes.json` and `proxy/certs/`, which snitch-proxy serves.
 */
export { LocalCa, newKeyPair, type IssuedCertificate } from "./local-ca.ts";
export { createCertificate, keyIdentifier, type CertificateRequest } from "./x509.ts";
