// What snitch-proxy's upstream client (origin.ts) promises its callers: the request, the handler
// that hears the answer, the errors, and the checks every upstream answer passes before a client
// sees any of it.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { BodySource } from "../exchange.ts";
import { WireError, type ResponseHead } from "./wire.ts";

/** Header fields in one response head; more is a 502 (a client's own limit is far lower). */
const MAX_RESPONSE_FIELDS = 256;

/** Why an upstream request failed. */
export class OriginError extends Error {
  /** A socket error code (ECONNREFUSED, ECONNRESET, ...) or one of snitch-proxy's own. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OriginError";
    this.code = code;
  }
}

/** The error codes of the client itself. */
export const ORIGIN_TIMEOUT = "UPSTREAM_TIMEOUT";
export const ORIGIN_PROTOCOL = "UPSTREAM_PROTOCOL";
export const ORIGIN_RESET = "UPSTREAM_RESET";
/** Handing the upstream's answer to the client threw: a bug or an answer the client side refused. */
export const ORIGIN_FAULT = "UPSTREAM_FAULT";

/** A request to send upstream. */
export interface OriginRequest {
  readonly method: string;
  readonly path: string;
  /** Sent as they are (hop-by-hop ones already removed); a body without Content-Length goes chunked. */
  readonly headers: OutgoingHttpHeaders;
  readonly body: BodySource | null;
}

/** What a request's caller hears back. */
export interface OriginHandler {
  onHead(status: number, headers: IncomingHttpHeaders): void;
  /** Part of the body; false pauses the upstream until `OriginCall.resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(error: OriginError): void;
}

/** A request in flight. */
export interface OriginCall {
  resume(): void;
  /** Gives the request up (the client went away): its connection is closed, the handler hears nothing more. */
  abort(): void;
}

/** Where to connect. */
export interface OriginAddress {
  readonly host: string;
  readonly port: number;
}

/** Limits of the client. */
export interface OriginOptions {
  /** Time from sending a request to the end of the response's head, ms. */
  readonly headersTimeoutMs: number;
  /** An idle pooled connection is closed after this, ms; 4 s (below the usual backend's 5 s). */
  readonly keepAliveMs?: number;
  /** Idle connections kept per address; 256. */
  readonly maxIdlePerAddress?: number;
  /** Addresses with a pool; the least recently used pool is closed past this. 1024. */
  readonly maxAddresses?: number;
  /**
   * Hears an exception raised while an upstream's answer was handled (one connection's fault:
   * that connection is closed, the others go on); nothing by default.
   */
  readonly onFault?: (error: unknown, where: string) => void;
}

/**
 * Refuses a response head no client may be given: a status outside 100-599 (HTTP/2 cannot even
 * express one, and node:http2 throws on it), or more fields than any client accepts. Names are
 * tokens and values free of control characters already (parseResponseHead).
 * @throws WireError naming what is wrong.
 */
export function checkResponseHead(head: ResponseHead): void {
  if (head.status < 100 || head.status > 599) throw new WireError(400, `the upstream's answer has the status ${String(head.status)}, outside 100-599`);
  let fields = 0;
  for (const name in head.headers) {
    const value = head.headers[name];
    fields += Array.isArray(value) ? value.length : 1;
  }
  if (fields > MAX_RESPONSE_FIELDS) throw new WireError(400, `the upstream's answer has more than ${String(MAX_RESPONSE_FIELDS)} header fields`);
}
