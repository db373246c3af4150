import { codedErrors } from "@coyote/log";
import catalogue from "./errors.json" with { type: "json" };

/**
 * The catalogue of snitch-proxy's coded errors (docs/CONTRIBUTING.md, "Conventions"). The HTTP/1.1
 * engine's own refusals keep their lighter classes, made on the hot path: `WireError` (a message
 * head refused, with the status for the client) and `OriginError` (an upstream request failed,
 * with a socket code or one of its `UPSTREAM_*` codes), both in `http1/`.
 */
export const SNITCH_PROXY_ERRORS = catalogue;

/** A code from {@link SNITCH_PROXY_ERRORS}. */
export type SnitchProxyErrorCode = keyof typeof SNITCH_PROXY_ERRORS;

/** An error of snitch-proxy outside the HTTP/1.1 engine, with its code and cause. */
export class SnitchProxyError extends codedErrors("SnitchProxyError", SNITCH_PROXY_ERRORS) {}
