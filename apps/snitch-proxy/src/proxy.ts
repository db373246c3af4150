import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server as HttpServer } from "node:http";
import { createServer as createHttp2Server, type ServerHttp2Session } from "node:http2";
import { readFile } from "node:fs/promises";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { join } from "node:path";
import { ActivatorClient, LOCAL_CA_URL_PREFIX } from "@coyote/spec";
import { startStatsHeartbeat } from "@coyote/component";
import { requestIdFrom, type CoyoteLogger } from "@coyote/log";
import { AddressLimit } from "./address-limit.ts";
import { CertificateStore, TLS_CIPHERS } from "./certs.ts";
import { http2Exchange, type Exchange } from "./exchange.ts";
import { Passage, answerPage, type PassageContext } from "./forward.ts";
import { Http1Front } from "./http1/front.ts";
import { Origins } from "./http1/origin.ts";
import { HSTS, requestHost } from "./headers.ts";
import { errorHeaders, errorPage } from "./pages.ts";
import type { Listen, ProxyOptions, RunningProxy } from "./options.ts";
import { RouteSource } from "./routes.ts";
import { openStatic, resolveStatic } from "./static.ts";
import { TrafficStats } from "./stats.ts";
import { openTunnel, type TunnelContext } from "./tunnel.ts";
import { Upstreams } from "./upstreams.ts";
import { serveWellKnown } from "./well-known.ts";

export type { Listen, ProxyOptions, RunningProxy, TrafficReport } from "./options.ts";

const ACME_PREFIX = "/.well-known/acme-challenge/";
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * Starts snitch-proxy: the TLS front door of the box (docs/ARCHITECTURE.md). One TLS listener chooses the
 * certificate by SNI and the protocol by ALPN: HTTP/2 goes to `node:http2`, HTTP/1.1 (websockets
 * included) to snitch-proxy's own engine (http1/front.ts). Each request is forwarded by host and
 * path prefix to an address or a sleeping activator unit (woken first) over keep-alive HTTP/1.1
 * (http1/origin.ts), or answered from a static folder.
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { logger, stateDir } = options;
  const proxyDir = join(stateDir, "proxy");
  const stats = new TrafficStats();
  const certs = new CertificateStore(join(proxyDir, "certs"));
  const activator = options.activator ?? new ActivatorClient(stateDir);
  const upstreams = new Upstreams(activator, logger, options.wakeTimeoutMs ?? 60_000);
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
  // Upstream connections: keep-alive pools per address (http1/origin.ts).
  const origins = new Origins({ headersTimeoutMs: upstreamTimeoutMs, onFault: (error, where) => logger.event("ERROR", { err: error }, where) });
  const publicHttpsPort = options.publicHttpsPort ?? 443;
  let defaultMaxConnections = options.maxConnections ?? 10_000;
  const share = Math.max(1, options.connectionShare ?? 1);
  /** This process's part of a connection limit. */
  const part = (limit: number) => Math.max(1, Math.ceil(limit / share));

  const perAddress = new AddressLimit(part(options.maxConnectionsPerAddress ?? 256));
  const defaultPerAddress = options.maxConnectionsPerAddress ?? 256;

  const tls = createTlsServer({
    ALPNProtocols: ["h2", "http/1.1"],
    minVersion: "TLSv1.2",
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    // Each answer goes out in one write (head and body together): no reason to wait for more.
    noDelay: true,
    SNICallback: (serverName, callback) => {
      certs
        .find(serverName)
        .then(
          (found) => {
            if (found) callback(null, found.context);
            else callback(new Error(`no certificate for ${serverName}`));
          },
          (error: unknown) => {
            logger.event("ERROR", { err: error, serverName }, "loading a certificate");
            callback(error as Error);
          },
        )
        // A throw from the callback (a socket gone meanwhile) must not become an unhandled rejection.
        .catch((error: unknown) => logger.event("ERROR", { err: error, serverName }, "answering a handshake"));
    },
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  });
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const h2 = createHttp2Server({ settings: { maxHeaderListSize: options.maxHeaderBytes ?? 16_384, maxConcurrentStreams: 250 }, maxSessionMemory: 20 });
  h2.setTimeout(idleTimeoutMs);
  const sessions = new Set<ServerHttp2Session>();
  h2.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  h2.on("sessionError", (error) => logger.debug({ err: error }, "http/2 session error"));
  h2.on("request", (req, res) => {
    try {
      onExchange(http2Exchange(req, res));
    } catch (error) {
      // One stream's fault ends that stream, not the session's others nor the process.
      logger.event("ERROR", { err: error, path: req.url.slice(0, 200) }, "serving an HTTP/2 request");
      res.stream.destroy();
    }
  });
  const front = new Http1Front(
    {
      maxHeaderBytes: options.maxHeaderBytes ?? 16_384,
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 300_000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5000,
      idleTimeoutMs,
      checkingIntervalMs: options.connectionsCheckingIntervalMs ?? 1000,
    },
    {
      exchange: (exchange) => onExchange(exchange),
      upgrade: (request, head) => openTunnel(tunnelContext, request, head),
      refused: (status, reason) => {
        stats.counters.badRequests++;
        logger.debug({ status, reason }, "refused a malformed HTTP/1.1 request");
      },
      fault: (error, where) => logger.event("ERROR", { err: error }, where),
    },
  );
  // ALPN decides: HTTP/2 to node:http2, HTTP/1.1 (or no ALPN) to snitch-proxy's own engine.
  tls.on("secureConnection", (socket: TLSSocket) => {
    if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
    else front.attach(socket);
  });
  const source = new RouteSource(join(proxyDir, "routes.json"), logger, (table) => {
    tls.maxConnections = part(table.limits?.maxConnections ?? defaultMaxConnections);
    perAddress.limit = part(table.limits?.maxConnectionsPerAddress ?? defaultPerAddress);
    // A name refused a moment ago may have a route and a certificate now.
    certs.forgetMisses();
    stats.retainHosts((host) => table.hasHost(host));
  });
  await source.start();
  const sockets = new Set<Socket>();
  tls.on("connection", (socket: Socket) => {
    if (!perAddress.admit(socket)) {
      stats.counters.connectionsRefused++;
      socket.destroy();
      return;
    }
    stats.counters.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  tls.on("drop", () => stats.counters.connectionsRefused++);
  // A failed or timed-out handshake: tls.Server leaves the socket open unless told otherwise.
  tls.on("tlsClientError", (error: Error & { code?: string }, socket: TLSSocket) => {
    stats.counters.tlsErrors++;
    logger.debug({ err: error }, "tls handshake failed");
    socket.destroy();
  });

  /**
   * A connection made for one site must not serve another (RFC 9110 §7.4): the host must be the
   * SNI name, or be covered by the wildcard certificate that SNI name was served.
   */
  const hostAllowed = (socket: TLSSocket, host: string): boolean => {
    const serverName = socket.servername;
    return typeof serverName !== "string" || serverName.toLowerCase() === host || coveredByWildcard(certs.servedName(serverName), host);
  };
  const tunnelContext: TunnelContext = {
    stats,
    logger,
    upstreams,
    upstreamTimeoutMs,
    handshakeTimeoutMs: (options.wakeTimeoutMs ?? 60_000) + upstreamTimeoutMs,
    idleTimeoutMs,
    route: (host, url) => source.table.match(host, url),
    hostAllowed,
  };
  const passageContext: PassageContext = { stats, logger, origins, upstreams, upstreamTimeoutMs, accessLog: options.accessLog ?? true };

  const onExchange = (exchange: Exchange) => {
    const started = performance.now();
    const { reply } = exchange;
    const requestId = requestIdFrom(exchange.headers);
    const host = requestHost(exchange.headers);
    if (host === undefined) {
      stats.counters.badRequests++;
      answerPage(reply, 400, requestId);
      return;
    }
    if (!hostAllowed(exchange.socket, host)) {
      answerPage(reply, 421, requestId);
      return;
    }
    const url = exchange.url;
    if (url.startsWith(LOCAL_CA_URL_PREFIX)) {
      answerLocalCa(exchange, requestId);
      return;
    }
    const route = source.table.match(host, url);
    if (!route) {
      answerPage(reply, 404, requestId);
      return;
    }
    const passage = new Passage(passageContext, exchange, route, host, requestId, started);
    const upstream = route.upstream;
    if (upstream.kind === "static") {
      serveStatic(exchange, upstream.root, join(options.stateDir, "sites", route.serviceId), requestId, route.hsts === true, (n) => (passage.bytesOut += n));
      return;
    }
    passage.forward();
  };
  // HTTP/2 needs no stream timer of its own: a stream exists only once its headers have arrived
  // (their size capped by maxHeaderListSize), a session with no frames at all is closed by the
  // idle timeout, and a stream waiting on its upstream is bounded by the upstream and wake timeouts.

  /** The local CA's certificate and CRL, for every host (well-known.ts); never forwarded. */
  const answerLocalCa = (exchange: Exchange, requestId: string) => {
    const { reply } = exchange;
    exchange.body?.stop();
    const send = (status: number, headers: Record<string, string | number>, body: Buffer) => {
      if (reply.done) return;
      reply.writeHead(status, headers);
      reply.end(body);
    };
    serveWellKnown(proxyDir, logger, { method: exchange.method, url: exchange.url, requestId }, send, () => reply.destroy());
  };

  const serveStatic = (exchange: Exchange, root: string, jail: string, requestId: string, hsts: boolean, sent: (n: number) => void) => {
    const { reply, url, method } = exchange;
    // A request body means nothing to a static site; it is not read.
    exchange.body?.stop();
    const q = url.indexOf("?");
    const pathname = q < 0 ? url : url.slice(0, q);
    const inm = exchange.headers["if-none-match"];
    resolveStatic(root, jail, method, pathname, typeof inm === "string" ? inm : undefined).then(
      (answer) => {
        if (reply.done) return;
        if (!("headers" in answer)) {
          if (answer.status === 404) {
            answerPage(reply, 404, requestId);
            return;
          }
          reply.writeHead(405, { allow: "GET, HEAD", "content-length": 0, "x-request-id": requestId });
          reply.end();
          return;
        }
        reply.writeHead(answer.status, { ...answer.headers, "x-request-id": requestId, ...(hsts ? { "strict-transport-security": HSTS } : {}) });
        if (answer.status !== 200 || answer.file === undefined || method === "HEAD") {
          reply.end();
          return;
        }
        sent(answer.size);
        const stream = openStatic(answer.file);
        stream.on("data", (chunk: Buffer | string) => {
          try {
            if (reply.write(chunk as Buffer)) return;
            stream.pause();
            reply.onDrain(() => stream.resume());
          } catch (error) {
            logger.event("ERROR", { err: error, requestId, root }, "sending a static file");
            stream.destroy();
            reply.destroy();
          }
        });
        stream.once("end", () => reply.end());
        stream.once("error", () => reply.destroy());
        reply.onClose(() => stream.destroy());
      },
      (error: unknown) => {
        logger.event("ERROR", { err: error, requestId, root }, "serving a static file");
        answerPage(reply, 404, requestId);
      },
    ).catch((error: unknown) => {
      // Thrown while answering: this request is cut off; unhandled, it would end the process.
      logger.event("ERROR", { err: error, requestId, root }, "answering a static request");
      reply.destroy();
    });
  };

  await listen(tls, options.https, options.reusePort ?? false);
  const httpsAddress = tls.address() as AddressInfo;

  let plain: HttpServer | undefined;
  if (options.http) {
    plain = createHttpServer({ maxHeaderSize: options.maxHeaderBytes ?? 16_384, headersTimeout: options.headersTimeoutMs ?? 10_000, requestTimeout: 30_000, connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1000 }, (req, res) => {
      void answerPlain(req, res, proxyDir, publicHttpsPort, logger);
    });
    plain.maxConnections = part(defaultMaxConnections);
    // The same per-address count as the TLS side: one address's connections to both ports together.
    plain.on("connection", (socket: Socket) => {
      if (perAddress.admit(socket)) return;
      stats.counters.connectionsRefused++;
      socket.destroy();
    });
    plain.setTimeout(options.idleTimeoutMs ?? 60_000);
    await listen(plain, options.http, options.reusePort ?? false);
  }
  const httpAddress = plain?.address() as AddressInfo | undefined;

  const counters = () => ({ ...stats.counters, wakes: upstreams.wakes, openConnections: sockets.size });
  const onTraffic = options.onTraffic;
  const reporter = setInterval(() => {
    const units = stats.takeActivity();
    if (onTraffic) {
      onTraffic({ activity: units, hosts: stats.hosts(), counters: counters() });
      return;
    }
    if (Object.keys(units).length === 0) return;
    activator.reportActivity({ units }).catch((error: unknown) => logger.debug({ err: error }, "reporting activity to docker-activator"));
  }, options.activityIntervalMs ?? 1000);
  reporter.unref();
  let stopStats: (() => Promise<void>) | undefined;
  if (options.writeStats ?? true) {
    stopStats = startStatsHeartbeat(stateDir, "snitch-proxy", {
      intervalMs: options.statsIntervalMs ?? 5000,
      extra: () => ({ hosts: stats.hosts(), counters: counters() }),
    });
  }
  logger.event("COMPONENT_STARTED", { https: `${httpsAddress.address}:${httpsAddress.port}`, http: httpAddress ? `${httpAddress.address}:${httpAddress.port}` : undefined, routes: source.table.hostCount });

  return {
    httpsAddress,
    httpAddress,
    stats,
    routes: () => source.table,
    reloadRoutes: () => source.reload(),
    setMaxConnections(limit: number) {
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`setting max connections: ${limit} is not a positive whole number`);
      defaultMaxConnections = limit;
      tls.maxConnections = part(limit);
      if (plain) plain.maxConnections = part(limit);
      logger.event("CONFIG_RELOADED", { what: "limits", maxConnections: limit });
    },
    async stop(graceMs = 5000) {
      clearInterval(reporter);
      await source.stop();
      const closing = Promise.all([closeServer(tls), plain ? closeServer(plain) : Promise.resolve()]);
      // Idle keep-alive connections would hold close() open; busy ones get the grace.
      front.stop();
      for (const session of sessions) session.close();
      plain?.closeIdleConnections();
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
        plain?.closeAllConnections();
      }, graceMs);
      await closing;
      clearTimeout(grace);
      origins.close();
      if (!options.activator) activator.close();
      await stopStats?.();
    },
  };
}

/** Whether the certificate served under `served` (a name or `*.parent`) also covers `host`. */
function coveredByWildcard(served: string | undefined, host: string): boolean {
  if (served?.startsWith("*.") !== true) return false;
  const dot = host.indexOf(".");
  return dot > 0 && host.slice(dot) === served.slice(1);
}

async function answerPlain(req: IncomingMessage, res: ServerResponse, proxyDir: string, httpsPort: number, logger: CoyoteLogger): Promise<void> {
  const requestId = requestIdFrom(req.headers);
  const url = req.url ?? "/";
  // Plain HTTP on purpose: a CRL is fetched before anything can be verified (RFC 5280 §4.2.1.13).
  const send = (status: number, headers: Record<string, string | number>, body: Buffer) => {
    res.writeHead(status, headers);
    res.end(body);
  };
  if (serveWellKnown(proxyDir, logger, { method: req.method ?? "GET", url, requestId }, send, () => res.destroy())) return;
  if (url.startsWith(ACME_PREFIX)) {
    const token = url.slice(ACME_PREFIX.length);
    if (TOKEN.test(token)) {
      try {
        const body = await readFile(join(proxyDir, "challenges", token), "utf8");
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

function listen(server: NetServer, at: Listen, reusePort: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: at.port, host: at.host, reusePort }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

