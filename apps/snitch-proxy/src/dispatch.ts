// Where a request goes once its head is read, whichever protocol carried it: the Host is checked
// against the connection's SNI name, the local CA's files are answered here, and the rest is
// routed by host and path prefix to a static folder or forwarded to its upstream (forward.ts).
// A class rather than closures: this runs for every request, and its methods are made once.
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { LOCAL_CA_URL_PREFIX, type ProxyRuntimePaths } from "@coyote/spec";
import { requestIdFrom } from "@coyote/log";
import type { CertificateStore } from "./certs.ts";
import type { Exchange } from "./exchange.ts";
import { Passage, answerPage, type PassageContext } from "./forward.ts";
import { requestHost } from "./headers.ts";
import type { RouteSource } from "./routes.ts";
import { answerStatic } from "./static.ts";
import { answerLocalCa } from "./well-known.ts";

/** What the dispatcher needs from the proxy. */
export interface DispatchContext {
  readonly passage: PassageContext;
  readonly certs: CertificateStore;
  readonly source: RouteSource;
  /** The proxy's runtime folder (the local CA's published files). */
  readonly paths: ProxyRuntimePaths;
  /** `sites/` of the state folder: no static route serves a file outside its service's folder there. */
  readonly sitesDir: string;
}

/** Routes each request to its answer. */
export class Dispatcher {
  readonly #context: DispatchContext;

  constructor(context: DispatchContext) {
    this.#context = context;
  }

  /**
   * A connection made for one site must not serve another (RFC 9110 §7.4): the host must be the
   * SNI name, or be covered by the wildcard certificate that SNI name was served.
   */
  hostAllowed(socket: TLSSocket, host: string): boolean {
    const serverName = socket.servername;
    return typeof serverName !== "string" || serverName.toLowerCase() === host || coveredByWildcard(this.#context.certs.servedName(serverName), host);
  }

  /** Answers one request, or sends it on its way. */
  exchange(exchange: Exchange): void {
    const started = performance.now();
    const context = this.#context;
    const { reply } = exchange;
    const requestId = requestIdFrom(exchange.headers);
    const host = requestHost(exchange.headers);
    if (host === undefined) {
      context.passage.stats.counters.badRequests++;
      answerPage(reply, 400, requestId);
      return;
    }
    if (!this.hostAllowed(exchange.socket, host)) {
      answerPage(reply, 421, requestId);
      return;
    }
    const url = exchange.url;
    if (url.startsWith(LOCAL_CA_URL_PREFIX)) {
      answerLocalCa(exchange, context.paths.ca, context.passage.logger, requestId);
      return;
    }
    const route = context.source.table.match(host, url);
    if (!route) {
      answerPage(reply, 404, requestId);
      return;
    }
    const passage = new Passage(context.passage, exchange, route, host, requestId, started);
    const upstream = route.upstream;
    if (upstream.kind === "static") {
      answerStatic(exchange, upstream.root, join(context.sitesDir, route.serviceId), requestId, route.hsts === true, passage, context.passage.logger);
      return;
    }
    passage.forward();
  }
}

/** Whether the certificate served under `served` (a name or `*.parent`) also covers `host`. */
function coveredByWildcard(served: string | undefined, host: string): boolean {
  if (served?.startsWith("*.") !== true) return false;
  const dot = host.indexOf(".");
  return dot > 0 && host.slice(dot) === served.slice(1);
}
