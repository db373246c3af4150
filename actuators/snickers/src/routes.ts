// snickers' routes: one fragment per service (`proxy/routes.d/<id>.json`), and the combined file
// snitch-proxy reads (`proxy/routes.json`), made from all of them once per batch, with what comes
// from the server spec (the proxy's connection limit and where it listens, and the box's own route:
// its panel on its hostname): the proxy reads no spec.
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { CoyoteLogger } from "@coyote/log";
import { BOX_OWNER } from "./certificate-meta.ts";
import { AUTOCONFIG_LABEL, FILE_SHARING_LABEL, MTA_STS_LABEL, MTA_STS_POLICY_PATH, SchemaVersion, ServiceId, WebHostname, proxyListenFor, publishedMailName, publishesMtaSts, proxyRuntimePaths, staticRootFolder, type ProxyListen, type ProxyRuntimePaths, type ProxyRoutes, type ServerSpec, type ServiceSpec } from "@coyote/spec";

/** One route of `proxy/routes.json`. */
export type Route = ProxyRoutes["routes"][number];

/** One service's routes: `proxy/routes.d/<id>.json`, combined into `proxy/routes.json` on commit. */
export const RoutesFragment = z.strictObject({
  schemaVersion: SchemaVersion,
  serviceId: ServiceId,
  hosts: z.array(WebHostname),
  routes: z.array(z.unknown()),
});
/** A parsed routes fragment. */
export type RoutesFragment = z.infer<typeof RoutesFragment>;

/** The folders and files of snickers in a state folder (the contract is in `@coyote/spec`). */
export const snickersPaths: (stateDir: string) => ProxyRuntimePaths = proxyRuntimePaths;

/** The paths {@link snickersPaths} returns. */
export type SnickersPaths = ProxyRuntimePaths;

/** The path prefix mail apps ask under `autoconfig.<domain>` (Thunderbird's `/mail/config-v1.1.xml`). */
export const AUTOCONFIG_PREFIX = "/mail/";

/** The path prefix mail apps ask under a mail domain itself (`/.well-known/autoconfig/mail/config-v1.1.xml`). */
export const WELL_KNOWN_AUTOCONFIG_PREFIX = "/.well-known/autoconfig/";

/** The path prefix MTA-STS senders ask under `mta-sts.<domain>`: the policy file alone. */
export const MTA_STS_PREFIX = MTA_STS_POLICY_PATH;

/** A hostname a service's routes name, and why (for errors that name what is taken). */
export interface HostClaim {
  readonly host: string;
  /** For people: `web hostname shop.example`, `autoconfig name autoconfig.shop.example of mail domain shop.example`. */
  readonly what: string;
}

/** The box's names a service's routes depend on. */
export type RoutesServer = Pick<ServerSpec, "hostname" | "certificates">;

/** One name mail software asks under a mail domain, routed to the panel. */
interface MailName {
  readonly domain: string;
  /** `<label>.<domain>`. */
  readonly name: string;
  /** For people: `autoconfig name`, `MTA-STS policy host`. */
  readonly what: string;
  /** The path prefix the panel answers under it. */
  readonly prefix: string;
  /** Whether a site on `*.<domain>` covers that name (the site then keeps its other paths). */
  readonly wildcard: boolean;
}

/** What a service routes of mail software's lookups for one of its mail domains. */
interface MailDomainNames {
  readonly domain: string;
  readonly names: readonly MailName[];
  /** Whether the domain itself is a web hostname of the service (its well-known autoconfig path is then routed). */
  readonly site: boolean;
}

/**
 * The names mail software asks under each mail domain of a service with mail (every domain of its
 * spec is a mail domain, as Postfix hosts them): mail apps' `autoconfig.<domain>` and, with ACME
 * certificates only, the MTA-STS policy host `mta-sts.<domain>` (with the local CA, senders
 * enforcing the policy could not validate the box's certificate and would refuse mail). A name is
 * routed when it leads to the box: dnsconf publishes it (`publishedMailName`, the same rule), or a
 * site on `*.<domain>` is served here; not when the service names it as a web hostname, whose site
 * then answers it. The domain's well-known autoconfig path is routed only on a domain the
 * service's site answers: a domain with mail alone does not lead to the box, and asking a
 * certificate for it would fail.
 */
function mailNamesOf(spec: ServiceSpec, server: RoutesServer): MailDomainNames[] {
  if (spec.mail === undefined) return [];
  const web = new Set(spec.web?.hostnames ?? []);
  const kinds = [
    { label: AUTOCONFIG_LABEL, what: "autoconfig name", prefix: AUTOCONFIG_PREFIX },
    ...(publishesMtaSts(server) ? [{ label: MTA_STS_LABEL, what: "MTA-STS policy host", prefix: MTA_STS_PREFIX }] : []),
  ];
  return spec.domains.map((domain) => {
    const wildcard = web.has(`*.${domain.name}`);
    const names = kinds.flatMap(({ label, what, prefix }): MailName[] => {
      const candidate = `${label}.${domain.name}`;
      const routed = publishedMailName(spec, domain, label, server) !== undefined || (wildcard && !web.has(candidate) && WebHostname.safeParse(candidate).success);
      return routed ? [{ domain: domain.name, name: candidate, what, prefix, wildcard }] : [];
    });
    return { domain: domain.name, names, site: web.has(domain.name) };
  });
}

/** One file sharing host of a service: `upload.<domain>`, which Prosody's upload service answers. */
interface UploadName {
  readonly domain: string;
  readonly name: string;
}

/**
 * The file sharing hosts of a service with `xmpp.fileSharing`: `upload.<domain>` for each of its
 * domains where that name leads to the box. In a zone the box serves, it does where dnsconf
 * publishes it (`publishedMailName`, the same rule as mail's names); outside them, its owner points
 * it at the box, as the XMPP domain itself. Never a web hostname of the service (its site answers
 * it) nor another of its domains.
 */
function uploadNamesOf(spec: ServiceSpec, server: RoutesServer): UploadName[] {
  if (spec.xmpp?.fileSharing !== true) return [];
  return spec.domains.flatMap((domain): UploadName[] => {
    // The rule for a zone of the box, whose records the spec lists; outside one, the same checks on the name.
    const name = publishedMailName(spec, domain.authoritative ? domain : { ...domain, authoritative: true, records: [] }, FILE_SHARING_LABEL, server);
    return name === undefined ? [] : [{ domain: domain.name, name }];
  });
}

/**
 * The hostnames a service's routes name, each once: its web hostnames, then the names mail
 * software asks under its mail domains, then its file sharing hosts. Each gets a certificate, and
 * no other service may route it.
 */
export function hostClaimsOf(spec: ServiceSpec, server: RoutesServer): HostClaim[] {
  const claims = new Map<string, string>();
  for (const host of spec.web?.hostnames ?? []) claims.set(host, `web hostname ${host}`);
  for (const { names } of mailNamesOf(spec, server)) {
    for (const { domain, name, what } of names) claims.set(name, `${what} ${name} of mail domain ${domain}`);
  }
  for (const { domain, name } of uploadNamesOf(spec, server)) claims.set(name, `file sharing host ${name} of XMPP domain ${domain}`);
  return [...claims].map(([host, what]) => ({ host, what }));
}

/** The hostnames of {@link hostClaimsOf}. */
export function hostsOf(spec: ServiceSpec, server: RoutesServer): string[] {
  return hostClaimsOf(spec, server).map((claim) => claim.host);
}

/**
 * The routes a service's spec asks for: every web hostname, path `/`, to its backend; and the
 * lookups of mail software to the panel (the server spec's `ports.panel` on loopback): mail apps'
 * autoconfig, `autoconfig.<domain>` under `/mail/` and `<domain>` under
 * `/.well-known/autoconfig/`, answered with `config-v1.1.xml`; and, with ACME certificates,
 * `mta-sts.<domain>` under `/.well-known/mta-sts.txt`, answered with the MTA-STS policy (see
 * {@link mailNamesOf} for which); with `xmpp.fileSharing`, `upload.<domain>` under `/` to Prosody's
 * loopback HTTP port (the server spec's `xmpp.httpPort`, see {@link uploadNamesOf} for which). The
 * proxy takes the longest matching prefix, so the service's
 * site on the domain keeps every other path (and a site on `*.<domain>` the rest of those names).
 * A static backend's root is resolved inside the service's own site folder (`<state>/sites/<id>`).
 */
export function routesFor(spec: ServiceSpec, stateDir: string, server: ServerSpec): Route[] {
  const routes: Route[] = [];
  const web = spec.web;
  const hsts = web?.hsts === true ? { hsts: true } : {};
  let upstream: Route["upstream"] | undefined;
  if (web) {
    const backend = web.backend;
    upstream =
      backend.kind === "static" ? { kind: "static", root: staticRootFolder(stateDir, spec.id, backend.root) }
      : backend.kind === "upstream" ? { kind: "address", address: backend.address }
      : { kind: "unit", unit: spec.id };
    for (const host of web.hostnames) routes.push({ host, pathPrefix: "/", serviceId: spec.id, upstream, ...hsts });
  }
  const panel = panelUpstream(server);
  for (const { domain, names, site } of mailNamesOf(spec, server)) {
    for (const { name, prefix, wildcard } of names) {
      routes.push({ host: name, pathPrefix: prefix, serviceId: spec.id, upstream: panel, ...(wildcard ? hsts : {}) });
      // The proxy looks a wildcard up only for a host with no routes of its own.
      if (wildcard && upstream !== undefined) routes.push({ host: name, pathPrefix: "/", serviceId: spec.id, upstream, ...hsts });
    }
    // On a host the site answers, with the site's HSTS choice.
    if (site) routes.push({ host: domain, pathPrefix: WELL_KNOWN_AUTOCONFIG_PREFIX, serviceId: spec.id, upstream: panel, ...hsts });
  }
  // Prosody's HTTP server on loopback, which tells its hosts apart by the Host the proxy passes on.
  const prosody: Route["upstream"] = { kind: "address", address: `127.0.0.1:${server.xmpp.httpPort}` };
  for (const { name } of uploadNamesOf(spec, server)) routes.push({ host: name, pathPrefix: "/", serviceId: spec.id, upstream: prosody });
  return routes;
}

/** The text of a service's fragment, or undefined when it routes nothing. */
export function fragmentTextOf(spec: ServiceSpec, stateDir: string, server: ServerSpec): string | undefined {
  const routes = routesFor(spec, stateDir, server);
  if (routes.length === 0) return undefined;
  const fragment: RoutesFragment = { schemaVersion: 1, serviceId: spec.id, hosts: [...new Set(routes.map((r) => r.host))], routes };
  return `${JSON.stringify(fragment, null, 2)}\n`;
}

/** The panel's address: its port (`ports.panel`) on loopback, where it alone listens. */
export function panelUpstream(server: Pick<ServerSpec, "ports">): Route["upstream"] {
  return { kind: "address", address: `127.0.0.1:${String(server.ports.panel)}` };
}

/**
 * The box's own routes, owned by no service ({@link BOX_OWNER}): its hostname, every path, to the
 * panel, where the admin activates and runs the box, with Strict-Transport-Security (the plain
 * HTTP listener sends every other request to HTTPS). The certificate is the one snickers keeps for
 * that hostname (box-certificate.ts); no service may claim the name (claims.ts).
 */
export function boxRoutesFor(server: Pick<ServerSpec, "hostname" | "ports">): Route[] {
  return [{ host: server.hostname, pathPrefix: "/", serviceId: BOX_OWNER, upstream: panelUpstream(server), hsts: true }];
}

/** Who routes each hostname: the first fragment that names it. */
export function hostOwners(all: ReadonlyMap<string, { fragment: RoutesFragment }>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const { fragment } of all.values()) for (const host of fragment.hosts) if (!owners.has(host)) owners.set(host, fragment.serviceId);
  return owners;
}

/**
 * The box's routes ({@link boxRoutesFor}) first, then every fragment's routes. Two services
 * routing the same host and prefix should not happen (plan refuses a taken hostname); when it
 * does, the first keeps it and the other is logged. A fragment's route on the box's own hostname
 * (plan refuses that too; a fragment written before the server spec named that hostname may hold
 * one) is left out, whatever its path: the whole name is the panel's.
 */
export function combineRoutes(all: ReadonlyMap<string, { fragment: RoutesFragment }>, logger: CoyoteLogger, box: readonly Route[] = []): Route[] {
  const routes: Route[] = [...box];
  const seen = new Map<string, string>();
  const boxHosts = new Set(box.map((route) => route.host));
  for (const route of box) seen.set(`${route.host}${route.pathPrefix}`, route.serviceId);
  for (const [name, { fragment }] of all) {
    for (const raw of fragment.routes) {
      const route = raw as Route;
      if (boxHosts.has(route.host)) {
        logger.event("ERROR", { host: route.host, serviceId: fragment.serviceId, fragment: name }, "a service routes the box's own hostname; the panel keeps it");
        continue;
      }
      const key = `${route.host}${route.pathPrefix}`;
      const owner = seen.get(key);
      if (owner !== undefined) {
        logger.event("ERROR", { host: route.host, serviceId: fragment.serviceId, owner, fragment: name }, "two services route the same hostname; the first keeps it");
        continue;
      }
      seen.set(key, fragment.serviceId);
      routes.push(route);
    }
  }
  return routes;
}

/** The part of `proxy/routes.json` that comes from the server spec rather than the services. */
export interface ProxySettings {
  readonly limits: { readonly maxConnections: number };
  readonly listen: ProxyListen;
  /** The box's own routes, first in the file ({@link boxRoutesFor}). */
  readonly box: readonly Route[];
}

/** The proxy settings a server spec asks for. */
export function proxySettingsFor(server: ServerSpec): ProxySettings {
  return { limits: { maxConnections: server.limits.maxConnections }, listen: proxyListenFor(server), box: boxRoutesFor(server) };
}

/**
 * Whether a combined routes file carries `settings` (a file written before a field existed does
 * not, nor one whose box routes name a former hostname or panel port).
 */
export function carriesSettings(doc: ProxyRoutes | undefined, settings: ProxySettings): boolean {
  const listen = doc?.listen;
  const first = doc?.routes.slice(0, settings.box.length) ?? [];
  return (
    isDeepStrictEqual(first, settings.box) &&
    doc?.limits?.maxConnections === settings.limits.maxConnections &&
    doc.limits.maxConnectionsPerAddress === undefined &&
    listen !== undefined &&
    listen.host === settings.listen.host &&
    listen.https === settings.listen.https &&
    listen.http === settings.listen.http
  );
}
