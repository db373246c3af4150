// Which domain a signup may take, whether the box serves its whole zone, and the names derived
// from it (the service id, the mailbox's local part). Plain functions over their inputs, so that
// the rules are tested without Next.
import { DomainName, domainConflict, domainNameProblem, heldNames, ServiceId, type ServerSpec, type ServiceSpec } from "@coyote/spec";
import { CrmError } from "../errors.ts";
import { localPartProblem } from "./mail-names.ts";

/** A domain a signup asked for, checked against the box: the name and whether the box serves its zone. */
export type DomainClaim = { readonly ok: true; readonly name: string; readonly authoritative: boolean } | { readonly ok: false; readonly error: string };

/**
 * Labels under the customer domain that the box or common mail and chat clients use themselves
 * (autoconfig lookups, name servers, the panel), so that no customer can take them.
 */
export const RESERVED_LABELS: ReadonlySet<string> = new Set([
  "www",
  "mail",
  "smtp",
  "imap",
  "pop",
  "pop3",
  "xmpp",
  "jabber",
  "conference",
  "upload",
  "ns",
  "ns1",
  "ns2",
  "dns",
  "admin",
  "panel",
  "api",
  "autoconfig",
  "autodiscover",
  "coyote",
]);

/** A typed domain as the shop compares it: trimmed, lowercase, without a trailing dot. */
export function normalizeDomain(input: string): string {
  return input.trim().toLowerCase().replace(/\.$/, "");
}

function within(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * Checks a (normalized) domain against the box's own names. A name one label under the customer
 * domain is a subdomain the box hands out (`authoritative: false`); any other name is the
 * customer's own domain, whose zone the box then serves (`authoritative: true`).
 * @param name the domain, already {@link normalizeDomain normalized}.
 * @param server the box's hostname and customer domain.
 */
export function classifyDomain(name: string, server: Pick<ServerSpec, "hostname" | "customerDomain">): DomainClaim {
  const claim = placeDomain(name, server);
  if (!claim.ok) return claim;
  // Public suffixes, special-use and well-known names, labels clients look up by name: the same
  // rules the state store applies to every customer's spec, checked here to say so on the form.
  const problem = domainNameProblem(name, server);
  return problem === undefined ? claim : { ok: false, error: problem };
}

function placeDomain(name: string, server: Pick<ServerSpec, "hostname" | "customerDomain">): DomainClaim {
  if (name === "") return { ok: false, error: "enter a domain" };
  const valid = DomainName.safeParse(name);
  if (!valid.success) return { ok: false, error: valid.error.issues[0]?.message ?? `not a valid domain name: ${JSON.stringify(name)}` };
  const customerDomain = server.customerDomain;
  if (customerDomain !== undefined) {
    if (name === customerDomain) return { ok: false, error: `${customerDomain} is the box's own domain; choose a name under it, like yourname.${customerDomain}` };
    if (name.endsWith(`.${customerDomain}`)) {
      const label = name.slice(0, -customerDomain.length - 1);
      if (label.includes(".")) return { ok: false, error: `choose one name right under ${customerDomain}, like yourname.${customerDomain} (${name} is too deep)` };
      if (RESERVED_LABELS.has(label) || name === server.hostname) return { ok: false, error: `${name} is reserved for the box itself; choose another name` };
      return { ok: true, name, authoritative: false };
    }
    if (within(customerDomain, name)) return { ok: false, error: `${name} holds the box's own domain ${customerDomain}; choose another domain` };
  }
  if (within(name, server.hostname)) return { ok: false, error: `${name} belongs to the box itself (${server.hostname}); choose your own domain` };
  // Serving the zone that holds the box's own name would hand the box's name to a customer.
  if (within(server.hostname, name)) return { ok: false, error: `${name} holds the box's own name ${server.hostname}; choose another domain` };
  return { ok: true, name, authoritative: true };
}

/** Whether a web hostname (a name or a `*.zone` wildcard) answers for `name`. */
function hostnameCovers(hostname: string, name: string): boolean {
  if (hostname.startsWith("*.")) {
    const zone = hostname.slice(2);
    return name.endsWith(`.${zone}`) && !name.slice(0, -zone.length - 1).includes(".");
  }
  return hostname === name;
}

/**
 * Why a domain is taken, or undefined when it is free: another service lists it among its domains
 * or web hostnames, holds a zone it lies in, or a customer's service has it.
 * @param name the normalized domain.
 * @param services every service spec on the box.
 * @param customerDomains the domains of the customers' services (the crm's index).
 */
export function domainTaken(name: string, services: readonly ServiceSpec[], customerDomains: readonly string[]): string | undefined {
  const taken = `${name} is already taken`;
  if (customerDomains.includes(name)) return taken;
  for (const spec of services) {
    if (spec.domains.some((d) => d.name === name)) return taken;
    if (spec.web?.hostnames.some((h) => hostnameCovers(h, name)) === true) return taken;
    const zone = spec.domains.find((d) => d.authoritative && name.endsWith(`.${d.name}`));
    if (zone !== undefined) return `${taken}: it lies in ${zone.name}, which another service holds`;
  }
  // Both directions: a parent would hold another service's names, a child would take one out of
  // its zone (also for a customer's row whose spec is not written yet).
  return domainConflict(name, [...heldNames(services), ...customerDomains.map((domain) => ({ serviceId: "", name: domain }))]);
}

/**
 * A service id for a domain: its dots as hyphens, cut to 63 characters, with `-2`, `-3`, ... added
 * while `isTaken` says the id is in use.
 * @param domain a valid domain name.
 * @param isTaken whether an id is already used (by a spec, a customer's service, a site folder).
 * @throws CrmError CRM_ERR_SERVICE_IDS_TAKEN when no id up to `-9999` is free (which would mean something else is wrong).
 */
export function deriveServiceId(domain: string, isTaken: (id: string) => boolean): string {
  const base = domain.replace(/\./g, "-");
  for (let n = 1; n <= 9999; n++) {
    const suffix = n === 1 ? "" : `-${n}`;
    const id = `${base.slice(0, 63 - suffix.length).replace(/-+$/, "")}${suffix}`;
    if (ServiceId.safeParse(id).success && !isTaken(id)) return id;
  }
  throw new CrmError("CRM_ERR_SERVICE_IDS_TAKEN", `deriving a service id for ${domain}: every id from ${base} to ${base}-9999 is taken`);
}

/**
 * The local part of the customer's mailbox and XMPP account: the signup e-mail's local part in
 * lowercase, reduced to a-z, 0-9, dot, underscore and hyphen (what both Postfix and Prosody
 * accept without quoting), starting and ending with a letter or digit; "mail" when nothing is
 * left, or when what is left is a name no customer's mailbox may have (mail-names.ts: `admin@`
 * or `postmaster@` can prove control of a domain to a certificate authority).
 */
export function mailLocalPart(email: string): string {
  const at = email.lastIndexOf("@");
  const local = (at >= 0 ? email.slice(0, at) : email)
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, "")
    // An address may not start or end with a dot nor hold two in a row.
    .replace(/\.{2,}/g, ".")
    .replace(/^[._-]+|[._-]+$/g, "")
    .slice(0, 64)
    .replace(/[._-]+$/, "");
  return local === "" || localPartProblem(local, "mailbox") !== undefined ? "mail" : local;
}
