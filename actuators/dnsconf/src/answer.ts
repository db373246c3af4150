/**
 * The built-in authoritative server's answering logic, without sockets: a query's bytes in, a
 * response's bytes out. Pure and total: it never throws on any input (the server still guards it)
 * and never answers a response packet, so two servers cannot loop. The zones are indexed in
 * `zone-index.ts`, the messages parsed and assembled in `query-wire.ts`; this file resolves a
 * question against the zones (referrals, CNAME chains, wildcards, negative answers).
 */
import { isInZone } from "./names.ts";
import { assemble, parseQuery, RCODE, respond, type Query, type Sections } from "./query-wire.ts";
import { CLASS_IN, nameWire, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_CNAME, TYPE_DS, TYPE_NS, TYPE_OPT, type RRset, type ZoneIndex, type ZoneSet } from "./zone-index.ts";

export { EDNS_PAYLOAD_SIZE, RCODE } from "./query-wire.ts";
export { indexZones, type ZoneSet } from "./zone-index.ts";

/** The longest CNAME chain followed inside a zone. */
const MAX_CHAIN = 8;

function rrsetRecords(owner: Buffer, set: RRset): Buffer[] {
  return set.tails.map((tail) => Buffer.concat([owner, tail]));
}

/** The A and AAAA records of in-zone targets (glue and additional data). */
function addressesOf(zone: ZoneIndex, targets: readonly string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const target of new Set(targets)) {
    const node = zone.nodes.get(target);
    if (node === undefined) continue;
    const owner = nameWire(target);
    for (const type of [TYPE_A, TYPE_AAAA]) {
      const set = node.get(type);
      if (set !== undefined) out.push(...rrsetRecords(owner, set));
    }
  }
  return out;
}

/** The delegation point at or above `name` inside the zone, looking from the apex down. */
function cutAbove(zone: ZoneIndex, keys: readonly string[]): string | undefined {
  for (let i = keys.length - zone.labelCount - 1; i >= 0; i--) {
    const name = keys.slice(i).join(".");
    if (zone.cuts.has(name)) return name;
  }
  return undefined;
}

type Found = { readonly node: ReadonlyMap<number, RRset> } | "empty" | "none";

/** Finds the node for a name: exact, empty non-terminal, or wildcard synthesis (RFC 4592). */
function find(zone: ZoneIndex, keys: readonly string[]): Found {
  const name = keys.join(".");
  const exact = zone.nodes.get(name);
  if (exact !== undefined) return { node: exact };
  if (zone.emptyNonTerminals.has(name)) return "empty";
  // The closest encloser: the longest existing ancestor (the apex always exists).
  for (let i = 1; i <= keys.length - zone.labelCount; i++) {
    const ancestor = keys.slice(i).join(".");
    if (ancestor === zone.name || zone.nodes.has(ancestor) || zone.emptyNonTerminals.has(ancestor)) {
      const wildcard = zone.nodes.get(`*.${ancestor}`);
      return wildcard === undefined ? "none" : { node: wildcard };
    }
  }
  return "none";
}

function resolve(zone: ZoneIndex, query: Query, transport: "udp" | "tcp"): Sections {
  const cut = cutAbove(zone, query.keys);
  if (cut !== undefined && !(cut === query.keys.join(".") && query.qtype === TYPE_DS)) {
    const ns = zone.nodes.get(cut)?.get(TYPE_NS);
    if (ns !== undefined) {
      // A referral: not authoritative for what lies below the cut.
      return { rcode: RCODE.NOERROR, aa: false, answer: [], authority: rrsetRecords(nameWire(cut), ns), additional: addressesOf(zone, ns.targets) };
    }
  }
  const answer: Buffer[] = [];
  const additional: Buffer[] = [];
  const negative = (rcode: number): Sections => ({ rcode, aa: true, answer, authority: [zone.negativeSoa], additional: [] });
  let keys = query.keys;
  let owner = query.qnameWire;
  const seen = new Set<string>([query.keys.join(".")]);
  for (let step = 0; step < MAX_CHAIN; step++) {
    const found = find(zone, keys);
    if (found === "none") return negative(RCODE.NXDOMAIN);
    if (found === "empty") return negative(RCODE.NOERROR);
    const { node } = found;
    if (query.qtype === TYPE_ANY) {
      // RFC 8482: over UDP one RRset is enough, which keeps ANY useless for amplification; over
      // TCP (no spoofed sources) the whole node.
      const sets = [...node.values()];
      for (const set of transport === "udp" ? sets.slice(0, 1) : sets) answer.push(...rrsetRecords(owner, set));
      return { rcode: RCODE.NOERROR, aa: true, answer, authority: [], additional: [] };
    }
    const cname = node.get(TYPE_CNAME);
    if (cname !== undefined && query.qtype !== TYPE_CNAME) {
      answer.push(...rrsetRecords(owner, cname));
      const target = cname.cname;
      // Follow the alias only inside this zone, not below a delegation, and never round a loop.
      if (target === undefined || !isInZone(target, zone.name) || seen.has(target)) break;
      const targetKeys = target.split(".");
      if (cutAbove(zone, targetKeys) !== undefined) break;
      seen.add(target);
      keys = targetKeys;
      owner = nameWire(target);
      continue;
    }
    const set = node.get(query.qtype);
    if (set === undefined) return negative(RCODE.NOERROR);
    answer.push(...rrsetRecords(owner, set));
    if (set.targets.length > 0) additional.push(...addressesOf(zone, set.targets));
    break;
  }
  return { rcode: RCODE.NOERROR, aa: true, answer, authority: [], additional };
}

/**
 * Answers one DNS query.
 * @param zones the zones served.
 * @param message the query's bytes (over TCP, without the two length bytes).
 * @param transport `udp` limits the response to 512 bytes, or to the client's EDNS size (at most
 *   4096); `tcp` to 65535.
 * @returns the response's bytes, or undefined when the message deserves none (shorter than a
 *   header, or itself a response).
 */
export function answerQuery(zones: ZoneSet, message: Buffer, transport: "udp" | "tcp"): Buffer | undefined {
  const parsed = parseQuery(message);
  if (parsed === undefined) return undefined;
  if (!parsed.ok) {
    const sections: Sections = { rcode: parsed.rcode, aa: false, answer: [], authority: [], additional: [] };
    return assemble(parsed.id, parsed.flags, sections, undefined, undefined, false);
  }
  const { query } = parsed;
  const limit = transport === "tcp" ? 65535 : query.edns === undefined ? 512 : Math.min(4096, Math.max(512, query.edns.size));
  const empty = (rcode: number): Sections => ({ rcode, aa: false, answer: [], authority: [], additional: [] });
  // RFC 6891: an EDNS version we do not speak gets BADVERS (16: extended rcode 1, header rcode 0).
  if (query.edns !== undefined && query.edns.version > 0) return respond(query, empty(RCODE.NOERROR), limit, 1);
  if (query.qtype === 0 || query.qtype === TYPE_OPT) return respond(query, empty(RCODE.FORMERR), limit);
  if (query.qclass !== CLASS_IN) return respond(query, empty(RCODE.REFUSED), limit);
  // Zone transfers are not offered; the other meta types (MAILA, MAILB) are not implemented.
  if (query.qtype === 251 || query.qtype === 252) return respond(query, empty(RCODE.REFUSED), limit);
  if (query.qtype === 253 || query.qtype === 254) return respond(query, empty(RCODE.NOTIMP), limit);
  let zone: ZoneIndex | undefined;
  for (let i = 0; i < query.keys.length && zone === undefined; i++) zone = zones.zones.get(query.keys.slice(i).join("."));
  if (zone === undefined) return respond(query, empty(RCODE.REFUSED), limit);
  return respond(query, resolve(zone, query, transport), limit);
}
