// MTA-STS (RFC 8461): the policy a sending server fetches before it delivers to a mail domain the
// box hosts, at https://mta-sts.<domain>/.well-known/mta-sts.txt. snitch-proxy routes only that
// path of that name here, and only when the box's certificates come from an ACME CA; the text is
// made by @coyote/spec, whose hash dnsconf publishes as the `_mta-sts` record's id.
import { DomainName, MTA_STS_LABEL, MTA_STS_POLICY_PATH } from "@coyote/spec";
import { hostName } from "./autoconfig.ts";

/** What a request for an MTA-STS policy asks: the mail domain, or why it cannot be answered. */
export type MtaStsAsk = { readonly kind: "not-mta-sts" } | { readonly kind: "domain"; readonly domain: string } | { readonly kind: "bad"; readonly why: string };

/**
 * Whether a request is an MTA-STS policy fetch, and for which domain: the exact path, without a
 * query (senders send none), on `mta-sts.<domain>` with `<domain>` a valid domain name.
 * @param host the request's Host header.
 * @param target the request target (path and query), as sent.
 */
export function mtaStsAsk(host: string, target: string): MtaStsAsk {
  if (target !== MTA_STS_POLICY_PATH) return { kind: "not-mta-sts" };
  const name = hostName(host);
  if (name === undefined) return { kind: "bad", why: "the host is not a domain name" };
  const prefix = `${MTA_STS_LABEL}.`;
  if (!name.startsWith(prefix)) return { kind: "not-mta-sts" };
  const domain = name.slice(prefix.length);
  if (!DomainName.safeParse(domain).success) return { kind: "bad", why: `the host has no domain after ${prefix}` };
  return { kind: "domain", domain };
}
