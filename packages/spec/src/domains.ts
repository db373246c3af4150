// Which domain names a service may claim. A box that answers for a name serves its zone, takes its
// mail and orders its certificates, so a claim on a name the customer does not control hijacks it
// (for the box's other users, or for anyone whose resolver asks this box). These checks refuse the
// names nobody can rightly claim; whether a customer controls the rest is proven separately
// (domain-proof.ts).
import { parse } from "tldts";
import type { ServerSpec, ServiceSpec } from "./specs.ts";

/**
 * Top-level names reserved for special use (RFC 6761: localhost, test, invalid, example; RFC 6762:
 * local; RFC 7686: onion; RFC 8375 home.arpa under arpa; RFC 9476: alt; ICANN's `internal`), and a
 * few never delegated in the root that networks use privately (`lan`, `home`, `corp`,
 * `localdomain`): a resolver answers them locally or not at all, so a claim on one is meaningless
 * at best and a way to shadow a private name at worst.
 */
export const SPECIAL_USE_TLDS: ReadonlySet<string> = new Set(["localhost", "local", "test", "invalid", "example", "onion", "alt", "internal", "arpa", "lan", "home", "corp", "localdomain"]);

/** Second-level names reserved for documentation (RFC 2606). */
export const SPECIAL_USE_DOMAINS: readonly string[] = ["example.com", "example.net", "example.org"];

/**
 * Well-known public domains no customer may claim, nor any name under them. Defence in depth, kept
 * deliberately short: ownership proof is what keeps other names safe; this list only makes sure a
 * mistake in that proof cannot put the box in front of the mail and sign-in domains most people use.
 */
export const WELL_KNOWN_DOMAINS: readonly string[] = [
  "gmail.com",
  "googlemail.com",
  "google.com",
  "youtube.com",
  "outlook.com",
  "hotmail.com",
  "live.com",
  "microsoft.com",
  "office.com",
  "yahoo.com",
  "icloud.com",
  "apple.com",
  "aol.com",
  "proton.me",
  "protonmail.com",
  "gmx.net",
  "web.de",
  "yandex.ru",
  "mail.ru",
  "qq.com",
  "facebook.com",
  "amazon.com",
  "github.com",
  "letsencrypt.org",
];

/**
 * Labels that mail clients, browsers and certificate authorities look up by name (MTA-STS policy
 * hosts, Web Key Directory, mail client autoconfiguration, proxy auto-discovery, ISATAP tunnels):
 * whoever holds such a name can steer other people's clients or prove control to a CA, so no
 * service may hold a name with one of them anywhere. Labels starting with `_` (service and
 * verification records such as `_acme-challenge`, `_domainkey`) are refused too.
 */
export const SPECIAL_LABELS: ReadonlySet<string> = new Set(["mta-sts", "openpgpkey", "autoconfig", "autodiscover", "wpad", "isatap"]);

/** The box's own names, as the checks need them. */
export type BoxNames = Pick<ServerSpec, "hostname" | "customerDomain">;

/** Whether `name` is `zone` or lies under it. */
export function isWithin(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** Whether a name lies strictly under the box's customer domain (a name the box hands out). */
export function isUnderCustomerDomain(name: string, box: BoxNames): boolean {
  return box.customerDomain !== undefined && name.endsWith(`.${box.customerDomain}`);
}

/**
 * Why a name cannot be claimed by any service, whoever asks, or undefined when it may be. The name
 * must already be a valid, lowercase domain name (the schema's `DomainName`).
 * @param name the domain (a web hostname's wildcard `*.` stripped).
 * @param box the box's hostname and customer domain.
 */
export function domainNameProblem(name: string, box: BoxNames): string | undefined {
  const labels = name.split(".");
  const special = labels.find((label) => label.startsWith("_") || SPECIAL_LABELS.has(label));
  if (special !== undefined) return `${name} holds the label "${special}", which mail clients and certificate authorities look up by name; choose a name without it`;
  // A name that holds the box's own name would hand the box's name (and its mail) to a customer.
  if (isWithin(box.hostname, name)) return `${name} ${name === box.hostname ? "is" : "holds"} the box's own name ${box.hostname}; choose another domain`;
  const customer = box.customerDomain;
  if (customer !== undefined) {
    if (name === customer) return `${name} is the box's own domain; choose a name under it, like yourname.${customer}`;
    if (isWithin(customer, name)) return `${name} holds the box's own domain ${customer}; choose another domain`;
    // The admin chose the customer domain; names under it are what it is for (even when the
    // box's hostname is the customer domain itself).
    if (isUnderCustomerDomain(name, box)) return undefined;
  }
  if (isWithin(name, box.hostname)) return `${name} lies under the box's own name ${box.hostname}; choose another domain`;
  const tld = labels.at(-1) ?? "";
  if (SPECIAL_USE_TLDS.has(tld)) return `${name} is under .${tld}, a name reserved for special use that no one can own on the internet`;
  const documentation = SPECIAL_USE_DOMAINS.find((zone) => isWithin(name, zone));
  if (documentation !== undefined) return `${name} is under ${documentation}, a name reserved for documentation that no one can own`;
  const known = WELL_KNOWN_DOMAINS.find((zone) => isWithin(name, zone));
  if (known !== undefined) return `${name} belongs to ${known}, a well-known public domain; choose your own domain`;
  // With private suffixes (github.io, blogspot.com ...): a name right at one is shared by everyone under it.
  const parsed = parse(name, { allowPrivateDomains: true });
  if (parsed.publicSuffix === name || parsed.domain === null) {
    return `${name} is a public suffix (${parsed.isPrivate === true ? "a shared hosting domain" : "a top-level or registry domain"}) under which anyone registers names; choose a domain registered to you`;
  }
  return undefined;
}

/** One name another service holds: the service and the name (a wildcard's `*.` stripped). */
export interface HeldName {
  readonly serviceId: string;
  readonly name: string;
}

/** Every name a service holds: its domains and its web hostnames, wildcards without `*.`. */
export function namesOf(spec: Pick<ServiceSpec, "domains" | "web">): string[] {
  const names = new Set(spec.domains.map((d) => d.name));
  for (const host of spec.web?.hostnames ?? []) names.add(host.startsWith("*.") ? host.slice(2) : host);
  return [...names];
}

/** Every name the given services hold, by service. */
export function heldNames(services: readonly Pick<ServiceSpec, "id" | "domains" | "web">[]): HeldName[] {
  return services.flatMap((spec) => namesOf(spec).map((name) => ({ serviceId: spec.id, name })));
}

/**
 * Why a name clashes with a name another service holds, or undefined: equal, a parent (it would
 * hold the other's zone) or a child (it would take a name out of the other's zone), in both
 * directions, since either way one service could answer for the other's names.
 * @param name the claimed name.
 * @param held the names other services hold (the claiming service's own left out).
 */
export function domainConflict(name: string, held: readonly HeldName[]): string | undefined {
  for (const other of held) {
    if (other.name === name) return `${name} is already taken by another service`;
    if (isWithin(other.name, name)) return `${name} holds ${other.name}, which another service has; choose another domain`;
    if (isWithin(name, other.name)) return `${name} lies in ${other.name}, which another service has; choose another domain`;
  }
  return undefined;
}

/** A problem with one of a spec's names, with the field it is in. */
export interface NameIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Every problem with the names a service claims: each domain and web hostname against
 * {@link domainNameProblem} and against every name the other services hold.
 * @param spec the service spec.
 * @param box the box's own names.
 * @param others every other service on the box (a spec with the same id is skipped: it is this one's older version).
 */
export function serviceNameIssues(spec: Pick<ServiceSpec, "id" | "domains" | "web">, box: BoxNames, others: readonly Pick<ServiceSpec, "id" | "domains" | "web">[]): NameIssue[] {
  const held = heldNames(others.filter((other) => other.id !== spec.id));
  const issues: NameIssue[] = [];
  const check = (name: string, path: (string | number)[]) => {
    const problem = domainNameProblem(name, box) ?? domainConflict(name, held);
    if (problem !== undefined) issues.push({ path, message: problem });
  };
  spec.domains.forEach((domain, i) => check(domain.name, ["domains", i, "name"]));
  spec.web?.hostnames.forEach((host, i) => check(host.startsWith("*.") ? host.slice(2) : host, ["web", "hostnames", i]));
  return issues;
}
