import { codedErrors } from "@coyote/log";

/**
 * The catalogue of snitch-proxy's coded errors (docs/CONTRIBUTING.md, "Conventions"). The HTTP/1.1
 * engine's own refusals keep their lighter classes, made on the hot path: `WireError` (a message
 * head refused, with the status for the client) and `OriginError` (an upstream request failed,
 * with a socket code or one of its `UPSTREAM_*` codes), both in `http1/`.
 */
export const SNITCH_PROXY_ERRORS = {
  SNITCH_ERR_NO_CERTIFICATE: "no certificate for the name the client asked for",
  SNITCH_ERR_CERT_INVALID: "a certificate file holds no usable key and certificate",
  SNITCH_ERR_LIMIT_INVALID: "a connection limit is not a positive whole number",
  SNITCH_ERR_WORKER_START: "a proxy worker did not start",
  SNITCH_ERR_WORKER_MOVE: "a proxy worker did not move to the new listen addresses",
  SNITCH_ERR_LISTEN_MOVE: "moving the listeners failed; the component stops so that it starts again on the new addresses",
} as const;

/** A code from {@link SNITCH_PROXY_ERRORS}. */
export type SnitchProxyErrorCode = keyof typeof SNITCH_PROXY_ERRORS;

/** An error of snitch-proxy outside the HTTP/1.1 engine, with its code and cause. */
export class SnitchProxyError extends codedErrors("SnitchProxyError", SNITCH_PROXY_ERRORS) {}
