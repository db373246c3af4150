// snickers' routes: one fragment per service (`proxy/routes.d/<id>.json`), and the combined file
// snitch-proxy reads (`proxy/routes.json`), made from all of them once per batch, with the proxy's
// settings from the server spec (its connection limit and where it listens): the proxy reads no spec.
import { z } from "zod";
import type { CoyoteLogger } from "@coyote/log";
import { SchemaVersion, ServiceId, WebHostname, proxyListenFor, proxyRuntimePaths, staticRootFolder, type ProxyListen, type ProxyRuntimePaths, type ProxyRoutes, type ServerSpec, type ServiceSpec } from "@coyote/spec";

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

/** A hostname a service's routes name, and why (for errors that name what is taken). */
export interface HostClaim {
  readonly host: string;
  /** For people: `web hostname shop.example`, `autoconfig name autoconfig.shop.example of mail domain shop.example`. */
  readonly what: string;
}

/** What a service routes of mail apps' autoconfig for one of its mail domains. */
interface AutoconfigNames {
  readonly domain: string;
  /** `autoconfig.<domain>`, when it is routed to the panel. */
  readonly name: string | undefined;
  /** Whether a site on `*.<domain>` covers that name (the site then keeps its other paths). */
  readonly wildcard: boolean;
  /** Whether the domain itself is a web hostname of the service (its well-known path is then routed). */
  readonly site: boolean;
}

/**
 * Mail apps' autoconfig names of a service with mail (every domain of its spec is a mail domain,
 * as Postfix hosts them). `autoconfig.<domain>` is routed when it leads to the box: the box serves
 * the domain's zone (dnsconf publishes the name) and the spec gives the name no records of its
 * own, or a site on `*.<domain>` is served here; not when the service names it as a web hostname,
 * whose site then answers it. The domain's well-known path is routed only on a domain the
 * service's site answers: a domain with mail alone does not lead to the box, and asking a
 * certificate for it would fail.
 */
function autoconfigNamesOf(spec: ServiceSpec): AutoconfigNames[] {
  if (spec.mail === undefined) return [];
  const web = new Set(spec.web?.hostnames ?? []);
  return spec.domains.map((domain) => {
    const wildcard = web.has(`*.${domain.name}`);
    const candidate = `autoconfig.${domain.name}`;
    const published = domain.authoritative && !domain.records.some((record) => record.name === "autoconfig");
    const name = (published || wildcard) && !web.has(candidate) && WebHostname.safeParse(candidate).success ? candidate : undefined;
    return { domain: domain.name, name, wildcard, site: web.has(domain.name) };
  });
}

/**
 * The hostnames a service's routes name, each once: its web hostnames, then the autoconfig names
 * of its mail domains. Each gets a certificate, and no other service may route it.
 */
export function hostClaimsOf(spec: ServiceSpec): HostClaim[] {
  const claims = new Map<string, string>();
  for (const host of spec.web?.hostnames ?? []) claims.set(host, `web hostname ${host}`);
  for (const { domain, name } of autoconfigNamesOf(spec)) {
    if (name !== undefined) claims.set(name, `autoconfig name ${name} of mail domain ${domain}`);
  }
  return [...claims].map(([host, what]) => ({ host, what }));
}

/** The hostnames of {@link hostClaimsOf}. */
export function hostsOf(spec: ServiceSpec): string[] {
  return hostClaimsOf(spec).map((claim) => claim.host);
}

/**
 * The routes a service's spec asks for: every web hostname, path `/`, to its backend; and mail
 * apps' two autoconfig lookups to the panel (the server spec's `ports.panel` on loopback), which
 * answers `config-v1.1.xml`: `autoconfig.<domain>` under `/mail/`, and `<domain>` under
 * `/.well-known/autoconfig/` (see {@link autoconfigNamesOf} for which). The proxy takes the
 * longest matching prefix, so the service's site on the domain keeps every other path (and a
 * site on `*.<domain>` the rest of `autoconfig.<domain>`). A static backend's root is resolved
 * inside the service's own site folder (`<state>/sites/<id>`).
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
  const panel: Route["upstream"] = { kind: "address", address: `127.0.0.1:${server.ports.panel}` };
  for (const { domain, name, wildcard, site } of autoconfigNamesOf(spec)) {
    if (name !== undefined) {
      routes.push({ host: name, pathPrefix: AUTOCONFIG_PREFIX, serviceId: spec.id, upstream: panel, ...(wildcard ? hsts : {}) });
      // The proxy looks a wildcard up only for a host with no routes of its own.
      if (wildcard && upstream !== undefined) routes.push({ host: name, pathPrefix: "/", serviceId: spec.id, upstream, ...hsts });
    }
    // On a host the site answers, with the site's HSTS choice.
    if (site) routes.push({ host: domain, pathPrefix: WELL_KNOWN_AUTOCONFIG_PREFIX, serviceId: spec.id, upstream: panel, ...hsts });
  }
  return routes;
}

/** The text of a service's fragment, or undefined when it routes nothing. */
export function fragmentTextOf(spec: ServiceSpec, stateDir: string, server: ServerSpec): string | undefined {
  const routes = routesFor(spec, stateDir, server);
  if (routes.length === 0) return undefined;
  const fragment: RoutesFragment = { schemaVersion: 1, serviceId: spec.id, hosts: [...new Set(routes.map((r) => r.host))], routes };
  return `${JSON.stringify(fragment, null, 2)}\n`;
}

/** Who routes each hostname: the first fragment that names it. */
export function hostOwners(all: ReadonlyMap<string, { fragment: RoutesFragment }>): Map<string, string> {
  const owners = new Map<string, string>();
  for (const { fragment } of all.values()) for (const host of fragment.hosts) if (!owners.has(host)) owners.set(host, fragment.serviceId);
  return owners;
}

/**
 * Every fragment's routes in one list. Two services routing the same host and prefix should not
 * happen (plan refuses a taken hostname); when it does, the first keeps it and the other is logged.
 */
export function combineRoutes(all: ReadonlyMap<string, { fragment: RoutesFragment }>, logger: CoyoteLogger): Route[] {
  const routes: Route[] = [];
  const seen = new Map<string, string>();
  for (const [name, { fragment }] of all) {
    for (const raw of fragment.routes) {
      const route = raw as Route;
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
}

/** The proxy settings a server spec asks for. */
export function proxySettingsFor(server: ServerSpec): ProxySettings {
  return { limits: { maxConnections: server.limits.maxConnections }, listen: proxyListenFor(server) };
}

/** Whether a combined routes file carries `settings` (a file written before a field existed does not). */
export function carriesSettings(doc: ProxyRoutes | undefined, settings: ProxySettings): boolean {
  const listen = doc?.listen;
  return (
    doc?.limits?.maxConnections === settings.limits.maxConnections &&
    doc.limits.maxConnectionsPerAddress === undefined &&
    listen !== undefined &&
    listen.host === settings.listen.host &&
    listen.https === settings.listen.https &&
    listen.http === settings.listen.http
  );
}
