/**
 * The DNS message wire of the built-in authoritative server: a query parsed by hand (header,
 * question, EDNS) and a response assembled and fitted into the size the transport allows.
 *
 * Queries are parsed by hand rather than with dns-packet's decoder, because the question must be
 * echoed byte for byte (resolvers randomise the case of names) and a name with binary labels must
 * not be turned into a different one.
 */
import { TYPE_OPT } from "./zone-index.ts";

/** DNS response codes this server sends. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** The EDNS payload size the server advertises (the DNS flag day 2020 value). */
export const EDNS_PAYLOAD_SIZE = 1232;

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
export interface Query {
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

/** A query, or what to answer a malformed one with; undefined from {@link parseQuery} means no answer at all. */
export type Parsed = { readonly ok: true; readonly query: Query } | { readonly ok: false; readonly id: number; readonly flags: number; readonly rcode: number };

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

/**
 * Parses a query.
 * @returns the query; a failure with the rcode to answer; or undefined for a message that deserves
 *   no answer (shorter than a header, or itself a response).
 */
export function parseQuery(buf: Buffer): Parsed | undefined {
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

/** The sections of a response, as records in wire form. */
export interface Sections {
  readonly rcode: number;
  readonly aa: boolean;
  readonly answer: readonly Buffer[];
  readonly authority: readonly Buffer[];
  readonly additional: readonly Buffer[];
}

/** Assembles a response: the header, the question when there is one, the sections and the OPT record. */
export function assemble(id: number, queryFlags: number, sections: Sections, question: Buffer | undefined, opt: Buffer | undefined, tc: boolean): Buffer {
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
export function respond(query: Query, sections: Sections, limit: number, extendedRcode = 0): Buffer {
  const opt = query.edns === undefined ? undefined : optRecord(extendedRcode);
  const full = assemble(query.id, query.flags, sections, query.question, opt, false);
  if (full.length <= limit) return full;
  const lean = { ...sections, additional: [] };
  const withoutAdditional = assemble(query.id, query.flags, lean, query.question, opt, false);
  if (withoutAdditional.length <= limit) return withoutAdditional;
  return assemble(query.id, query.flags, { ...lean, answer: [], authority: [] }, query.question, opt, true);
}
