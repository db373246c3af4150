/**
 * The zones of the built-in authoritative server, indexed for answering: RRsets by owner and type,
 * empty non-terminals and delegation points, every record encoded to wire form once, when a zone
 * is loaded, so that answering only concatenates buffers.
 */
import { encode } from "dns-packet";
import type { Answer } from "dns-packet";
import { isInZone } from "./names.ts";
import type { DnsZoneFile } from "./render.ts";
import { typeCode } from "./zone.ts";

/** Type code of CNAME. */
export const TYPE_CNAME = 5;
const TYPE_SOA = 6;
/** Type code of A. */
export const TYPE_A = 1;
/** Type code of AAAA. */
export const TYPE_AAAA = 28;
/** Type code of NS. */
export const TYPE_NS = 2;
/** Type code of DS (answered above a delegation, by the parent). */
export const TYPE_DS = 43;
/** Type code of the EDNS OPT pseudo-record. */
export const TYPE_OPT = 41;
/** Type code of ANY. */
export const TYPE_ANY = 255;
/** Class code of IN. */
export const CLASS_IN = 1;

/** One RRset of a node: every record's wire form after the owner name (type, class, TTL, rdata). */
export interface RRset {
  readonly type: number;
  readonly tails: readonly Buffer[];
  /** For NS, MX and SRV: the names the records point at, for the additional section. */
  readonly targets: readonly string[];
  /** For a CNAME: its target. */
  readonly cname: string | undefined;
}

/** One zone, indexed for answering. */
export interface ZoneIndex {
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
export function nameWire(name: string): Buffer {
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
