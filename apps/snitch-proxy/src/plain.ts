// snitch-proxy's plain HTTP listener: ACME HTTP-01 challenges, the local CA's certificate and CRL,
// and a redirect to HTTPS for everything else. node:http is enough here: nothing is proxied.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server as HttpServer } from "node:http";
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { requestIdFrom, type CoyoteLogger } from "@coyote/log";
import type { ProxyRuntimePaths } from "@coyote/spec";
import type { AddressLimit } from "./address-limit.ts";
import { requestHost } from "./headers.ts";
import { errorHeaders, errorPage } from "./pages.ts";
import type { TrafficStats } from "./stats.ts";
import { serveWellKnown } from "./well-known.ts";

const ACME_PREFIX = "/.well-known/acme-challenge/";
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** How the plain HTTP listener is made. */
export interface PlainOptions {
  /** The proxy's runtime folder (the HTTP-01 answers and the local CA's published files). */
  readonly paths: ProxyRuntimePaths;
  /** The HTTPS port the world sees, for redirects (it may move while the server runs). */
  readonly publicHttpsPort: () => number;
  readonly logger: CoyoteLogger;
  readonly stats: TrafficStats;
  /** The per-address count shared with the TLS side. */
  readonly perAddress: AddressLimit;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly checkingIntervalMs: number;
}

/** Makes the plain HTTP server (not bound yet). */
export function createPlainServer(options: PlainOptions): HttpServer {
  const { paths, publicHttpsPort, logger, stats, perAddress } = options;
  const plain = createHttpServer({ maxHeaderSize: options.maxHeaderBytes, headersTimeout: options.headersTimeoutMs, requestTimeout: 30_000, connectionsCheckingInterval: options.checkingIntervalMs }, (req, res) => {
    void answerPlain(req, res, paths, publicHttpsPort(), logger);
  });
  // The same per-address count as the TLS side: one address's connections to both ports together.
  plain.on("connection", (socket: Socket) => {
    if (perAddress.admit(socket)) return;
    stats.counters.connectionsRefused++;
    socket.destroy();
  });
  plain.setTimeout(options.idleTimeoutMs);
  return plain;
}

async function answerPlain(req: IncomingMessage, res: ServerResponse, paths: ProxyRuntimePaths, httpsPort: number, logger: CoyoteLogger): Promise<void> {
  const requestId = requestIdFrom(req.headers);
  const url = req.url ?? "/";
  // Plain HTTP on purpose: a CRL is fetched before anything can be verified (RFC 5280 §4.2.1.13).
  const send = (status: number, headers: Record<string, string | number>, body: Buffer) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  if (serveWellKnown(paths.ca, logger, { method: req.method ?? "GET", url, requestId }, send, () => res.destroy())) return;
  if (url.startsWith(ACME_PREFIX)) {
    const token = url.slice(ACME_PREFIX.length);
    if (TOKEN.test(token)) {
      try {
        const body = await readFile(join(paths.challenges, token), "utf8");
        res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
        res.end(body);
        logger.event("RESPONSE_SENT", { requestId, what: "acme-challenge", token, status: 200 });
        return;
      } catch {
        // Unknown token: a 404 like any other.
      }
    }
    res.writeHead(404, { "content-type": "text/plain", "content-length": 10 });
    res.end("not found\n");
    return;
  }
  const host = requestHost(req.headers);
  if (host === undefined) {
    const body = errorPage(400, requestId);
    res.writeHead(400, errorHeaders(body, requestId));
    res.end(body);
    return;
  }
  const location = `https://${host}${httpsPort === 443 ? "" : `:${httpsPort}`}${url.startsWith("/") ? url : "/"}`;
  res.writeHead(308, { location, "content-length": 0, "x-request-id": requestId });
  res.end();
}
