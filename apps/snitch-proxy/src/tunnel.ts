// HTTP/1.1 upgrades (websockets): the request is checked like any other (Host, SNI, route), sent
// to its upstream with node:http, and on a 101 the two sockets are joined into a tunnel. Every
// state has a deadline: the wake and upstream handshake together, then an idle timeout for the
// tunnel, where traffic either way counts as activity. Whatever is refused is answered and the
// socket destroyed, so a refused client cannot keep a connection slot by never closing its side.
import { STATUS_CODES, request as httpRequest, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { requestIdFrom, type CoyoteLogger } from "@coyote/log";
import type { UpgradeRequest } from "./http1/front.ts";
import { PANEL_SERVICE_ID, type ForwardingSecret } from "./forwarding-secret.ts";
import { requestHost, upstreamRequestHeaders } from "./headers.ts";
import type { Route } from "./routes.ts";
import type { TrafficStats } from "./stats.ts";
import type { Target, Upstreams } from "./upstreams.ts";

/** What a tunnel needs from the proxy. */
export interface TunnelContext {
  readonly stats: TrafficStats;
  readonly logger: CoyoteLogger;
  readonly upstreams: Upstreams;
  /** Time for the upstream to answer the upgrade request, ms; then 504. */
  readonly upstreamTimeoutMs: number;
  /** Time from the hand-over to the 101, whatever happens meanwhile (waking included), ms. */
  readonly handshakeTimeoutMs: number;
  /** A tunnel with no traffic either way for this long is closed, ms. */
  readonly idleTimeoutMs: number;
  /** The route for a host and target, if any. */
  route(host: string, url: string): Route | undefined;
  /** Whether a connection made for the socket's SNI name may serve `host` (else 421). */
  hostAllowed(socket: TLSSocket, host: string): boolean;
  /** The panel's forwarding secret, sent on the box's own routes only. */
  readonly forwarding: ForwardingSecret;
}

/** Header fields in the upstream's 101; more is a 502. */
const MAX_FIELDS = 256;
/** Bytes of the upstream's 101 head; more is a 502. */
const MAX_HEAD_BYTES = 65_536;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or other controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** How long a refused client may take to read its answer before the socket is destroyed, ms. */
const REFUSAL_LINGER_MS = 1000;

/**
 * Answers a refused upgrade, ends the connection, and destroys the socket after a short linger
 * (time for the answer to reach the client): half-closed only, a client that never closes its
 * side would keep the connection forever.
 */
export function refuseUpgrade(socket: Socket, status: number, requestId: string): void {
  if (socket.destroyed) return;
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
  socket.end(`HTTP/1.1 ${String(status)} ${STATUS_CODES[status] ?? ""}\r\nconnection: close\r\ncontent-length: 0\r\nx-request-id: ${requestId}\r\n\r\n`);
}

/** Whether a 101 from the upstream may be passed to the client as it is; a reason when not. */
export function invalidSwitch(response: IncomingMessage): string | undefined {
  const raw = response.rawHeaders;
  if (raw.length / 2 > MAX_FIELDS) return `more than ${String(MAX_FIELDS)} header fields`;
  let bytes = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    const value = raw[i + 1] ?? "";
    bytes += name.length + value.length + 4;
    if (!TOKEN.test(name)) return `the header name ${JSON.stringify(name.slice(0, 40))} is not a token`;
    if (!FIELD_VALUE.test(value)) return `the ${name.toLowerCase()} header has a control character`;
  }
  if (bytes > MAX_HEAD_BYTES) return `a head larger than ${String(MAX_HEAD_BYTES)} bytes`;
  return undefined;
}

/**
 * Serves an upgrade request handed over by the HTTP/1.1 engine, with the bytes read past its head.
 * It owns the socket from now on: every way out destroys it.
 */
export function openTunnel(context: TunnelContext, req: UpgradeRequest, head: Buffer): void {
  const { stats, logger } = context;
  const socket = req.socket;
  const requestId = requestIdFrom(req.headers);
  socket.on("error", () => socket.destroy());
  /** Whether the tunnel is open (101 sent) or the upgrade refused: either way, decided. */
  let switched = false;
  let refused = false;
  const fail = (status: number) => {
    if (switched || refused) return;
    refused = true;
    clearTimeout(deadline);
    refuseUpgrade(socket, status, requestId);
  };
  // One deadline for everything before the 101, however the time is spent (waking, connecting,
  // the upstream's answer): the engine's own timers let go of the socket at the hand-over.
  const deadline = setTimeout(() => {
    logger.debug({ requestId, timeoutMs: context.handshakeTimeoutMs }, "upgrade handshake took too long");
    fail(504);
  }, context.handshakeTimeoutMs);
  deadline.unref();
  socket.once("close", () => clearTimeout(deadline));
  const host = requestHost(req.headers);
  if (host === undefined) {
    stats.counters.badRequests++;
    fail(400);
    return;
  }
  // The same rule as for every other request (RFC 9110 §7.4): no site over another's connection.
  if (!context.hostAllowed(socket, host)) {
    fail(421);
    return;
  }
  const route = context.route(host, req.url);
  if (route === undefined || route.upstream.kind === "static") {
    fail(404);
    return;
  }
  const upstream = route.upstream;
  const counter = stats.host(route.host);

  const join = (proxyRes: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
    upstreamSocket.on("error", () => upstreamSocket.destroy());
    // The handshake's timeout is over: the tunnel's idleness is measured on the client's side.
    upstreamSocket.setTimeout(0);
    const invalid = invalidSwitch(proxyRes);
    // Too late (refused meanwhile, on its deadline) or invalid: the upstream's socket is let go.
    if (invalid !== undefined || socket.destroyed || refused) {
      upstreamSocket.destroy();
      if (invalid !== undefined) {
        stats.counters.upstreamErrors++;
        logger.event("ERROR", { requestId, host, serviceId: route.serviceId, reason: invalid }, "invalid answer from the upstream");
        fail(502);
      }
      return;
    }
    switched = true;
    clearTimeout(deadline);
    const lines = ["HTTP/1.1 101 Switching Protocols"];
    for (let i = 0; i + 1 < proxyRes.rawHeaders.length; i += 2) lines.push(`${proxyRes.rawHeaders[i] ?? ""}: ${proxyRes.rawHeaders[i + 1] ?? ""}`);
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
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      counter.openConnections--;
      if (unitCounter) unitCounter.openConnections--;
      socket.destroy();
      upstreamSocket.destroy();
    };
    socket.on("data", count("bytesIn"));
    upstreamSocket.on("data", count("bytesOut"));
    // The client's socket reads what the client sends and writes what the upstream sends: its
    // timer is reset by traffic in either direction, so it measures the tunnel's idleness.
    socket.setTimeout(context.idleTimeoutMs, () => {
      logger.debug({ requestId, host, timeoutMs: context.idleTimeoutMs }, "closing an idle tunnel");
      close();
    });
    socket.pipe(upstreamSocket).pipe(socket);
    socket.on("close", close);
    upstreamSocket.on("close", close);
  };

  const send = (target: Target) => {
    if (socket.destroyed) return;
    const forwardedBy = route.serviceId === PANEL_SERVICE_ID ? context.forwarding.forPanel() : undefined;
    const headers = upstreamRequestHeaders(req.headers, { host, clientAddress: socket.remoteAddress ?? "", proto: "https", requestId, forwardedBy }, true);
    const proxyReq = httpRequest({ host: target.host, port: target.port, method: req.method, path: req.url, headers, timeout: context.upstreamTimeoutMs });
    socket.once("close", () => {
      if (!switched) proxyReq.destroy();
    });
    proxyReq.on("upgrade", (proxyRes: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
      try {
        join(proxyRes, upstreamSocket, upstreamHead);
      } catch (error) {
        fault(error, upstreamSocket);
      }
    });
    proxyReq.on("response", (proxyRes: IncomingMessage) => {
      // The upstream refused the upgrade: its status is passed on (when it is one), not its body.
      proxyRes.resume();
      const status = proxyRes.statusCode ?? 502;
      fail(status >= 200 && status <= 599 ? status : 502);
    });
    proxyReq.on("timeout", () => {
      if (switched) return;
      stats.counters.upstreamTimeouts++;
      logger.event("ERROR", { requestId, host, serviceId: route.serviceId, timeoutMs: context.upstreamTimeoutMs }, "upstream too slow");
      fail(504);
      proxyReq.destroy();
    });
    proxyReq.on("error", (error) => {
      if (switched || socket.destroyed) return;
      logger.event("ERROR", { err: error, requestId, host }, "websocket upstream unreachable");
      fail(502);
    });
    proxyReq.end();
  };

  /** An exception while this upgrade was served ends it, not the process and every other connection. */
  const fault = (error: unknown, other?: Socket) => {
    logger.event("ERROR", { err: error, requestId, host }, "serving an upgrade");
    socket.destroy();
    other?.destroy();
  };
  const sendGuarded = (target: Target) => {
    try {
      send(target);
    } catch (error) {
      fault(error);
    }
  };

  let resolved: Target | Promise<Target>;
  try {
    resolved = context.upstreams.resolve(upstream, requestId);
  } catch {
    fail(502);
    return;
  }
  if (resolved instanceof Promise) resolved.then(sendGuarded, () => fail(503));
  else sendGuarded(resolved);
}
