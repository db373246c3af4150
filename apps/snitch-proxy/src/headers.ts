import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { FORWARDED_BY_HEADER } from "./forwarding-secret.ts";

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones HTTP/2
 * forbids: a proxy never forwards them, in either direction. Node's HTTP/2 response throws on
 * most of these, which is the bug that retired http-proxy 1.18 here (docs/ARCHITECTURE.md, "Dependencies").
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "host",
  // Answered by the proxy itself (100 Continue when it starts reading the body).
  "expect",
]);

/**
 * Forwarding headers a client may not send: snitch-proxy is the box's edge, so whatever an
 * upstream reads about the client (its address, scheme, host, port) is what the proxy saw, never
 * what the client claims. Every `x-forwarded-*` and `x-coyote-*` field is dropped too (by prefix,
 * in {@link isForwarding}); the `x-coyote-` names are the box's own, such as the panel's
 * forwarding secret.
 */
const CLIENT_FORWARDING = new Set(["forwarded", "x-real-ip", "x-client-ip"]);

/** Whether a client's header is a forwarding header, which only the proxy may set. */
function isForwarding(name: string): boolean {
  if (CLIENT_FORWARDING.has(name)) return true;
  // Most names do not start with "x": one comparison for them.
  return name.charCodeAt(0) === 120 /* "x" */ && (name.startsWith("x-forwarded-") || name.startsWith("x-coyote-"));
}

/** The names a `Connection` header lists: hop-by-hop too, for this one message. */
function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // The usual values list no header: answered without splitting (this runs for every message).
  if (typeof value === "string" && (value === "keep-alive" || value === "close" || value === "Keep-Alive" || value === "Close")) return undefined;
  const names = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(",") : value).split(",")) {
    const name = part.trim().toLowerCase();
    if (name !== "" && name !== "close" && name !== "keep-alive") names.add(name);
  }
  return names.size === 0 ? undefined : names;
}

/**
 * The Strict-Transport-Security value for routes that opt in: a year, the host alone (a parent
 * domain's subdomains may be other customers' sites, so no includeSubDomains).
 */
export const HSTS = "max-age=31536000";

/** What the proxy knows about a request that the upstream should know too. */
export interface ForwardedInfo {
  /** The host the client asked for (from `Host` or `:authority`, without the port); sent when the request has neither. */
  readonly host: string;
  /** The client's address. */
  readonly clientAddress: string;
  /** `https` or `http`. */
  readonly proto: string;
  /** The request id (new, or the client's own when well formed). */
  readonly requestId: string;
  /** The panel's forwarding secret, sent as `x-coyote-forwarded-by` (the panel's routes only). */
  readonly forwardedBy?: string | undefined;
}

/**
 * The headers to send upstream: the client's, minus hop-by-hop headers, HTTP/2 pseudo headers and
 * every forwarding header the client sent (`Forwarded`, `X-Real-IP`, `X-Forwarded-*`,
 * `X-Coyote-*`), with `Host` and `X-Forwarded-Host` set to the host the client asked for (port
 * included), `X-Forwarded-For` to the client's address alone, `X-Forwarded-Proto`, the request id
 * and, when given, `X-Coyote-Forwarded-By` added.
 * @param keepUpgrade keep `Connection: upgrade` and `Upgrade` (a websocket handshake).
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, info: ForwardedInfo, keepUpgrade = false): OutgoingHttpHeaders {
  const listed = connectionListed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (name.charCodeAt(0) === 58 /* ":" */ || HOP_BY_HOP.has(name) || isForwarding(name) || listed?.has(name)) continue;
    out[name] = incoming[name];
  }
  const host = (incoming[":authority"] as string | undefined) ?? incoming.host ?? info.host;
  out.host = host;
  out["x-forwarded-for"] = info.clientAddress;
  out["x-forwarded-proto"] = info.proto;
  // The Host as the client sent it, port included: what its browser puts in Origin, which the
  // panel's framework compares with this header once the panel trusts it.
  out["x-forwarded-host"] = host;
  out["x-request-id"] = info.requestId;
  if (info.forwardedBy !== undefined) out[FORWARDED_BY_HEADER] = info.forwardedBy;
  if (keepUpgrade) {
    out.connection = "upgrade";
    if (incoming.upgrade !== undefined) out.upgrade = incoming.upgrade;
  }
  return out;
}

/** The headers to send the client: the upstream's, minus hop-by-hop ones. */
export function clientResponseHeaders(incoming: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const listed = connectionListed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = incoming[name];
  }
  out["x-request-id"] = requestId;
  return out;
}

/**
 * The host a request asked for, lower-cased and without port or trailing dot; undefined when
 * missing or malformed (a 400 for the client). HTTP/2 carries it in `:authority`.
 */
export function requestHost(headers: IncomingHttpHeaders): string | undefined {
  const raw = (headers[":authority"] as string | undefined) ?? headers.host;
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 260) return undefined;
  // The same few names arrive again and again: each is checked once (the cache is bounded).
  const known = hosts.get(raw);
  if (known !== undefined) return known === false ? undefined : known;
  const host = parseHost(raw);
  if (hosts.size >= 4096) hosts.clear();
  hosts.set(raw, host ?? false);
  return host;
}

/** Host header values already read: the name, or false for a malformed one. */
const hosts = new Map<string, string | false>();

function parseHost(raw: string): string | undefined {
  let host = raw.toLowerCase();
  if (host.startsWith("[")) return undefined;
  const colon = host.lastIndexOf(":");
  if (colon >= 0) {
    const port = host.slice(colon + 1);
    if (!/^\d{1,5}$/.test(port)) return undefined;
    host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(host)) return undefined;
  return host;
}
