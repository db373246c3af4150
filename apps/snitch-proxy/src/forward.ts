// One routed request's way through snitch-proxy: the upstream it is sent to (woken first when it
// is a sleeping unit), the answer streamed back, the error pages, and the stats and access log
// once it is over. A class rather than closures: this runs for every request, and its methods
// are made once, not per request.
import { ActivatorError } from "@coyote/spec";
import type { CoyoteLogger } from "@coyote/log";
import type { IncomingHttpHeaders } from "node:http";
import type { BodySource, Exchange } from "./exchange.ts";
import { PANEL_SERVICE_ID, type ForwardingSecret } from "./forwarding-secret.ts";
import { HSTS, clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import { ORIGIN_FAULT, ORIGIN_PROTOCOL, ORIGIN_RESET, ORIGIN_TIMEOUT, type OriginCall, type OriginError, type OriginHandler, type Origins } from "./http1/origin.ts";
import { errorHeaders, errorPage, type PageStatus } from "./pages.ts";
import type { Route } from "./routes.ts";
import type { TrafficStats } from "./stats.ts";
import type { Target, Upstreams } from "./upstreams.ts";

/** What every passage shares: the proxy's parts. */
export interface PassageContext {
  readonly stats: TrafficStats;
  readonly logger: CoyoteLogger;
  readonly origins: Origins;
  readonly upstreams: Upstreams;
  readonly upstreamTimeoutMs: number;
  readonly accessLog: boolean;
  /** The panel's forwarding secret, sent on the box's own routes only. */
  readonly forwarding: ForwardingSecret;
}

/** Answers with snitch-proxy's own page, or cuts the answer off when one has begun. */
export function answerPage(reply: Exchange["reply"], status: PageStatus, requestId: string): void {
  if (reply.headersSent) {
    reply.destroy();
    return;
  }
  const body = errorPage(status, requestId);
  reply.writeHead(status, errorHeaders(body, requestId));
  reply.end(body);
}

type UnitCounter = ReturnType<TrafficStats["unit"]>;

/** A routed request, from its route to its stats. */
export class Passage implements OriginHandler {
  readonly #context: PassageContext;
  readonly #exchange: Exchange;
  readonly #route: Route;
  readonly #host: string;
  readonly #requestId: string;
  readonly #started: number;
  readonly #unitCounter: UnitCounter | undefined;
  readonly #body: BodySource | null;
  #call: OriginCall | undefined;
  #target: Target | undefined;
  #retried = false;
  /** Whether the upstream exchange is over (answered or failed). */
  #done = false;
  #finished = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(context: PassageContext, exchange: Exchange, route: Route, host: string, requestId: string, started: number) {
    this.#context = context;
    this.#exchange = exchange;
    this.#route = route;
    this.#host = host;
    this.#requestId = requestId;
    this.#started = started;
    this.#unitCounter = route.upstream.kind === "unit" ? context.stats.unit(route.upstream.unit) : undefined;
    if (this.#unitCounter) this.#unitCounter.openConnections++;
    // The body is counted on its way through; it flows only once the upstream connection is there.
    this.#body = exchange.body === null ? null : countedBody(exchange.body, this);
    exchange.reply.onClose(this.#closed.bind(this));
  }

  /** Sends the request on: to its address, or to its unit once awake. */
  forward(): void {
    const upstream = this.#route.upstream;
    if (upstream.kind === "static") throw new Error("a static route is not forwarded");
    let resolved: Target | Promise<Target>;
    try {
      resolved = this.#context.upstreams.resolve(upstream, this.#requestId);
    } catch (error) {
      this.#context.logger.event("ERROR", { err: error, requestId: this.#requestId, host: this.#host }, "resolving the upstream");
      answerPage(this.#exchange.reply, 502, this.#requestId);
      return;
    }
    if (!(resolved instanceof Promise)) {
      this.#send(resolved);
      return;
    }
    // Hold the request while its unit wakes (its body is read only once it is sent on).
    resolved.then(
      (target) => {
        if (!this.#exchange.reply.done) this.#send(target);
      },
      (error: unknown) => {
        this.#context.stats.counters.wakeFailures++;
        const timeout = error instanceof ActivatorError && error.code === "WAKE_TIMEOUT";
        this.#context.logger.event("ERROR", { err: error, requestId: this.#requestId, host: this.#host, serviceId: this.#route.serviceId }, "waking the backend");
        answerPage(this.#exchange.reply, timeout ? 504 : 503, this.#requestId);
      },
    ).catch((error: unknown) => {
      // Thrown while sending on or answering: this request is cut off, the process goes on.
      this.#context.logger.event("ERROR", { err: error, requestId: this.#requestId, host: this.#host }, "forwarding a request");
      this.#exchange.reply.destroy();
    });
  }

  #send(target: Target): void {
    const exchange = this.#exchange;
    this.#target = target;
    this.#done = false;
    const forwardedBy = this.#route.serviceId === PANEL_SERVICE_ID ? this.#context.forwarding.forPanel() : undefined;
    const headers = upstreamRequestHeaders(exchange.headers, { host: this.#host, clientAddress: exchange.socket.remoteAddress ?? "", proto: "https", requestId: this.#requestId, forwardedBy });
    this.#call = this.#context.origins.send(target, { method: exchange.method, path: exchange.url, headers, body: this.#body }, this);
  }

  onHead(status: number, headers: IncomingHttpHeaders): void {
    const out = clientResponseHeaders(headers, this.#requestId);
    // The upstream's own policy (includeSubDomains, preload) wins over the route's plain one.
    if (this.#route.hsts === true) out["strict-transport-security"] ??= HSTS;
    this.#exchange.reply.writeHead(status, out);
  }

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    const reply = this.#exchange.reply;
    // Back-pressure: a slow client pauses the upstream instead of filling memory.
    if (reply.write(chunk)) return true;
    reply.onDrain(this.#resume.bind(this));
    return false;
  }

  #resume(): void {
    this.#call?.resume();
  }

  onEnd(): void {
    this.#done = true;
    this.#exchange.reply.end();
  }

  onError(error: OriginError): void {
    this.#done = true;
    const reply = this.#exchange.reply;
    if (reply.done) return;
    if (reply.headersSent) {
      reply.destroy();
      return;
    }
    const { stats, logger } = this.#context;
    const target = this.#target as Target;
    const upstream = `${target.host}:${String(target.port)}`;
    if (error.code === ORIGIN_TIMEOUT) {
      stats.counters.upstreamTimeouts++;
      logger.event("ERROR", { requestId: this.#requestId, host: this.#host, serviceId: this.#route.serviceId, upstream, timeoutMs: this.#context.upstreamTimeoutMs }, "upstream too slow");
      answerPage(reply, 504, this.#requestId);
      return;
    }
    if (error.code === ORIGIN_PROTOCOL || error.code === ORIGIN_FAULT) {
      // An answer no client may be given (a status outside 100-599, a malformed field) or one the
      // client's side refused: the client gets a 502, the upstream connection was closed.
      stats.counters.upstreamErrors++;
      logger.event("ERROR", { err: error, requestId: this.#requestId, host: this.#host, serviceId: this.#route.serviceId, upstream }, "invalid answer from the upstream");
      try {
        answerPage(reply, 502, this.#requestId);
      } catch {
        reply.destroy();
      }
      return;
    }
    const refused = error.code === "ECONNREFUSED" || error.code === "ECONNRESET" || error.code === ORIGIN_RESET;
    if (refused && target.unit !== undefined && !this.#retried && this.#body === null) {
      // The unit went to sleep since its address was remembered: wake it again, once.
      this.#retried = true;
      this.#context.upstreams.forget(target.unit);
      this.forward();
      return;
    }
    stats.counters.upstreamErrors++;
    logger.event("ERROR", { err: error, requestId: this.#requestId, host: this.#host, serviceId: this.#route.serviceId, upstream }, "upstream unreachable");
    answerPage(reply, 502, this.#requestId);
  }

  /** The answer is over, sent or cut off: the upstream is let go, and the request counted. */
  #closed(): void {
    if (!this.#done) this.#call?.abort();
    if (this.#finished) return;
    this.#finished = true;
    const { stats, logger, accessLog } = this.#context;
    const status = this.#exchange.reply.statusCode;
    const ms = performance.now() - this.#started;
    const { bytesIn, bytesOut } = this;
    // Counted under the route's host, so a wildcard route is one entry however many names it serves.
    stats.request(this.#route.host, status, ms, bytesIn, bytesOut);
    const unit = this.#unitCounter;
    if (unit) {
      unit.openConnections--;
      unit.requests++;
      unit.bytesIn += bytesIn;
      unit.bytesOut += bytesOut;
      unit.dirty = true;
    }
    if (accessLog || status >= 500) {
      const url = this.#exchange.url;
      logger.event("RESPONSE_SENT", { requestId: this.#requestId, host: this.#host, method: this.#exchange.method, path: url.length > 200 ? url.slice(0, 200) : url, status, ms: Math.round(ms * 100) / 100, bytesIn, bytesOut, serviceId: this.#route.serviceId });
    }
  }
}

/** A request body that counts its bytes into the passage as they go through. */
function countedBody(source: BodySource, passage: Passage): BodySource {
  return {
    start: (sink) =>
      source.start({
        data(chunk) {
          passage.bytesIn += chunk.length;
          return sink.data(chunk);
        },
        end: () => sink.end(),
        error: (error) => sink.error(error),
      }),
    resume: () => source.resume(),
    stop: () => source.stop(),
  };
}
