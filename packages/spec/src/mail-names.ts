// The names mail software looks up under each mail domain a box hosts, as dnsconf publishes them
// and snickers routes them to the panel: mail apps' `autoconfig.<domain>`, and MTA-STS (RFC 8461)
// with TLS reporting (RFC 8460). The MTA-STS policy text is made here once, so that the `id` of
// the `_mta-sts` record changes exactly when the text the panel serves does.
import { createHash } from "node:crypto";
import { WebHostname } from "./primitives.ts";
import type { ServerSpec, ServiceSpec } from "./specs.ts";

/** The label of mail apps' autoconfig host under a mail domain: `autoconfig.<domain>`. */
export const AUTOCONFIG_LABEL = "autoconfig";

/** The label of the policy host under a mail domain: `mta-sts.<domain>`. */
export const MTA_STS_LABEL = "mta-sts";

/** The one path the policy host answers. */
export const MTA_STS_POLICY_PATH = "/.well-known/mta-sts.txt";

/**
 * How long senders may keep the policy, in seconds: one week, as RFC 8461 (3.2) suggests for a
 * stable policy. A sender refreshes it before it runs out whenever the `_mta-sts` id changes.
 */
export const MTA_STS_MAX_AGE = 604800;

/**
 * Whether the box publishes MTA-STS at all: only when its certificates come from an ACME CA, whose
 * chain senders trust. With the local CA a sender honouring `mode: enforce` would refuse to
 * deliver, since it cannot validate the certificate Postfix presents.
 */
export function publishesMtaSts(server: Pick<ServerSpec, "certificates">): boolean {
  return server.certificates.mode === "acme";
}

/**
 * The policy of every mail domain of the box: `enforce`, with the one MX the box's zones publish
 * (the box's hostname, whose certificate Postfix presents), lines ended by CRLF (RFC 8461, 3.2).
 */
export function mtaStsPolicyText(server: Pick<ServerSpec, "hostname">): string {
  return ["version: STSv1", "mode: enforce", `mx: ${server.hostname}`, `max_age: ${MTA_STS_MAX_AGE}`, ""].join("\r\n");
}

/**
 * The `id` of a policy: the first 20 hex digits of the SHA-256 of its text (RFC 8461 allows 1 to 32
 * letters and digits), so that it changes whenever the text does and never otherwise.
 */
export function mtaStsPolicyId(policy: string): string {
  return createHash("sha256").update(policy, "utf8").digest("hex").slice(0, 20);
}

/** The `_mta-sts.<domain>` TXT value of a policy text. */
export function mtaStsRecordText(policy: string): string {
  return `v=STSv1; id=${mtaStsPolicyId(policy)}`;
}

/**
 * The `_smtp._tls.<domain>` TXT value: TLS reports go to `postmaster@<domain>`, the address every
 * mail domain must have (RFC 5321, 4.5.1) and the one its DMARC reports go to.
 */
export function tlsRptRecordText(domain: string): string {
  return `v=TLSRPTv1; rua=mailto:postmaster@${domain}`;
}

/**
 * The name `<label>.<domain>` when the box's zone of `domain` points it at the box (a CNAME to the
 * box's hostname, as the MX does), else undefined. It does when the box serves the domain's zone
 * and the name has no records of its own: no record of the domain's spec, no web hostname of the
 * service (whose site answers it), not another domain of the service (a zone of its own), not the
 * box's hostname; and it is a valid hostname (not too long).
 * @param service the service spec the domain belongs to.
 * @param domain one of `service.domains`.
 * @param label the label, e.g. {@link AUTOCONFIG_LABEL} or {@link MTA_STS_LABEL}.
 * @param server the box's hostname.
 */
export function publishedMailName(service: Pick<ServiceSpec, "domains" | "web">, domain: ServiceSpec["domains"][number], label: string, server: Pick<ServerSpec, "hostname">): string | undefined {
  if (!domain.authoritative) return undefined;
  const name = `${label}.${domain.name}`;
  if (!WebHostname.safeParse(name).success || name === server.hostname) return undefined;
  if (domain.records.some((record) => record.name === label)) return undefined;
  if ((service.web?.hostnames ?? []).includes(name) || service.domains.some((d) => d.name === name)) return undefined;
  return name;
}
