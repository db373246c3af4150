/**
 * The pure zone model: which authoritative zones a service needs and what is in them, derived
 * from its spec and the server spec. No I/O: the same inputs always give byte-identical zones, so
 * that a re-apply compares equal and rewrites nothing.
 */
import { join } from "node:path";
import { ActuatorError } from "@coyote/actuator";
import { AUTOCONFIG_LABEL, DomainName, FILE_SHARING_LABEL, MTA_STS_LABEL, mailRuntimePaths, mtaStsPolicyText, mtaStsRecordText, publishedMailName, publishesMtaSts, tlsRptRecordText } from "@coyote/spec";
import type { DnsRecord, ServerSpec, ServiceSpec } from "@coyote/spec";
import { z } from "zod";
import { DnsconfError } from "./errors.ts";
import { absoluteName, canonicalIPv6, compareNames, isInZone, isOwnerName, MAX_NAME_LENGTH } from "./names.ts";

/** The TTL of generated records and of spec records that name none. */
export const DEFAULT_TTL = 3600;

/**
 * The SOA timers of every zone. The short `minimum` (the negative-caching TTL, RFC 2308) makes a
 * name that a spec just added visible to resolvers within five minutes.
 */
export const SOA_TIMERS = { refresh: 3600, retry: 900, expire: 1209600, minimum: 300 } as const;

/** The largest character-string a TXT record can hold (RFC 1035, one length octet). */
export const TXT_CHUNK_BYTES = 255;

/** The record data of one resource record, by type; names absolute, lowercase, without trailing dot. */
export type RecordData =
  | { readonly type: "A"; readonly address: string }
  | { readonly type: "AAAA"; readonly address: string }
  | { readonly type: "CNAME"; readonly target: string }
  | { readonly type: "NS"; readonly target: string }
  | { readonly type: "MX"; readonly priority: number; readonly exchange: string }
  | { readonly type: "TXT"; readonly strings: readonly string[] }
  | { readonly type: "CAA"; readonly flags: number; readonly tag: "issue" | "issuewild" | "iodef"; readonly value: string }
  | { readonly type: "SRV"; readonly priority: number; readonly weight: number; readonly port: number; readonly target: string };

/** The record types a zone holds besides its SOA. */
export type RecordType = RecordData["type"];

/** One resource record of a zone: its absolute owner name, TTL and data. */
export type ZoneRecord = { readonly name: string; readonly ttl: number } & RecordData;

/** The SOA of a zone without its serial, which is managed apart (see {@link nextSerial}). */
export interface ZoneSoa {
  /** The primary name server: the server's hostname. */
  readonly mname: string;
  /** The responsible mailbox as a name: `hostmaster.<zone>`. */
  readonly rname: string;
  /** Seconds between secondaries' refreshes. */
  readonly refresh: number;
  /** Seconds before a failed refresh is retried. */
  readonly retry: number;
  /** Seconds after which a secondary stops answering without a refresh. */
  readonly expire: number;
  /** The negative-caching TTL (RFC 2308). */
  readonly minimum: number;
  /** The TTL of the SOA record itself. */
  readonly ttl: number;
}

/** One authoritative zone: its apex, its SOA (without serial) and its records in canonical order. */
export interface Zone {
  /** The apex, e.g. `example.org`. */
  readonly name: string;
  /** The SOA fields except the serial. */
  readonly soa: ZoneSoa;
  /** Every record but the SOA, deduplicated, sorted canonically (name, type code, data). */
  readonly records: readonly ZoneRecord[];
}

/** The DKIM public key record of one domain, as the mail actuator publishes it. */
export interface DkimRecord {
  /** The selector: the record lives at `<selector>._domainkey.<domain>`. */
  readonly selector: string;
  /** The TXT value, e.g. `v=DKIM1; k=rsa; p=MIIB...`. */
  readonly txt: string;
}

/** What {@link zonesFor} needs besides the specs: data other actuators made. */
export interface ZonesForExtras {
  /** The DKIM record of each domain that has one, by domain name. */
  readonly dkim?: Readonly<Record<string, DkimRecord>>;
}

/**
 * The cross-actuator file `<stateDir>/mail/dkim/<domain>.json` in which the mail actuator
 * publishes a domain's DKIM public key for the DNS actuator: `{ "selector": "coyote", "txt":
 * "v=DKIM1; k=rsa; p=..." }`. Unknown extra fields are tolerated so that the writer can grow the
 * file without breaking this reader.
 */
export const DkimRecordFile = z.object({
  selector: z.string().refine((s) => s.length <= 63 && s.split(".").every((label) => /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/.test(label)), {
    error: (issue) => `not a DKIM selector: ${JSON.stringify(issue.input)} (labels of a-z, 0-9, hyphens)`,
  }),
  txt: z
    .string()
    .min(1)
    .max(4000, { error: "a DKIM record holds at most 4000 characters" })
    .refine((t) => t.startsWith("v=DKIM1"), { error: "a DKIM record starts with v=DKIM1" }),
});
/** The content of a DKIM record file. */
export type DkimRecordFile = z.infer<typeof DkimRecordFile>;

/**
 * Where the mail actuator writes a domain's DKIM record file and the DNS actuator reads it.
 * @param stateDir the state folder (`COYOTE_STATE`).
 * @param domain a domain name of a service.
 * @throws DnsconfError `DNSCONF_ERR_NOT_A_DOMAIN` when `domain` is not a domain name (it would make
 *   the path leave the folder).
 */
export function dkimFilePath(stateDir: string, domain: string): string {
  if (!DomainName.safeParse(domain).success) throw new DnsconfError("DNSCONF_ERR_NOT_A_DOMAIN", `dkim file path: not a domain name: ${JSON.stringify(domain)}`);
  return join(mailRuntimePaths(stateDir).dkim, `${domain}.json`);
}

const TYPE_CODES: Readonly<Record<RecordType | "SOA", number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33, CAA: 257 };

/** The numeric RR type of a record type (A = 1, ..., CAA = 257). */
export function typeCode(type: RecordType | "SOA"): number {
  return TYPE_CODES[type];
}

/**
 * Splits a TXT value into character-strings of at most 255 bytes each (RFC 1035, 3.3.14). Splits
 * fall between characters, never inside a UTF-8 sequence, so that every piece is valid text.
 */
export function splitTxt(text: string): string[] {
  const chunks: string[] = [];
  let current = "";
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8");
    if (bytes + size > TXT_CHUNK_BYTES) {
      chunks.push(current);
      current = "";
      bytes = 0;
    }
    current += char;
    bytes += size;
  }
  if (current !== "" || chunks.length === 0) chunks.push(current);
  return chunks;
}

/**
 * Quotes a character-string for a zone file (RFC 1035, 5.1): `"` and `\` escaped, bytes outside
 * printable ASCII as `\DDD`, so that the file is plain ASCII whatever the text holds.
 */
export function quoteCharacterString(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, "utf8")) {
    if (byte === 0x22 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte < 0x20 || byte > 0x7e) out += `\\${byte.toString().padStart(3, "0")}`;
    else out += String.fromCharCode(byte);
  }
  return `${out}"`;
}

/** The record data in zone-file presentation form (names with their trailing dot). */
export function rdataText(data: RecordData): string {
  switch (data.type) {
    case "A":
    case "AAAA":
      return data.address;
    case "CNAME":
    case "NS":
      return `${data.target}.`;
    case "MX":
      return `${data.priority} ${data.exchange}.`;
    case "TXT":
      return data.strings.map(quoteCharacterString).join(" ");
    case "CAA":
      return `${data.flags} ${data.tag} ${quoteCharacterString(data.value)}`;
    case "SRV":
      return `${data.priority} ${data.weight} ${data.port} ${data.target}.`;
  }
}

/** Orders records canonically: owner name (RFC 4034 order), type code, then data text. */
export function compareRecords(a: ZoneRecord, b: ZoneRecord): number {
  const byName = compareNames(a.name, b.name);
  if (byName !== 0) return byName;
  const byType = typeCode(a.type) - typeCode(b.type);
  if (byType !== 0) return byType;
  const x = rdataText(a);
  const y = rdataText(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function invalid(zone: string, message: string): ActuatorError {
  return new ActuatorError("InvalidZone", `rendering zone ${zone}: ${message}`, { terminal: true });
}

/** Builds a record with its keys always in the same order, so that its JSON is stable. */
function record(name: string, ttl: number, data: RecordData): ZoneRecord {
  return { name, ttl, ...data };
}

/** The record of a spec's `domains[].records` entry, or the reason it cannot be one. */
function fromSpec(zone: string, spec: DnsRecord): ZoneRecord {
  const name = absoluteName(spec.name, zone);
  if (name.length > MAX_NAME_LENGTH || !isOwnerName(name)) throw invalid(zone, `the record name ${JSON.stringify(spec.name)} makes a name longer than ${MAX_NAME_LENGTH} characters`);
  const ttl = spec.ttl ?? DEFAULT_TTL;
  switch (spec.type) {
    case "A":
      return record(name, ttl, { type: "A", address: spec.address });
    case "AAAA":
      return record(name, ttl, { type: "AAAA", address: canonicalIPv6(spec.address) });
    case "CNAME":
      return record(name, ttl, { type: "CNAME", target: spec.target });
    case "NS":
      return record(name, ttl, { type: "NS", target: spec.target });
    case "MX":
      return record(name, ttl, { type: "MX", priority: spec.priority, exchange: spec.exchange });
    case "TXT":
      return record(name, ttl, { type: "TXT", strings: splitTxt(spec.text) });
    case "CAA":
      return record(name, ttl, { type: "CAA", flags: spec.flags, tag: spec.tag, value: spec.value });
    case "SRV":
      return record(name, ttl, { type: "SRV", priority: spec.priority, weight: spec.weight, port: spec.port, target: spec.target });
  }
}

/**
 * Collapses duplicates (same name, type and data; the lowest TTL wins), gives every RRset one TTL
 * (the lowest of its records: RFC 2181, 5.2 forbids mixed TTLs in a set) and sorts canonically.
 */
function normalise(records: readonly ZoneRecord[]): ZoneRecord[] {
  const unique = new Map<string, ZoneRecord>();
  for (const r of records) {
    const key = `${r.name} ${r.type} ${rdataText(r)}`;
    const seen = unique.get(key);
    if (seen === undefined || r.ttl < seen.ttl) unique.set(key, r);
  }
  const setTtl = new Map<string, number>();
  for (const r of unique.values()) {
    const key = `${r.name} ${r.type}`;
    setTtl.set(key, Math.min(setTtl.get(key) ?? r.ttl, r.ttl));
  }
  return [...unique.values()]
    .map((r) => {
      const ttl = setTtl.get(`${r.name} ${r.type}`) ?? r.ttl;
      return ttl === r.ttl ? r : { ...r, ttl };
    })
    .sort(compareRecords);
}

/** Rejects a CNAME that shares its owner with other data, the SOA and NS of the apex included. */
function checkCnames(zone: string, records: readonly ZoneRecord[]): void {
  const types = new Map<string, Set<string>>();
  const cnames = new Map<string, number>();
  for (const r of records) {
    let set = types.get(r.name);
    if (set === undefined) types.set(r.name, (set = new Set()));
    set.add(r.type);
    if (r.type === "CNAME") cnames.set(r.name, (cnames.get(r.name) ?? 0) + 1);
  }
  for (const [name, count] of [...cnames].sort(([a], [b]) => compareNames(a, b))) {
    if (name === zone) throw invalid(zone, `a CNAME at ${name} is not allowed: the zone apex holds the SOA and NS records`);
    if (count > 1) throw invalid(zone, `the name ${name} has ${count} CNAME records; a name can have only one`);
    const others = [...(types.get(name) ?? [])].filter((t) => t !== "CNAME").sort();
    if (others.length > 0) throw invalid(zone, `the CNAME at ${name} shares its name with other records (${others.join(", ")}); a CNAME must be alone at its name`);
  }
}

/**
 * The records of the names mail software looks up under a mail domain, each only where the name
 * has no records of its own (the spec's or those already generated): `autoconfig` CNAME → the
 * box's hostname (mail apps' autoconfig, which snitch-proxy sends to the panel), TLS reporting at
 * `_smtp._tls` (RFC 8460), and, only with ACME certificates, MTA-STS (RFC 8461): `mta-sts` CNAME →
 * the box's hostname, whose proxy sends the policy file to the panel, and `_mta-sts` TXT with the
 * policy's id. With the local CA no MTA-STS is published: senders enforcing it could not validate
 * the certificate Postfix presents, and would refuse to deliver.
 */
function mailNameRecords(service: ServiceSpec, domain: ServiceSpec["domains"][number], server: ServerSpec, existing: readonly ZoneRecord[]): ZoneRecord[] {
  const zone = domain.name;
  const out: ZoneRecord[] = [];
  const free = (name: string) => !existing.some((r) => r.name === name);
  const txt = (name: string, text: string) => {
    if (free(name)) out.push(record(name, DEFAULT_TTL, { type: "TXT", strings: splitTxt(text) }));
  };
  const pointAtBox = (label: string): boolean => {
    const name = publishedMailName(service, domain, label, server);
    if (name === undefined || !free(name)) return false;
    out.push(record(name, DEFAULT_TTL, { type: "CNAME", target: server.hostname }));
    return true;
  };
  pointAtBox(AUTOCONFIG_LABEL);
  txt(`_smtp._tls.${zone}`, tlsRptRecordText(zone));
  // The policy id only where the policy host leads to the box: an `_mta-sts` record naming a host
  // that serves no policy would only make senders fail their fetch.
  if (publishesMtaSts(server) && pointAtBox(MTA_STS_LABEL)) txt(`_mta-sts.${zone}`, mtaStsRecordText(mtaStsPolicyText(server)));
  return out;
}

/**
 * The authoritative zones a service needs: one per domain of the service whose `authoritative` is
 * true (sorted by name), each with its SOA (without serial), NS, the records its web, mail and XMPP
 * sections need and the spec's own records.
 *
 * Generated records: NS → the server's hostname; for every web hostname in the zone, A and AAAA
 * to the server's public addresses (none when the server has no such address); with mail, MX 10
 * → the server's hostname, SPF `v=spf1 mx -all`, DMARC at `_dmarc`, the DKIM key at
 * `<selector>._domainkey` when `extras.dkim` has one for the domain, and the names of
 * {@link mailNameRecords} (autoconfig, TLS reporting, MTA-STS with ACME); with XMPP, the
 * `_xmpp-client._tcp` and `_xmpp-server._tcp` SRV records (every domain of a service is an XMPP
 * host) and, with `xmpp.fileSharing`, `upload` CNAME → the server's hostname where the name has
 * no records of its own (`publishedMailName`, as for autoconfig); with ACME certificates, CAA `0 issue "letsencrypt.org"`. When the server's hostname is
 * inside the zone, its A and AAAA are added too, since NS and MX point at it and a resolver could
 * not find it otherwise (glue).
 *
 * A web hostname belongs to the most specific of the service's zones that contains it.
 * @param service the service spec.
 * @param server the server spec.
 * @param extras data other actuators publish (DKIM keys).
 * @returns the zones, sorted by name; empty when the service has no authoritative domain.
 * @throws ActuatorError `InvalidZone` (terminal) for a CNAME that shares its name with other data,
 *   a name too long, or a bad DKIM record.
 */
export function zonesFor(service: ServiceSpec, server: ServerSpec, extras: ZonesForExtras = {}): Zone[] {
  const authoritative = service.domains.filter((d) => d.authoritative).map((d) => d.name);
  const zoneOf = (host: string): string | undefined =>
    authoritative.filter((zone) => isInZone(host, zone)).sort((a, b) => b.length - a.length)[0];
  const zones: Zone[] = [];
  for (const domain of [...service.domains].sort((a, b) => compareNames(a.name, b.name))) {
    if (!domain.authoritative) continue;
    const zone = domain.name;
    const records: ZoneRecord[] = [];
    const addAddresses = (name: string) => {
      if (server.publicIPv4 !== undefined) records.push(record(name, DEFAULT_TTL, { type: "A", address: server.publicIPv4 }));
      if (server.publicIPv6 !== undefined) records.push(record(name, DEFAULT_TTL, { type: "AAAA", address: canonicalIPv6(server.publicIPv6) }));
    };
    records.push(record(zone, DEFAULT_TTL, { type: "NS", target: server.hostname }));
    if (zoneOf(server.hostname) === zone) addAddresses(server.hostname);
    for (const host of service.web?.hostnames ?? []) {
      if (zoneOf(host) === zone) addAddresses(host);
    }
    if (service.mail !== undefined) {
      records.push(record(zone, DEFAULT_TTL, { type: "MX", priority: 10, exchange: server.hostname }));
      records.push(record(zone, DEFAULT_TTL, { type: "TXT", strings: splitTxt("v=spf1 mx -all") }));
      records.push(record(`_dmarc.${zone}`, DEFAULT_TTL, { type: "TXT", strings: splitTxt(`v=DMARC1; p=quarantine; rua=mailto:postmaster@${zone}`) }));
      const dkim = extras.dkim?.[zone];
      if (dkim !== undefined) {
        const checked = DkimRecordFile.safeParse(dkim);
        if (!checked.success) throw invalid(zone, `the DKIM record is not valid: ${checked.error.issues.map((i) => i.message).join("; ")}`);
        records.push(record(`${checked.data.selector}._domainkey.${zone}`, DEFAULT_TTL, { type: "TXT", strings: splitTxt(checked.data.txt) }));
      }
    }
    if (service.xmpp !== undefined) {
      records.push(record(`_xmpp-client._tcp.${zone}`, DEFAULT_TTL, { type: "SRV", priority: 0, weight: 5, port: 5222, target: server.hostname }));
      records.push(record(`_xmpp-server._tcp.${zone}`, DEFAULT_TTL, { type: "SRV", priority: 0, weight: 5, port: 5269, target: server.hostname }));
    }
    if (server.certificates.mode === "acme") {
      records.push(record(zone, DEFAULT_TTL, { type: "CAA", flags: 0, tag: "issue", value: "letsencrypt.org" }));
    }
    for (const spec of domain.records) records.push(fromSpec(zone, spec));
    if (service.mail !== undefined) records.push(...mailNameRecords(service, domain, server, records));
    // File sharing's `upload.<domain>`, which the box's proxy sends to Prosody: by the rule of mail's names.
    const upload = service.xmpp?.fileSharing === true ? publishedMailName(service, domain, FILE_SHARING_LABEL, server) : undefined;
    if (upload !== undefined) records.push(record(upload, DEFAULT_TTL, { type: "CNAME", target: server.hostname }));
    const normalised = normalise(records);
    checkCnames(zone, normalised);
    const soa: ZoneSoa = { mname: server.hostname, rname: `hostmaster.${zone}`, ...SOA_TIMERS, ttl: DEFAULT_TTL };
    zones.push({ name: zone, soa, records: normalised });
  }
  return zones;
}

/**
 * The serial a zone gets when its content changed: one more than the old one, wrapping past 2^32
 * - 1 to 1 (RFC 1982 serial arithmetic still sees it as newer), and 1 for a new zone.
 * @param old the serial on disk, or undefined when there is no zone yet.
 */
export function nextSerial(old: number | undefined): number {
  if (old === undefined) return 1;
  const next = (old + 1) % 2 ** 32;
  return next === 0 ? 1 : next;
}
