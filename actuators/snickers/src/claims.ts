// The names a service claims in snickers: those its routes name (routes.ts) and its XMPP domains,
// which get a certificate for Prosody but no route (XMPP clients connect to Prosody, not to the
// proxy; the proxy answers an ACME HTTP-01 challenge whatever the Host). Every claimed name is
// listed once in the `hosts` of the service's fragment (`proxy/routes.d/<id>.json`), so that no
// other service may take it and its certificate is removed once the service no longer claims it.
import { ActuatorError } from "@coyote/actuator";
import type { ServerSpec, ServiceSpec } from "@coyote/spec";
import { boxHostnames } from "./certificates.ts";
import { hostClaimsOf, routesFor, type HostClaim, type RoutesFragment, type RoutesServer } from "./routes.ts";

/**
 * The XMPP domains of a service: every domain of a service with XMPP, as xmppconf serves each as
 * a VirtualHost (and dnsconf publishes its SRV records), users or not. Prosody presents the
 * certificate `proxy/certs/<domain>` for each. Its group chat component, `conference.<domain>`,
 * is reached by the domain's own users through their client connection and is given no
 * certificate of its own by xmppconf, so it gets none here. Its file sharing host,
 * `upload.<domain>`, is reached over HTTPS through the proxy: a routed name (routes.ts), not one of these.
 */
export function xmppDomainsOf(spec: ServiceSpec): string[] {
  return spec.xmpp === undefined ? [] : spec.domains.map((domain) => domain.name);
}

/** A name a service claims, and whether its routes name it (an XMPP domain alone is not routed). */
export interface Claim extends HostClaim {
  readonly routed: boolean;
}

/** Every name a service claims, each once: those its routes name first, then its XMPP domains. */
export function claimsOf(spec: ServiceSpec, server: RoutesServer): Claim[] {
  const claims: Claim[] = hostClaimsOf(spec, server).map((claim) => ({ ...claim, routed: true }));
  const seen = new Set(claims.map((claim) => claim.host));
  for (const domain of xmppDomainsOf(spec)) {
    if (seen.has(domain)) continue;
    seen.add(domain);
    claims.push({ host: domain, what: `XMPP domain ${domain}`, routed: false });
  }
  return claims;
}

/** For people: what writing a fragment with these claims does. */
export function describeClaims(claims: readonly Claim[]): string {
  const routed = claims.filter((claim) => claim.routed).map((claim) => claim.host);
  const unrouted = claims.filter((claim) => !claim.routed).map((claim) => claim.host);
  return [
    ...(routed.length > 0 ? [`route ${routed.join(", ")}`] : []),
    ...(unrouted.length > 0 ? [`claim XMPP domain ${unrouted.join(", ")} (a certificate, no route)`] : []),
  ].join("; ");
}

/**
 * The claimed names whose ACME order answers DNS-01 rather than HTTP-01: a name no route leads to
 * (an XMPP domain alone, whose zone carries no address for it), in a zone of the service the box's
 * built-in DNS server serves (an authoritative domain). Elsewhere HTTP-01 it is, which succeeds
 * once the name's own records lead to the box.
 */
export function dnsChallengeNames(spec: ServiceSpec, claims: readonly Claim[], server: ServerSpec): Set<string> {
  if (server.dns.backend !== "builtin") return new Set();
  const authoritative = new Set(spec.domains.filter((domain) => domain.authoritative).map((domain) => domain.name));
  return new Set(claims.filter((claim) => !claim.routed && authoritative.has(claim.host)).map((claim) => claim.host));
}

/**
 * Refuses a spec that claims a name another service claims (`HostnameTaken`), or that claims the
 * box's own hostname in any way (`HostnameReserved`): as a web hostname, an XMPP domain, or a name
 * mail software or file sharing asks. That name is the box's: snitch-proxy sends it to the panel,
 * where the admin activates and runs the box, and its certificate, kept by snickers itself
 * (box-certificate.ts), is the one the mail and XMPP servers present. Both are terminal: retrying
 * would not help.
 * @param owners which service claims each name (the first fragment that lists it).
 */
export function checkClaims(serviceId: string, claims: readonly HostClaim[], owners: ReadonlyMap<string, string>, server: ServerSpec): void {
  const box = boxHostnames(server);
  const reserved = claims.find((claim) => box.includes(claim.host));
  if (reserved !== undefined) {
    const advice = reserved.what.startsWith("XMPP domain") ? "serve XMPP on another domain" : "choose another hostname";
    throw new ActuatorError("HostnameReserved", `${reserved.what} is the box's own hostname ${reserved.host} (server.hostname), where the panel is served and whose certificate the mail and XMPP servers present; ${advice}`, { terminal: true });
  }
  for (const { host, what } of claims) {
    const owner = owners.get(host);
    if (owner !== undefined && owner !== serviceId) {
      throw new ActuatorError("HostnameTaken", `${what} is already served by service ${owner}`, { terminal: true });
    }
  }
}

/**
 * The text of a service's fragment: its routes ({@link routesFor}) and every name it claims, or
 * undefined when it claims none. A service with no XMPP gets the fragment its routes alone make.
 */
export function claimsFragmentText(spec: ServiceSpec, stateDir: string, server: ServerSpec): string | undefined {
  const routes = routesFor(spec, stateDir, server);
  const hosts = [...new Set([...routes.map((route) => route.host), ...xmppDomainsOf(spec)])];
  if (hosts.length === 0) return undefined;
  const fragment: RoutesFragment = { schemaVersion: 1, serviceId: spec.id, hosts, routes };
  return `${JSON.stringify(fragment, null, 2)}\n`;
}
