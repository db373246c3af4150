// Thunderbird's autoconfig (and the many apps that read the same file): `config-v1.1.xml` for each
// domain the box serves mail for, at the two addresses Thunderbird asks a domain:
//   https://autoconfig.<domain>/mail/config-v1.1.xml
//   https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=<address>
// The file says where the box's IMAP and submission listeners are (connection-settings.ts); the
// user name is Thunderbird's own placeholder for the address typed, so nothing a client sent is
// ever written back into the answer.
import { DomainName } from "@coyote/spec";
import type { ConnectionSettings, Endpoint } from "./shop/connection-settings.ts";

/** The path under `autoconfig.<domain>`. */
export const AUTOCONFIG_PATH = "/mail/config-v1.1.xml";

/** The path under `<domain>` itself. */
export const WELL_KNOWN_AUTOCONFIG_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml";

/** The longest request target looked at (a query with one e-mail address fits easily). */
const MAX_TARGET = 2048;

/** What an autoconfig request asks: the mail domain, or why it cannot be answered. */
export type AutoconfigAsk = { readonly kind: "not-autoconfig" } | { readonly kind: "domain"; readonly domain: string } | { readonly kind: "bad"; readonly why: string };

/** A Host header's name: lowercase, without the port and a trailing dot; undefined when it is no domain name. */
export function hostName(host: string): string | undefined {
  const name = host.toLowerCase().replace(/:\d{1,5}$/, "").replace(/\.$/, "");
  return DomainName.safeParse(name).success ? name : undefined;
}

/**
 * Whether a request is an autoconfig lookup, and for which domain. Only the two exact paths count;
 * the domain is the Host's name (without `autoconfig.` for the first path) and must be a valid
 * domain name; an `emailaddress` query, when given, must be an address at that domain.
 * @param host the request's Host header.
 * @param target the request target (path and query), as sent.
 */
export function autoconfigAsk(host: string, target: string): AutoconfigAsk {
  if (target.length > MAX_TARGET) return { kind: "not-autoconfig" };
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  if (path !== AUTOCONFIG_PATH && path !== WELL_KNOWN_AUTOCONFIG_PATH) return { kind: "not-autoconfig" };
  const name = hostName(host);
  if (name === undefined) return { kind: "bad", why: "the host is not a domain name" };
  let domain = name;
  if (path === AUTOCONFIG_PATH) {
    if (!name.startsWith("autoconfig.")) return { kind: "not-autoconfig" };
    domain = name.slice("autoconfig.".length);
    if (!DomainName.safeParse(domain).success) return { kind: "bad", why: "the host has no domain after autoconfig." };
  }
  const params = new URLSearchParams(query === -1 ? "" : target.slice(query + 1));
  const addresses = params.getAll("emailaddress");
  if (addresses.length > 1) return { kind: "bad", why: "one emailaddress at most" };
  const address = addresses[0];
  if (address !== undefined) {
    const at = address.lastIndexOf("@");
    if (at < 1 || address.length > 254 || address.slice(at + 1).toLowerCase() !== domain) return { kind: "bad", why: `emailaddress is not an address at ${domain}` };
  }
  return { kind: "domain", domain };
}

/** Whether a character may appear in an XML 1.0 document (controls other than tab and line ends may not). */
function xmlChar(c: string): boolean {
  const n = c.codePointAt(0) ?? 0;
  return n === 0x9 || n === 0xa || n === 0xd || (n >= 0x20 && n !== 0xfffe && n !== 0xffff && !(n >= 0xd800 && n <= 0xdfff));
}

/** Text made safe for XML content and attribute values: markup characters as references, characters XML forbids dropped. */
export function escapeXml(text: string): string {
  // By code point: a lone surrogate is one, and is dropped.
  return Array.from(text).filter(xmlChar).join("").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function server(kind: "incomingServer" | "outgoingServer", type: "imap" | "smtp", host: string, endpoint: Endpoint): string {
  return [
    `    <${kind} type="${type}">`,
    `      <hostname>${escapeXml(host)}</hostname>`,
    `      <port>${endpoint.port}</port>`,
    `      <socketType>${endpoint.security === "TLS" ? "SSL" : "STARTTLS"}</socketType>`,
    // Over TLS; Dovecot checks the password against the SCRAM credential.
    "      <authentication>password-cleartext</authentication>",
    "      <username>%EMAILADDRESS%</username>",
    `    </${kind}>`,
  ].join("\n");
}

/**
 * The `config-v1.1.xml` of a mail domain: its IMAP servers, then its submission servers, the
 * implicit-TLS port of each first (the order Thunderbird prefers them in).
 * @param domain the mail domain (a valid domain name).
 * @param settings the box's connection settings.
 */
export function autoconfigXml(domain: string, settings: ConnectionSettings): string {
  const d = escapeXml(domain);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<clientConfig version="1.1">',
    `  <emailProvider id="${d}">`,
    `    <domain>${d}</domain>`,
    `    <displayName>${d}</displayName>`,
    `    <displayShortName>${d}</displayShortName>`,
    ...settings.imap.map((e) => server("incomingServer", "imap", settings.host, e)),
    ...settings.smtp.map((e) => server("outgoingServer", "smtp", settings.host, e)),
    "  </emailProvider>",
    "</clientConfig>",
    "",
  ].join("\n");
}
