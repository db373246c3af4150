// The lookups mail software makes of each mail domain the box hosts, answered on the panel's
// listener before any session or page: public, read-only files. Mail apps' autoconfig
// (autoconfig.ts) and the MTA-STS policy senders fetch (mta-sts.ts). snitch-proxy routes only
// their exact paths of customers' names here; every other request on those names is refused by
// the panel's host check.
import { stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { mtaStsPolicyText, publishesMtaSts, type ServerSpec, type StateStore } from "@coyote/spec";
import { autoconfigAsk, autoconfigXml } from "./autoconfig.ts";
import { mtaStsAsk } from "./mta-sts.ts";
import { connectionSettings } from "./shop/connection-settings.ts";
import { readServices } from "./state.ts";

/**
 * The domains the box serves mail for (every domain of a service spec with a mail part), read
 * again only when the services' folder changed (a spec write renames a file into it), so that a
 * flood of lookups costs one `stat` each.
 */
export class MailDomains {
  readonly #store: Pick<StateStore, "readSpecs" | "path">;
  #stamp = "";
  #domains: ReadonlySet<string> = new Set();

  /** @param store the state store whose specs name the domains. */
  constructor(store: Pick<StateStore, "readSpecs" | "path">) {
    this.#store = store;
  }

  /** Whether the box serves mail for `domain`. */
  async has(domain: string): Promise<boolean> {
    const folder = await stat(this.#store.path("specs/services")).catch(() => undefined);
    const stamp = folder === undefined ? "none" : `${folder.ino}:${folder.mtimeMs}:${folder.ctimeMs}`;
    if (stamp !== this.#stamp) {
      const services = await readServices(this.#store);
      this.#domains = new Set(services.flatMap((s) => (s.mail === undefined ? [] : s.domains.map((d) => d.name))));
      this.#stamp = stamp;
    }
    return this.#domains.has(domain);
  }
}

/** Which lookup a request is, for which mail domain, or why it cannot be answered. */
export type MailLookup = { readonly kind: "autoconfig" | "mta-sts" } & ({ readonly domain: string } | { readonly why: string });

/**
 * Whether a request is one of the lookups mail software makes, or undefined for any other request
 * (which the panel's own checks then handle). Only the exact paths count.
 * @param host the request's Host header.
 * @param target the request target (path and query), as sent.
 */
export function mailLookupOf(host: string, target: string): MailLookup | undefined {
  const autoconfig = autoconfigAsk(host, target);
  if (autoconfig.kind === "domain") return { kind: "autoconfig", domain: autoconfig.domain };
  if (autoconfig.kind === "bad") return { kind: "autoconfig", why: autoconfig.why };
  const mtaSts = mtaStsAsk(host, target);
  if (mtaSts.kind === "domain") return { kind: "mta-sts", domain: mtaSts.domain };
  if (mtaSts.kind === "bad") return { kind: "mta-sts", why: mtaSts.why };
  return undefined;
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...extra }).end(`${text}\n`);
}

/** The body of a lookup of a hosted domain, or why there is none. */
function bodyOf(lookup: MailLookup & { domain: string }, server: Pick<ServerSpec, "hostname" | "mail" | "xmpp" | "certificates">): { type: string; body: string } | { missing: string } {
  if (lookup.kind === "autoconfig") return { type: "application/xml; charset=utf-8", body: autoconfigXml(lookup.domain, connectionSettings(server)) };
  // Without publicly trusted certificates no policy is published (dnsconf and snickers agree):
  // a sender enforcing it would refuse the certificate Postfix presents.
  if (!publishesMtaSts(server)) return { missing: "this box publishes no MTA-STS policy" };
  return { type: "text/plain; charset=utf-8", body: mtaStsPolicyText(server) };
}

/**
 * Answers a lookup: the domain's file to GET and HEAD, 404 for a domain without mail here (or an
 * MTA-STS policy the box does not publish), 400 for a malformed lookup, 405 for any other method.
 */
export async function answerMailLookup(method: string, lookup: MailLookup, res: ServerResponse, domains: MailDomains, server: Pick<ServerSpec, "hostname" | "mail" | "xmpp" | "certificates">): Promise<void> {
  if (method !== "GET" && method !== "HEAD") {
    plain(res, 405, `${lookup.kind} answers GET only`, { allow: "GET, HEAD" });
    return;
  }
  if ("why" in lookup) {
    plain(res, 400, `bad ${lookup.kind} lookup: ${lookup.why}`);
    return;
  }
  if (!(await domains.has(lookup.domain))) {
    plain(res, 404, "this box serves no mail for that domain");
    return;
  }
  const answer = bodyOf(lookup, server);
  if ("missing" in answer) {
    plain(res, 404, answer.missing);
    return;
  }
  res.writeHead(200, { "content-type": answer.type, "content-length": Buffer.byteLength(answer.body), "cache-control": "public, max-age=300" });
  res.end(method === "HEAD" ? undefined : answer.body);
}
