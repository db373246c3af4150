import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse, type Server as HttpServer } from "node:http";
import { Pool } from "undici";
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { readFile } from "node:fs/promises";
import { Transform, type Duplex } from "node:stream";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { ActivatorClient, ActivatorError } from "@coyote/docker-activator";
import { startStatsHeartbeat } from "@coyote/component";
import { requestIdFrom, type CoyoteLogger } from "@coyote/log";
import { CertificateStore } from "./certs.ts";
import { clientResponseHeaders, requestHost, upstreamRequestHeaders } from "./headers.ts";
import { errorHeaders, errorPage, type PageStatus } from "./pages.ts";
import { RouteSource, type RouteTable } from "./routes.ts";
import { openStatic, resolveStatic } from "./static.ts";
import { TrafficStats } from "./stats.ts";
import { Upstreams, type Target } from "./upstreams.ts";

/** Where a listener binds. */
export interface Listen {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** How snitch-proxy is run. Every limit has a default fit for a small appliance. */
export interface ProxyOptions {
  /** The state folder: `proxy/routes.json`, `proxy/certs/`, `proxy/challenges/`, `stats/`. */
  readonly stateDir: string;
  readonly logger: CoyoteLogger;
  /** The TLS listener (HTTP/2 and HTTP/1.1). */
  readonly https: Listen;
  /** The plain HTTP listener: ACME HTTP-01 challenges, and a redirect to HTTPS for the rest. */
  readonly http?: Listen;
  /** The HTTPS port the world sees, for redirects (443 by default: no port in the URL). */
  readonly publicHttpsPort?: number;
  /** Connections allowed at once, until `proxy/routes.json` says otherwise; 10000 by default. */
  readonly maxConnections?: number;
  /** Time to receive a request's headers (slowloris), ms; 10 s. */
  readonly headersTimeoutMs?: number;
  /** Time to receive a whole HTTP/1.1 request, ms; 300 s. */
  readonly requestTimeoutMs?: number;
  /** An idle connection is closed after this, ms; 60 s. */
  readonly idleTimeoutMs?: number;
  /** A TLS handshake must finish within this, ms; 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Time for an upstream to start its answer before a 504, ms; 60 s. */
  readonly upstreamTimeoutMs?: number;
  /** Time a request may wait for its sleeping unit to wake before a 504, ms; 60 s. */
  readonly wakeTimeoutMs?: number;
  /** Largest request header block, bytes; 16 KiB (larger gets 431). */
  readonly maxHeaderBytes?: number;
  /** Log every request (RESPONSE_SENT); on by default. */
  readonly accessLog?: boolean;
  /** How often `stats/snitch-proxy.json` is written, ms; 5 s. Ignored when `writeStats` is false. */
  readonly statsIntervalMs?: number;
  /** Whether this proxy writes the stats file (a worker of several does not). */
  readonly writeStats?: boolean;
  /** How often unit activity is reported to docker-activator, ms; 1 s. */
  readonly activityIntervalMs?: number;
  /** The activator's client; one for the state folder's socket by default. */
  readonly activator?: ActivatorClient;
  /** How often the HTTP/1.1 timeouts are checked, ms; 1 s. */
  readonly connectionsCheckingIntervalMs?: number;
  /** Bind with SO_REUSEPORT, so that several worker processes share the ports (see cluster.ts). */
  readonly reusePort?: boolean;
  /** The number of processes sharing the ports: each takes this share of the connection limit. */
  readonly connectionShare?: number;
  /**
   * Hands the traffic to a parent instead of reporting it: called every `activityIntervalMs` with
   * the units' activity since the last call and the cumulative per-host stats (cluster workers).
   */
  readonly onTraffic?: (traffic: TrafficReport) => void;
}

/** What a worker process hands its parent every activity interval. */
export interface TrafficReport {
  readonly activity: ReturnType<TrafficStats["takeActivity"]>;
  readonly hosts: ReturnType<TrafficStats["hosts"]>;
  readonly counters: Record<string, number>;
}

/** A running proxy. */
export interface RunningProxy {
  /** The bound TLS address. */
  readonly httpsAddress: AddressInfo;
  /** The bound plain HTTP address, when there is one. */
  readonly httpAddress: AddressInfo | undefined;
  /** The traffic counters. */
  readonly stats: TrafficStats;
  /** The routes in service. */
  readonly routes: () => RouteTable;
  /** Re-reads `proxy/routes.json` now (it is also watched). */
  reloadRoutes(): Promise<void>;
  /** Changes the connection limit live; the routes file's limit replaces it on its next change. */
  setMaxConnections(limit: number): void;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes everything. */
  stop(graceMs?: number): Promise<void>;
}

// An HTTP/1.1 request of the allowHTTP1 side arrives as IncomingMessage/ServerResponse; the
// handlers use only what those share with the HTTP/2 compatibility objects.
type AnyRequest = Http2ServerRequest;
type AnyResponse = Http2ServerResponse;

const ACME_PREFIX = "/.well-known/acme-challenge/";
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"]);

/**
 * Starts snitch-proxy: the TLS front door of the box (DESIGN.md). One `node:http2` secure server
 * with `allowHTTP1` answers HTTP/2 and HTTP/1.1 (and websockets over HTTP/1.1), chooses the
 * certificate by SNI, and forwards each request by host and path prefix to an address, a sleeping
 * activator unit (woken first), or a static folder.
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { logger, stateDir } = options;
  const proxyDir = join(stateDir, "proxy");
  const stats = new TrafficStats();
  const certs = new CertificateStore(join(proxyDir, "certs"));
  const activator = options.activator ?? new ActivatorClient(stateDir);
  const upstreams = new Upstreams(activator, logger, options.wakeTimeoutMs ?? 60_000);
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
  // Upstream connections: one keep-alive undici pool per address (measured cheaper per request
  // than node:http's agent; docs/BENCHMARKS.md), at most 1024 pools, the oldest closed first.
  const pools = new Map<string, Pool>();
  const upstreamPool = (target: Target): Pool => {
    const key = `${target.host}:${String(target.port)}`;
    let pool = pools.get(key);
    if (!pool) {
      if (pools.size >= 1024) {
        const [oldest] = pools;
        if (oldest) {
          pools.delete(oldest[0]);
          void oldest[1].close().catch(() => undefined);
        }
      }
      pool = new Pool(`http://${target.host.includes(":") ? `[${target.host}]` : target.host}:${String(target.port)}`, { connections: 512, pipelining: 1, headersTimeout: upstreamTimeoutMs, bodyTimeout: 0, keepAliveTimeout: 4000 });
      pools.set(key, pool);
    }
    return pool;
  };
  const accessLog = options.accessLog ?? true;
  const publicHttpsPort = options.publicHttpsPort ?? 443;
  let defaultMaxConnections = options.maxConnections ?? 10_000;
  const share = Math.max(1, options.connectionShare ?? 1);
  /** This process's part of a connection limit. */
  const part = (limit: number) => Math.max(1, Math.ceil(limit / share));

  const tls: Http2SecureServer = createSecureServer({
    allowHTTP1: true,
    SNICallback: (serverName, callback) => {
      certs.find(serverName).then(
        (found) => {
          if (found) callback(null, found.context);
          else callback(new Error(`no certificate for ${serverName}`));
        },
        (error: unknown) => {
          logger.event("ERROR", { err: error, serverName }, "loading a certificate");
          callback(error as Error);
        },
      );
    },
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
    settings: { maxHeaderListSize: options.maxHeaderBytes ?? 16_384, maxConcurrentStreams: 250 },
    maxSessionMemory: 20,
  });
  // HTTP/1.1 timeouts of the allowHTTP1 side (Node checks them every connectionsCheckingInterval).
  Object.assign(tls, {
    maxHeaderSize: options.maxHeaderBytes ?? 16_384,
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: options.requestTimeoutMs ?? 300_000,
    connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1000,
    keepAliveTimeout: 5000,
  });
  const source = new RouteSource(join(proxyDir, "routes.json"), logger, (table) => {
    tls.maxConnections = part(table.limits?.maxConnections ?? defaultMaxConnections);
    stats.retainHosts((host) => table.hasHost(host));
  });
  await source.start();
  tls.setTimeout(options.idleTimeoutMs ?? 60_000);
  const sockets = new Set<Socket>();
  tls.on("connection", (socket: Socket) => {
    stats.counters.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  tls.on("drop", () => stats.counters.connectionsRefused++);
  tls.on("tlsClientError", (error: Error & { code?: string }) => {
    stats.counters.tlsErrors++;
    logger.debug({ err: error }, "tls handshake failed");
  });
  tls.on("sessionError", (error) => logger.debug({ err: error }, "http/2 session error"));

  const answerPage = (res: AnyResponse, status: PageStatus, requestId: string) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = errorPage(status, requestId);
    res.writeHead(status, errorHeaders(body, requestId));
    res.end(body);
  };

  const onRequest = (req: AnyRequest, res: AnyResponse) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers);
    const host = requestHost(req.headers);
    const method = req.method;
    if (host === undefined) {
      stats.counters.badRequests++;
      answerPage(res, 400, requestId);
      return;
    }
    const socket = req.socket as TLSSocket;
    const serverName = socket.servername;
    // A connection made for one site must not serve another (RFC 9110 §7.4): the host must be
    // the SNI name, or be covered by the wildcard certificate that SNI name was served.
    if (typeof serverName === "string" && serverName.toLowerCase() !== host && !coveredByWildcard(certs.servedName(serverName), host)) {
      answerPage(res, 421, requestId);
      return;
    }
    const url = req.url;
    const route = source.table.match(host, url);
    if (!route) {
      answerPage(res, 404, requestId);
      return;
    }
    let bytesIn = 0;
    let bytesOut = 0;
    const unitCounter = route.upstream.kind === "unit" ? stats.unit(route.upstream.unit) : undefined;
    if (unitCounter) unitCounter.openConnections++;
    let finished = false;
    const finish = (status: number) => {
      if (finished) return;
      finished = true;
      const ms = performance.now() - started;
      // Counted under the route's host, so a wildcard route is one entry however many names it serves.
      stats.request(route.host, status, ms, bytesIn, bytesOut);
      if (unitCounter) {
        unitCounter.openConnections--;
        unitCounter.requests++;
        unitCounter.bytesIn += bytesIn;
        unitCounter.bytesOut += bytesOut;
        unitCounter.dirty = true;
      }
      if (accessLog || status >= 500) {
        logger.event("RESPONSE_SENT", { requestId, host, method, path: url.length > 200 ? url.slice(0, 200) : url, status, ms: Math.round(ms * 100) / 100, bytesIn, bytesOut, serviceId: route.serviceId });
      }
    };
    res.once("close", () => finish(res.statusCode));
    const upstream = route.upstream;
    if (upstream.kind === "static") {
      serveStatic(req, res, upstream.root, requestId, (n) => (bytesOut += n));
      return;
    }
    const send = (target: Target, retried: boolean) => {
      const headers = upstreamRequestHeaders(req.headers, { host, clientAddress: socket.remoteAddress ?? "", proto: "https", requestId });
      const hasBody = !BODYLESS.has(method) || req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
      // The body is counted on its way through (a 'data' listener would start it flowing before
      // the upstream connection is ready, and lose what arrived meanwhile).
      const body = hasBody ? req.pipe(new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytesIn += chunk.length;
          callback(null, chunk);
        },
      })) : null;
      let done = false;
      upstreamPool(target).dispatch({ path: url, method, headers: headers as Record<string, string | string[]>, body }, {
        onRequestStart(controller) {
          res.once("close", () => {
            if (!done) controller.abort(new Error("the client went away"));
          });
        },
        onResponseStart(_controller, statusCode, responseHeaders) {
          res.writeHead(statusCode, clientResponseHeaders(responseHeaders, requestId));
        },
        onResponseData(controller, chunk) {
          bytesOut += chunk.length;
          // Back-pressure: a slow client pauses the upstream instead of filling memory.
          if (!res.write(chunk)) {
            controller.pause();
            res.once("drain", () => controller.resume());
          }
        },
        onResponseEnd() {
          done = true;
          res.end();
        },
        onResponseError(_controller, error: Error & { code?: string }) {
          done = true;
          if (res.headersSent || res.writableEnded || res.destroyed) {
            res.destroy();
            return;
          }
          if (error.code === "UND_ERR_HEADERS_TIMEOUT") {
            stats.counters.upstreamTimeouts++;
            logger.event("ERROR", { requestId, host, serviceId: route.serviceId, upstream: `${target.host}:${String(target.port)}`, timeoutMs: upstreamTimeoutMs }, "upstream too slow");
            answerPage(res, 504, requestId);
            return;
          }
          const refused = error.code === "ECONNREFUSED" || error.code === "UND_ERR_SOCKET" || error.code === "ECONNRESET";
          if (refused && target.unit !== undefined && !retried && !hasBody) {
            // The unit went to sleep since its address was remembered: wake it again, once.
            upstreams.forget(target.unit);
            dispatch(true);
            return;
          }
          stats.counters.upstreamErrors++;
          logger.event("ERROR", { err: error, requestId, host, serviceId: route.serviceId, upstream: `${target.host}:${String(target.port)}` }, "upstream unreachable");
          answerPage(res, 502, requestId);
        },
      });
    };
    const dispatch = (retried: boolean) => {
      let resolved: Target | Promise<Target>;
      try {
        resolved = upstreams.resolve(upstream, requestId);
      } catch (error) {
        logger.event("ERROR", { err: error, requestId, host }, "resolving the upstream");
        answerPage(res, 502, requestId);
        return;
      }
      if (!(resolved instanceof Promise)) {
        send(resolved, retried);
        return;
      }
      // Hold the request while its unit wakes; pause the body meanwhile.
      req.pause();
      resolved.then(
        (target) => {
          if (res.destroyed || res.writableEnded) return;
          send(target, retried);
        },
        (error: unknown) => {
          stats.counters.wakeFailures++;
          const timeout = error instanceof ActivatorError && error.code === "WAKE_TIMEOUT";
          logger.event("ERROR", { err: error, requestId, host, serviceId: route.serviceId }, "waking the backend");
          answerPage(res, timeout ? 504 : 503, requestId);
        },
      );
    };
    dispatch(false);
  };
  tls.on("request", onRequest);
  tls.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head);
  });
  // HTTP/2 needs no stream timer of its own: a stream exists only once its headers have arrived
  // (their size capped by maxHeaderListSize), a session with no frames at all is closed by the
  // idle timeout, and a stream waiting on its upstream is bounded by the upstream and wake timeouts.

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const requestId = requestIdFrom(req.headers);
    const host = requestHost(req.headers);
    const fail = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\nx-request-id: ${requestId}\r\n\r\n`);
    };
    if (host === undefined) {
      fail(400, "Bad Request");
      return;
    }
    const route = source.table.match(host, req.url ?? "/");
    if (route === undefined || route.upstream.kind === "static") {
      fail(404, "Not Found");
      return;
    }
    const upstream = route.upstream;
    const counter = stats.host(route.host);
    const tunnel = (target: Target) => {
      const headers = upstreamRequestHeaders(req.headers, { host, clientAddress: req.socket.remoteAddress ?? "", proto: "https", requestId }, true);
      const proxyReq = httpRequest({ host: target.host, port: target.port, method: req.method, path: req.url, headers });
      proxyReq.on("upgrade", (proxyRes: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
        const lines = [`HTTP/1.1 101 ${proxyRes.statusMessage ?? "Switching Protocols"}`];
        for (let i = 0; i < proxyRes.rawHeaders.length; i += 2) lines.push(`${proxyRes.rawHeaders[i] ?? ""}: ${proxyRes.rawHeaders[i + 1] ?? ""}`);
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstreamSocket.write(head);
        counter.openConnections++;
        // Taken now, not before the upgrade: an idle unit's counter is dropped after each report,
        // and an open connection keeps this one in the table until it closes.
        const unitCounter = upstream.kind === "unit" ? stats.unit(upstream.unit) : undefined;
        if (unitCounter) unitCounter.openConnections++;
        stats.request(route.host, 101, 0, 0, 0);
        const count = (into: "bytesIn" | "bytesOut") => (chunk: Buffer) => {
          counter[into] += chunk.length;
          if (unitCounter) {
            unitCounter[into] += chunk.length;
            unitCounter.dirty = true;
          }
        };
        socket.on("data", count("bytesIn"));
        upstreamSocket.on("data", count("bytesOut"));
        socket.pipe(upstreamSocket).pipe(socket);
        let closed = false;
        const close = () => {
          if (closed) return;
          closed = true;
          counter.openConnections--;
          if (unitCounter) unitCounter.openConnections--;
          socket.destroy();
          upstreamSocket.destroy();
        };
        socket.on("close", close);
        socket.on("error", close);
        upstreamSocket.on("close", close);
        upstreamSocket.on("error", close);
      });
      proxyReq.on("response", (proxyRes: IncomingMessage) => {
        // The upstream refused the upgrade: pass its answer on and close.
        fail(proxyRes.statusCode ?? 502, proxyRes.statusMessage ?? "Bad Gateway");
        proxyRes.resume();
      });
      proxyReq.on("error", (error) => {
        logger.event("ERROR", { err: error, requestId, host }, "websocket upstream unreachable");
        fail(502, "Bad Gateway");
      });
      proxyReq.end();
    };
    socket.on("error", () => socket.destroy());
    let resolved: Target | Promise<Target>;
    try {
      resolved = upstreams.resolve(upstream, requestId);
    } catch {
      fail(502, "Bad Gateway");
      return;
    }
    if (resolved instanceof Promise) resolved.then(tunnel, () => fail(503, "Service Unavailable"));
    else tunnel(resolved);
  };

  const serveStatic = (req: AnyRequest, res: AnyResponse, root: string, requestId: string, sent: (n: number) => void) => {
    const url = req.url;
    const q = url.indexOf("?");
    const pathname = q < 0 ? url : url.slice(0, q);
    const inm = req.headers["if-none-match"];
    resolveStatic(root, req.method, pathname, typeof inm === "string" ? inm : undefined).then(
      (answer) => {
        if (res.destroyed) return;
        if (!("headers" in answer)) {
          if (answer.status === 404) {
            answerPage(res, 404, requestId);
            return;
          }
          res.writeHead(405, { allow: "GET, HEAD", "content-length": 0, "x-request-id": requestId });
          res.end();
          return;
        }
        res.writeHead(answer.status, { ...answer.headers, "x-request-id": requestId });
        if (answer.status !== 200 || answer.file === undefined || req.method === "HEAD") {
          res.end();
          return;
        }
        sent(answer.size);
        const stream = openStatic(answer.file);
        stream.on("error", () => res.destroy());
        stream.pipe(res as NodeJS.WritableStream);
      },
      (error: unknown) => {
        logger.event("ERROR", { err: error, requestId, root }, "serving a static file");
        answerPage(res, 404, requestId);
      },
    );
  };

  await listen(tls, options.https, options.reusePort ?? false);
  const httpsAddress = tls.address() as AddressInfo;

  let plain: HttpServer | undefined;
  if (options.http) {
    plain = createHttpServer({ maxHeaderSize: options.maxHeaderBytes ?? 16_384, headersTimeout: options.headersTimeoutMs ?? 10_000, requestTimeout: 30_000, connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1000 }, (req, res) => {
      void answerPlain(req, res, proxyDir, publicHttpsPort, logger);
    });
    plain.maxConnections = part(defaultMaxConnections);
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
      // Idle HTTP/1.1 keep-alive connections would hold close() open; busy ones get the grace.
      plain?.closeIdleConnections();
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
        plain?.closeAllConnections();
      }, graceMs);
      await closing;
      clearTimeout(grace);
      await Promise.all([...pools.values()].map((pool) => pool.destroy().catch(() => undefined)));
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

function listen(server: HttpServer | Http2SecureServer, at: Listen, reusePort: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: at.port, host: at.host, reusePort }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: HttpServer | Http2SecureServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

