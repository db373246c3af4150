// snitch-proxy's assembly: the listeners, the two protocol engines, the route source, the traffic
// reports, and the order things stop in. What each part does is in its own file: tls-listener.ts,
// http1/front.ts, dispatch.ts (routing), forward.ts, tunnel.ts (upgrades), static.ts, plain.ts.
import { createServer as createHttp2Server, type ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { ActivatorClient, proxyRuntimePaths } from "@coyote/spec";
import { startStatsHeartbeat } from "@coyote/component";
import { AddressLimit } from "./address-limit.ts";
import { CertificateStore } from "./certs.ts";
import { Dispatcher } from "./dispatch.ts";
import { ForwardingSecret, forwardingSecretFile } from "./forwarding-secret.ts";
import { http2Exchange } from "./exchange.ts";
import type { PassageContext } from "./forward.ts";
import { SnitchProxyError } from "./errors.ts";
import { Http1Front } from "./http1/front.ts";
import { Origins } from "./http1/origin.ts";
import { Listeners, type ListenerFactory } from "./listeners.ts";
import type { Listen, ProxyOptions, RunningProxy } from "./options.ts";
import { createPlainServer } from "./plain.ts";
import { RouteSource } from "./routes.ts";
import { TrafficStats } from "./stats.ts";
import { createTlsListener } from "./tls-listener.ts";
import { openTunnel, type TunnelContext } from "./tunnel.ts";
import { Upstreams } from "./upstreams.ts";

export type { Listen, ProxyOptions, RunningProxy, TrafficReport } from "./options.ts";

/**
 * Starts snitch-proxy: the TLS front door of the box (docs/ARCHITECTURE.md). One TLS listener chooses the
 * certificate by SNI and the protocol by ALPN: HTTP/2 goes to `node:http2`, HTTP/1.1 (websockets
 * included) to snitch-proxy's own engine (http1/front.ts). Each request is forwarded by host and
 * path prefix to an address or a sleeping activator unit (woken first) over keep-alive HTTP/1.1
 * (http1/origin.ts), or answered from a static folder.
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { logger, stateDir } = options;
  const paths = proxyRuntimePaths(stateDir);
  const stats = new TrafficStats();
  const certs = new CertificateStore(paths.certs);
  const activator = options.activator ?? new ActivatorClient(stateDir);
  const upstreams = new Upstreams(activator, logger, options.wakeTimeoutMs ?? 60_000);
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
  // Upstream connections: keep-alive pools per address (http1/origin.ts).
  const origins = new Origins({ headersTimeoutMs: upstreamTimeoutMs, onFault: (error, where) => logger.event("ERROR", { err: error }, where) });
  let publicHttpsPort = options.publicHttpsPort ?? 443;
  let defaultMaxConnections = options.maxConnections ?? 10_000;
  const share = Math.max(1, options.connectionShare ?? 1);
  /** This process's part of a connection limit. */
  const part = (limit: number) => Math.max(1, Math.ceil(limit / share));

  const perAddress = new AddressLimit(part(options.maxConnectionsPerAddress ?? 256));
  const defaultPerAddress = options.maxConnectionsPerAddress ?? 256;

  const sockets = new Set<Socket>();
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const h2 = createHttp2Server({ settings: { maxHeaderListSize: options.maxHeaderBytes ?? 16_384, maxConcurrentStreams: 250 }, maxSessionMemory: 20 });
  h2.setTimeout(idleTimeoutMs);
  // HTTP/2 needs no stream timer of its own: a stream exists only once its headers have arrived
  // (their size capped by maxHeaderListSize), a session with no frames at all is closed by the
  // idle timeout, and a stream waiting on its upstream is bounded by the upstream and wake timeouts.
  const sessions = new Set<ServerHttp2Session>();
  h2.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  h2.on("sessionError", (error) => logger.debug({ err: error }, "http/2 session error"));
  h2.on("request", (req, res) => {
    try {
      dispatcher.exchange(http2Exchange(req, res));
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
      exchange: (exchange) => dispatcher.exchange(exchange),
      upgrade: (request, head) => openTunnel(tunnelContext, request, head),
      refused: (status, reason) => {
        stats.counters.badRequests++;
        logger.debug({ status, reason }, "refused a malformed HTTP/1.1 request");
      },
      fault: (error, where) => logger.event("ERROR", { err: error }, where),
    },
  );
  // The TLS listener's limit: the routes file's, else the default (applied once it is bound).
  let tlsLimit = part(defaultMaxConnections);
  let listeners: Listeners | undefined = undefined;
  const source = new RouteSource(paths.routes, logger, (table) => {
    tlsLimit = part(table.limits?.maxConnections ?? defaultMaxConnections);
    if (listeners) listeners.tlsMaxConnections = tlsLimit;
    perAddress.limit = part(table.limits?.maxConnectionsPerAddress ?? defaultPerAddress);
    // A name refused a moment ago may have a route and a certificate now.
    certs.forgetMisses();
    stats.retainHosts((host) => table.hasHost(host));
  });
  await source.start();
  // The panel's secret: read before the first request, then checked in the background.
  const forwarding = new ForwardingSecret(forwardingSecretFile(stateDir), logger);
  await forwarding.start();
  const passageContext: PassageContext = { stats, logger, origins, upstreams, upstreamTimeoutMs, accessLog: options.accessLog ?? true, forwarding };
  const dispatcher = new Dispatcher({ passage: passageContext, certs, source, paths, sitesDir: join(stateDir, "sites") });

  const tunnelContext: TunnelContext = {
    stats,
    logger,
    upstreams,
    upstreamTimeoutMs,
    handshakeTimeoutMs: (options.wakeTimeoutMs ?? 60_000) + upstreamTimeoutMs,
    idleTimeoutMs,
    route: (host, url) => source.table.match(host, url),
    hostAllowed: (socket: TLSSocket, host: string) => dispatcher.hostAllowed(socket, host),
    forwarding,
  };

  const factory: ListenerFactory = {
    tls: () => {
      const tls = createTlsListener({ certs, logger, stats, perAddress, sockets, handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000 });
      // ALPN decides: HTTP/2 to node:http2, HTTP/1.1 (or no ALPN) to snitch-proxy's own engine.
      tls.on("secureConnection", (socket: TLSSocket) => {
        if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
        else front.attach(socket);
      });
      return tls;
    },
    plain: () =>
      createPlainServer({
        paths,
        publicHttpsPort: () => publicHttpsPort,
        logger,
        stats,
        perAddress,
        maxHeaderBytes: options.maxHeaderBytes ?? 16_384,
        headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
        idleTimeoutMs,
        checkingIntervalMs: options.connectionsCheckingIntervalMs ?? 1000,
      }),
  };
  const bound = await Listeners.open(factory, options.https, options.http, { tls: tlsLimit, plain: part(defaultMaxConnections) });
  listeners = bound;
  const httpsAddress = bound.httpsAddress;
  const httpAddress = bound.httpAddress;

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
    get httpsAddress() {
      return bound.httpsAddress;
    },
    get httpAddress() {
      return bound.httpAddress;
    },
    stats,
    routes: () => source.table,
    reloadRoutes: () => source.reload(),
    setMaxConnections(limit: number) {
      if (!Number.isInteger(limit) || limit < 1) throw new SnitchProxyError("SNITCH_ERR_LIMIT_INVALID", `setting max connections: ${limit} is not a positive whole number`);
      defaultMaxConnections = limit;
      tlsLimit = part(limit);
      bound.maxConnections = part(limit);
      logger.event("CONFIG_RELOADED", { what: "limits", maxConnections: limit });
    },
    async move(https: Listen, http: Listen | undefined, httpsPort = publicHttpsPort) {
      await bound.move(https, http);
      publicHttpsPort = httpsPort;
      const at = bound.httpsAddress;
      const plainAt = bound.httpAddress;
      logger.event("CONFIG_RELOADED", { what: "listen", https: `${at.address}:${String(at.port)}`, http: plainAt ? `${plainAt.address}:${String(plainAt.port)}` : undefined });
    },
    async stop(graceMs = 5000) {
      clearInterval(reporter);
      forwarding.stop();
      await source.stop();
      // Idle keep-alive connections would hold close() open; busy ones get the grace.
      const closing = bound.close();
      front.stop();
      for (const session of sessions) session.close();
      const grace = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
        bound.closeAllPlain();
      }, graceMs);
      await closing;
      clearTimeout(grace);
      origins.close();
      if (!options.activator) activator.close();
      await stopStats?.();
    },
  };
}

