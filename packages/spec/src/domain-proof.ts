// Ownership proof for a customer's own domain. The box serves a domain only once whoever holds it
// has shown control over it: a TXT record holding the token the panel shows, or an admin who
// vouched for it. The spec carries the claim (the token is public: it only names what to publish);
// the minion checks it and records the proof in `domains/<id>.json`; the actuators see only the
// names that are proven (servedSpec).
import { z } from "zod";
import { isUnderCustomerDomain, type BoxNames } from "./domains.ts";
import { DomainName, SchemaVersion, ServiceId } from "./primitives.ts";
import type { ServiceSpec } from "./specs.ts";

/** The label under a domain whose TXT record proves ownership. */
export const CHALLENGE_LABEL = "_coyote-challenge";

/** The name of the TXT record that proves ownership of a domain. */
export function challengeName(domain: string): string {
  return `${CHALLENGE_LABEL}.${domain}`;
}

/** A proof token: 22 to 64 characters of base64url (at least 128 random bits). */
export const ProofToken = z.string().regex(/^[A-Za-z0-9_-]{22,64}$/, { error: "not a proof token (22-64 characters of A-Z, a-z, 0-9, _ and -)" });

/** The TXT value that proves ownership with a token. */
export function challengeValue(token: string): string {
  return `coyote-domain-proof=${token}`;
}

/** An admin's word that a domain belongs to the service's owner: who vouched and when. */
export const DomainVouch = z.strictObject({
  by: z.string().min(1).max(254),
  at: z.iso.datetime({ error: "not an ISO 8601 time" }),
});

/** One domain the minion has seen proven for a service. */
export const ProvenDomain = z.strictObject({
  name: DomainName,
  /** How: the `_coyote-challenge` TXT record, or the parent zone's delegation to this box. */
  method: z.enum(["txt", "ns"]),
  /** The spec's token when the proof was seen (a new token in the spec asks for a new proof). */
  token: ProofToken.optional(),
  at: z.iso.datetime(),
});
/** One proven domain. */
export type ProvenDomain = z.infer<typeof ProvenDomain>;

/** `domains/<id>.json`: the domains of a service the minion has seen proven. Written by the minion only. */
export const DomainProofs = z.strictObject({
  schemaVersion: SchemaVersion,
  id: ServiceId,
  proven: z.array(ProvenDomain).max(100),
});
/** The proven domains of a service. */
export type DomainProofs = z.infer<typeof DomainProofs>;

/** The path of a service's proof record relative to `COYOTE_STATE`. */
export function domainProofsPath(id: string): string {
  return `domains/${id}.json`;
}

type ProofDomain = Pick<ServiceSpec["domains"][number], "name" | "challenge" | "vouched">;

/**
 * Whether a domain of a service must be proven before the box serves it. Names under the box's
 * customer domain are the box's to hand out; a service without an owner is the admin's own (the
 * admin writes its spec); a domain the admin vouched for is proven by that word.
 */
export function needsProof(domain: ProofDomain, spec: Pick<ServiceSpec, "owner">, box: BoxNames): boolean {
  if (spec.owner === undefined) return false;
  if (isUnderCustomerDomain(domain.name, box)) return false;
  return domain.vouched === undefined;
}

/**
 * Whether a record shows a domain proven for the spec as it is now: seen with the spec's current
 * token (a changed token asks for a new proof), by its TXT record or by its delegation.
 */
export function isProven(domain: ProofDomain, proven: readonly ProvenDomain[]): boolean {
  return proven.some((p) => p.name === domain.name && p.token === domain.challenge && (p.method === "ns" || domain.challenge !== undefined));
}

function inAny(name: string, zones: readonly string[]): boolean {
  return zones.some((zone) => name === zone || name.endsWith(`.${zone}`));
}

/**
 * The spec as the actuators may serve it: only the domains in `served`, and of the mail, XMPP and
 * web parts only what lies on them. Everything on a domain not yet proven is left out, so no
 * zone, mailbox, route or certificate exists for it.
 * @param spec the service spec.
 * @param served the names of its domains that may be served.
 */
export function servedSpec(spec: ServiceSpec, served: ReadonlySet<string>): ServiceSpec {
  if (spec.domains.every((d) => served.has(d.name))) return spec;
  const domains = spec.domains.filter((d) => served.has(d.name));
  const names = domains.map((d) => d.name);
  const onDomain = (address: string) => names.includes(address.slice(address.lastIndexOf("@") + 1));
  const { mail, xmpp, web, ...rest } = spec;
  const hostnames = web?.hostnames.filter((host) => inAny(host.startsWith("*.") ? host.slice(2) : host, names)) ?? [];
  return {
    ...rest,
    domains,
    ...(mail === undefined
      ? {}
      : {
          // The catch-all is where mail goes, not a name the service claims: it stays.
          mail: { ...mail, mailboxes: mail.mailboxes.filter((box) => onDomain(box.address)), aliases: mail.aliases.filter((alias) => onDomain(alias.address)) },
        }),
    ...(xmpp === undefined ? {} : { xmpp: { ...xmpp, users: xmpp.users.filter((user) => names.includes(user.domain)) } }),
    ...(web === undefined || hostnames.length === 0 ? {} : { web: { ...web, hostnames } }),
  };
}
