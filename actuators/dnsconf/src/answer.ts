/**
 * The built-in authoritative server's answering logic, without sockets: a query's bytes in, a
 * response's bytes out. Pure and total: it never throws on any input (the server still guards it)
 * and never answers a response packet, so two servers cannot loop.
 *
 * Queries are parsed by hand (header, question, EDNS) rather than with dns-packet's decoder,
 * because the question must be echoed byte for byte (resolvers randomise the case of names) and
 * a name with binary labels must not be turned into a different one. Records are encoded with
 * dns-packet once, when a zone is loaded, and owner names are prepended as raw wire bytes.
 */
import { encode } from "dns-packet";
import type { Answer } from "dns-packet";
import { isInZone } from "./names.ts";
import type { DnsZoneFile } from "./render.ts";
import { typeCode } from "./zone.ts";

/** DNS response codes this server sends. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** The EDNS payload size the server advertises (the DNS flag day 2020 value). */
export const EDNS_PAYLOAD_SIZE = 1232;

const TYPE_CNAME = 5;
const TYPE_SOA = 6;
const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_NS = 2;
const TYPE_DS = 43;
const TYPE_OPT = 41;
const TYPE_ANY = 255;
const CLASS_IN = 1;
/** The longest CNAME chain followed inside a zone. */
const MAX_CHAIN = 8;

/** One RRset of a node: every record's wire form after the owner name (type, class, TTL, rdata). */
interface RRset {
  readonly type: number;
  readonly tails: readonly Buffer[];
  /** For NS, MX and SRV: the names the records point at, for the additional section. */
  readonly targets: readonly string[];
  /** For a CNAME: its target. */
  readonly cname: string | undefined;
}

/** One zone, indexed for answering. */
interface ZoneIndex {
  readonly name: string;
  readonly labelCount: number;
  /** Every name that owns records, to its RRsets by type code. */
  readonly nodes: ReadonlyMap<string, ReadonlyMap<number, RRset>>;
  /** Names that own nothing but have names below them (empty non-terminals, RFC 4592). */
  readonly emptyNonTerminals: ReadonlySet<string>;
  /** Names below the apex that own NS records: delegations to other servers. */
  readonly cuts: ReadonlySet<string>;
  /** The SOA for negative answers, with the negative-caching TTL (RFC 2308). */
  readonly negativeSoa: Buffer;
}

/** The zones the server answers for, indexed. Build one with {@link indexZones}. */
export interface ZoneSet {
  /** The zones by apex name. */
  readonly zones: ReadonlyMap<string, ZoneIndex>;
}

/** The wire form of a name made of plain ASCII labels (the names Coyote writes). */
function nameWire(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split(".")) {
    const bytes = Buffer.from(label, "latin1");
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Encodes a record with dns-packet and keeps what follows the owner name (the root, one byte). */
function tailOf(answer: Answer): Buffer {
  // A packet of one answer: a 12-byte header, then the root name (one zero byte), then the rest.
  return Buffer.from(encode({ answers: [answer] }).subarray(13));
}

function recordAnswer(r: DnsZoneFile["records"][number]): Answer {
  switch (r.type) {
    case "A":
    case "AAAA":
      return { name: ".", type: r.type, ttl: r.ttl, class: "IN", data: r.address };
    case "CNAME":
    case "NS":
      return { name: ".", type: r.type, ttl: r.ttl, class: "IN", data: r.target };
    case "MX":
      return { name: ".", type: "MX", ttl: r.ttl, class: "IN", data: { preference: r.priority, exchange: r.exchange } };
    case "TXT":
      return { name: ".", type: "TXT", ttl: r.ttl, class: "IN", data: r.strings.map((s) => Buffer.from(s, "utf8")) };
    case "CAA":
      return { name: ".", type: "CAA", ttl: r.ttl, class: "IN", data: { flags: r.flags, tag: r.tag, value: r.value } };
    case "SRV":
      return { name: ".", type: "SRV", ttl: r.ttl, class: "IN", data: { priority: r.priority, weight: r.weight, port: r.port, target: r.target } };
  }
}

function targetOf(r: DnsZoneFile["records"][number]): string | undefined {
  if (r.type === "NS" || r.type === "SRV") return r.target;
  if (r.type === "MX") return r.exchange;
  return undefined;
}

/**
 * Indexes validated zone files for answering: RRsets by owner and type, empty non-terminals,
 * delegation points, and every record encoded once.
 * @param files zone files, already validated with {@link DnsZoneFile}; one per zone.
 */
export function indexZones(files: readonly DnsZoneFile[]): ZoneSet {
  const zones = new Map<string, ZoneIndex>();
  for (const file of files) {
    const soaAnswer = (ttl: number): Answer => ({
      name: ".",
      type: "SOA",
      ttl,
      class: "IN",
      data: { mname: file.soa.mname, rname: file.soa.rname, serial: file.serial, refresh: file.soa.refresh, retry: file.soa.retry, expire: file.soa.expire, minimum: file.soa.minimum },
    });
    type Building = Map<number, { tails: Buffer[]; targets: string[]; cname: string | undefined }>;
    const building = new Map<string, Building>();
    const add = (name: string, type: number, tail: Buffer, target: string | undefined, cname: string | undefined) => {
      let node = building.get(name);
      if (node === undefined) building.set(name, (node = new Map() as Building));
      let set = node.get(type);
      if (set === undefined) node.set(type, (set = { tails: [], targets: [], cname }));
      set.tails.push(tail);
      if (target !== undefined) set.targets.push(target);
    };
    add(file.zone, TYPE_SOA, tailOf(soaAnswer(file.soa.ttl)), undefined, undefined);
    for (const r of file.records) {
      add(r.name, typeCode(r.type), tailOf(recordAnswer(r)), targetOf(r), r.type === "CNAME" ? r.target : undefined);
    }
    const nodes = new Map<string, ReadonlyMap<number, RRset>>();
    for (const [name, sets] of building) {
      nodes.set(name, new Map([...sets].sort(([a], [b]) => a - b).map(([type, s]) => [type, { type, tails: s.tails, targets: s.targets, cname: s.cname }])));
    }
    const emptyNonTerminals = new Set<string>();
    const cuts = new Set<string>();
    for (const [name, sets] of nodes) {
      if (name !== file.zone && sets.has(TYPE_NS)) cuts.add(name);
      let parent = name;
      while (parent !== file.zone && parent.includes(".")) {
        parent = parent.slice(parent.indexOf(".") + 1);
        if (!nodes.has(parent) && isInZone(parent, file.zone)) emptyNonTerminals.add(parent);
      }
    }
    const negativeTtl = Math.min(file.soa.ttl, file.soa.minimum);
    zones.set(file.zone, {
      name: file.zone,
      labelCount: file.zone.split(".").length,
      nodes,
      emptyNonTerminals,
      cuts,
      negativeSoa: Buffer.concat([nameWire(file.zone), tailOf(soaAnswer(negativeTtl))]),
    });
  }
  return { zones };
}

/** The lookup key of a label: lowercase ASCII, or a form no zone name can have for anything else. */
function labelKey(label: Buffer): string {
  let plain = label.length > 0;
  for (const byte of label) {
    if (byte < 0x21 || byte > 0x7e || byte === 0x2e) {
      plain = false;
      break;
    }
  }
  // A label holding a dot or a byte outside printable ASCII cannot be in any zone of ours; the
  // NUL prefix keeps it from ever comparing equal to one.
  if (!plain) return `\u0000${label.toString("hex")}`;
  return label.toString("latin1").replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** A parsed query. */
interface Query {
  readonly id: number;
  readonly flags: number;
  /** The question section as received. */
  readonly question: Buffer;
  /** The question name as received (wire form, case preserved). */
  readonly qnameWire: Buffer;
  readonly keys: readonly string[];
  readonly qtype: number;
  readonly qclass: number;
  readonly edns: { readonly size: number; readonly version: number } | undefined;
}

type Parsed = { readonly ok: true; readonly query: Query } | { readonly ok: false; readonly id: number; readonly flags: number; readonly rcode: number };

/** Skips one name (labels or a compression pointer), returning the offset after it, or -1. */
function skipName(buf: Buffer, start: number): number {
  let off = start;
  for (let guard = 0; guard < 128; guard++) {
    const len = buf[off];
    if (len === undefined) return -1;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

function parse(buf: Buffer): Parsed | undefined {
  if (buf.length < 12) return undefined;
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  // Never answer a response: two servers answering each other would loop.
  if ((flags & 0x8000) !== 0) return undefined;
  const fail = (rcode: number): Parsed => ({ ok: false, id, flags, rcode });
  if (((flags >> 11) & 0xf) !== 0) return fail(RCODE.NOTIMP);
  if (buf.readUInt16BE(4) !== 1 || buf.readUInt16BE(6) !== 0 || buf.readUInt16BE(8) !== 0) return fail(RCODE.FORMERR);
  const additional = buf.readUInt16BE(10);
  let off = 12;
  const labels: Buffer[] = [];
  let wireLength = 1;
  for (;;) {
    const len = buf[off];
    if (len === undefined) return fail(RCODE.FORMERR);
    off += 1;
    if (len === 0) break;
    // No compression in a question (there is nothing before it to point at), no extended labels.
    if ((len & 0xc0) !== 0 || off + len > buf.length) return fail(RCODE.FORMERR);
    wireLength += len + 1;
    if (wireLength > 255) return fail(RCODE.FORMERR);
    labels.push(buf.subarray(off, off + len));
    off += len;
  }
  if (off + 4 > buf.length) return fail(RCODE.FORMERR);
  const qnameWire = buf.subarray(12, off);
  const qtype = buf.readUInt16BE(off);
  const qclass = buf.readUInt16BE(off + 2);
  off += 4;
  const question = buf.subarray(12, off);
  let edns: { size: number; version: number } | undefined;
  for (let i = 0; i < additional; i++) {
    const nameStart = off;
    off = skipName(buf, off);
    if (off < 0 || off + 10 > buf.length) return fail(RCODE.FORMERR);
    const type = buf.readUInt16BE(off);
    const rrClass = buf.readUInt16BE(off + 2);
    const ttl = buf.readUInt32BE(off + 4);
    const rdlength = buf.readUInt16BE(off + 8);
    off += 10 + rdlength;
    if (off > buf.length) return fail(RCODE.FORMERR);
    if (type === TYPE_OPT) {
      // RFC 6891: one OPT at most, owned by the root.
      if (edns !== undefined || buf[nameStart] !== 0) return fail(RCODE.FORMERR);
      edns = { size: rrClass, version: (ttl >>> 16) & 0xff };
    }
  }
  if (off !== buf.length) return fail(RCODE.FORMERR);
  return { ok: true, query: { id, flags, question, qnameWire, keys: labels.map(labelKey), qtype, qclass, edns } };
}

/** The OPT record of a response (no options, DO clear: this server does not sign). */
function optRecord(extendedRcode: number): Buffer {
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(TYPE_OPT, 1);
  opt.writeUInt16BE(EDNS_PAYLOAD_SIZE, 3);
  opt.writeUInt8(extendedRcode, 5);
  return opt;
}

interface Sections {
  readonly rcode: number;
  readonly aa: boolean;
  readonly answer: readonly Buffer[];
  readonly authority: readonly Buffer[];
  readonly additional: readonly Buffer[];
}

function assemble(id: number, queryFlags: number, sections: Sections, question: Buffer | undefined, opt: Buffer | undefined, tc: boolean): Buffer {
  const header = Buffer.alloc(12);
  // QR, the query's opcode, RD and CD copied, AA and TC as decided, RA never (no recursion).
  let flags = 0x8000 | (queryFlags & 0x7800) | (queryFlags & 0x0100) | (queryFlags & 0x0010) | (sections.rcode & 0xf);
  if (sections.aa) flags |= 0x0400;
  if (tc) flags |= 0x0200;
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(question === undefined ? 0 : 1, 4);
  header.writeUInt16BE(sections.answer.length, 6);
  header.writeUInt16BE(sections.authority.length, 8);
  header.writeUInt16BE(sections.additional.length + (opt === undefined ? 0 : 1), 10);
  return Buffer.concat([header, ...(question === undefined ? [] : [question]), ...sections.answer, ...sections.authority, ...sections.additional, ...(opt === undefined ? [] : [opt])]);
}

/**
 * Builds the response, fitting it into `limit` bytes: first whole; then without the additional
 * section (optional data, RFC 2181 9); else empty with the TC bit so the client retries over TCP.
 */
function respond(query: Query, sections: Sections, limit: number, extendedRcode = 0): Buffer {
  const opt = query.edns === undefined ? undefined : optRecord(extendedRcode);
  const full = assemble(query.id, query.flags, sections, query.question, opt, false);
  if (full.length <= limit) return full;
  const lean = { ...sections, additional: [] };
  const withoutAdditional = assemble(query.id, query.flags, lean, query.question, opt, false);
  if (withoutAdditional.length <= limit) return withoutAdditional;
  return assemble(query.id, query.flags, { ...lean, answer: [], authority: [] }, query.question, opt, true);
}

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
  const parsed = parse(message);
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
