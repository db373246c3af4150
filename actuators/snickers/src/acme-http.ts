/**
 * The HTTP transport of acme-client's shared axios instance, with a deadline and a size cap on
 * every request. acme-client (5.x) sets no timeout; its retry interceptor also turns a request
 * that got no answer into a TypeError about `config`, hiding the cause. This adapter answers
 * axios's adapter contract itself over node:https, so that each request has the sooner of its
 * own deadline and its order's, and a request that fails without an answer is reported as such.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { request as httpRequest, type Agent as HttpAgent, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import * as acme from "acme-client";
import { SnickersError } from "./errors.ts";

/** The deadline of one request to the CA when the order names none. */
export const ACME_CALL_TIMEOUT_MS = 20_000;
/** The most a response from the CA may weigh (a certificate chain is a few KiB). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The deadline of the order (or ARI question) a request to the CA belongs to. */
export interface CallScope {
  readonly signal: AbortSignal;
  readonly callTimeoutMs: number;
}

/**
 * acme-client has no per-order option for deadlines; the scope of the order a request belongs
 * to travels with it through async context, so concurrent orders each keep their own.
 */
export const callScope = new AsyncLocalStorage<CallScope>();

/** What this adapter reads of axios's request config (the rest passes through). */
interface AdapterConfig {
  readonly url?: string;
  readonly method?: string;
  readonly data?: unknown;
  readonly headers?: { toJSON?: () => Record<string, unknown> } & Record<string, unknown>;
  readonly httpsAgent?: HttpAgent;
  readonly httpAgent?: HttpAgent;
  readonly signal?: unknown;
  readonly validateStatus?: ((status: number) => boolean) | null;
}

/** What the adapter gives back to axios. */
interface AdapterResponse {
  data: string;
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  config: AdapterConfig;
  request: unknown;
}

/**
 * Why a request to the CA failed without an answer (`SNICKERS_ERR_ACME_TRANSPORT`); no `config`,
 * so acme-client passes it on rather than retrying it.
 */
export class AcmeTransportError extends SnickersError {
  /**
   * Makes the error.
   * @param message a lowercase message naming the request.
   * @param options the cause.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super("SNICKERS_ERR_ACME_TRANSPORT", message, options);
    this.name = "AcmeTransportError";
  }
}

function headersOf(config: AdapterConfig, body: Buffer | undefined): Record<string, string> {
  const raw = typeof config.headers?.toJSON === "function" ? config.headers.toJSON() : (config.headers ?? {});
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value === "string" || typeof value === "number") out[name] = String(value);
    else if (value === true) out[name] = "true";
  }
  if (body !== undefined) out["Content-Length"] = String(body.length);
  return out;
}

function bodyOf(data: unknown): Buffer | undefined {
  if (data === undefined || data === null) return undefined;
  if (typeof data === "string") return Buffer.from(data);
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(JSON.stringify(data));
}

/** One request under its deadline; resolves or rejects as axios's own adapter would. */
async function send(config: AdapterConfig): Promise<AdapterResponse> {
  const scope = callScope.getStore();
  const timeoutMs = scope?.callTimeoutMs ?? ACME_CALL_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signals = [deadline];
  if (scope) signals.push(scope.signal);
  if (config.signal instanceof AbortSignal) signals.push(config.signal);
  const signal = AbortSignal.any(signals);
  const url = new URL(config.url ?? "");
  const method = (config.method ?? "get").toUpperCase();
  const body = bodyOf(config.data);
  const secure = url.protocol === "https:";
  const agent = secure ? config.httpsAgent : config.httpAgent;
  const what = `${method} ${url.origin}${url.pathname}`;
  return new Promise<AdapterResponse>((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, { method, headers: headersOf(config, body), signal, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new AcmeTransportError(`${what}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on("error", () => undefined);
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        const response: AdapterResponse = { data: Buffer.concat(chunks).toString("utf8"), status, statusText: res.statusMessage ?? "", headers: res.headers, config, request: req };
        // As axios's settle: a status the config refuses rejects, with the response attached.
        if (!config.validateStatus || config.validateStatus(status)) resolve(response);
        else reject(Object.assign(new Error(`${what}: status ${status}`), { config, response, request: req }));
      });
    });
    req.on("error", (error) => {
      if (error instanceof AcmeTransportError) reject(error);
      else if (deadline.aborted) reject(new AcmeTransportError(`a request to the CA got no answer within ${Math.round(timeoutMs / 100) / 10} s (${what})`, { cause: error }));
      else if (signal.aborted) reject(new AcmeTransportError(`${what}: cancelled`, { cause: signal.reason }));
      else reject(new AcmeTransportError(`${what}: ${error.message}`, { cause: error }));
    });
    req.end(body);
  });
}

let installed = false;

/** Puts the adapter under acme-client's axios instance, once per process. */
export function installAcmeTransport(): void {
  if (installed) return;
  installed = true;
  acme.axios.defaults.adapter = send as unknown as typeof acme.axios.defaults.adapter;
}
