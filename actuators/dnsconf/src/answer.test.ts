import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { decode, encode } from "dns-packet";
import type { Answer, Question, RecordType } from "dns-packet";
import { answerQuery, DnsZoneFile, indexZones, RCODE, renderZoneJson, zonesFor } from "./index.ts";
import type { ZoneSet } from "./index.ts";
import { serverSpec, serviceSpec } from "./test/support.ts";

function zoneSet(): ZoneSet {
  const spec = serviceSpec("site", {
    domains: [
      {
        name: "example.org",
        records: [
          { type: "CNAME", name: "alias", target: "www.example.org" },
          { type: "CNAME", name: "outside", target: "www.example.net" },
          { type: "CNAME", name: "dangling", target: "gone.example.org" },
          { type: "CNAME", name: "loop1", target: "loop2.example.org" },
          { type: "CNAME", name: "loop2", target: "loop1.example.org" },
          { type: "A", name: "*.dyn", address: "192.0.2.77" },
          { type: "TXT", name: "*.dyn", text: "wild" },
          { type: "A", name: "host.deep.sub", address: "192.0.2.5" },
          { type: "NS", name: "lab", target: "ns.lab.example.org" },
          { type: "A", name: "ns.lab", address: "192.0.2.53" },
          { type: "TXT", name: "big", text: "x".repeat(3000) },
          { type: "MX", name: "@", priority: 20, exchange: "www.example.org" },
        ],
      },
    ],
    web: { hostnames: ["www.example.org"], backend: { kind: "static", root: "." } },
  });
  const files = zonesFor(spec, serverSpec()).map((zone) => DnsZoneFile.parse(JSON.parse(renderZoneJson(zone, "site", 5))));
  return indexZones(files);
}

const zones = zoneSet();

type QueryType = RecordType | "ANY";

function query(name: string, type: QueryType, options: { edns?: number; ednsVersion?: number; id?: number } = {}): Buffer {
  return encode({
    type: "query",
    id: options.id ?? 4242,
    flags: 0x0100,
    // dns-packet knows ANY (255) though its types do not list it.
    questions: [{ name, type: type as RecordType, class: "IN" }],
    additionals: options.edns === undefined ? [] : [{ name: ".", type: "OPT", udpPayloadSize: options.edns, extendedRcode: 0, ednsVersion: options.ednsVersion ?? 0, flags: 0, flag_do: false, options: [] }],
  });
}

/** One record of a decoded response, whatever its type. */
interface Rr {
  readonly name: string;
  readonly type: string;
  readonly ttl: number | undefined;
  readonly data: unknown;
  readonly extendedRcode: number | undefined;
}

/** A decoded response, flattened for assertions. */
interface Response {
  readonly id: number | undefined;
  readonly rcode: string | undefined;
  readonly flag_aa: boolean;
  readonly flag_tc: boolean;
  readonly flag_rd: boolean;
  readonly flag_ra: boolean;
  readonly questions: Question[];
  readonly answers: Rr[];
  readonly authorities: Rr[];
  readonly additionals: Rr[];
}

function rrs(list: Answer[] | undefined): Rr[] {
  return (list ?? []).map((a) => ({
    name: a.name,
    type: a.type,
    ttl: "ttl" in a ? a.ttl : undefined,
    data: "data" in a ? a.data : undefined,
    extendedRcode: a.type === "OPT" ? a.extendedRcode : undefined,
  }));
}

function ask(name: string, type: QueryType, transport: "udp" | "tcp" = "udp", options: Parameters<typeof query>[2] = {}): Response {
  const response = answerQuery(zones, query(name, type, options), transport);
  assert.ok(response, "a response");
  const packet = decode(response);
  return {
    id: packet.id,
    // dns-packet decodes the rcode too, though its types do not say so.
    rcode: (packet as { rcode?: string }).rcode,
    flag_aa: packet.flag_aa,
    flag_tc: packet.flag_tc,
    flag_rd: packet.flag_rd,
    flag_ra: packet.flag_ra,
    questions: packet.questions ?? [],
    answers: rrs(packet.answers),
    authorities: rrs(packet.authorities),
    additionals: rrs(packet.additionals),
  };
}

const summary = (list: Rr[]) => list.map((a) => `${a.name} ${a.type}`);

describe("answerQuery", () => {
  test("exact matches are authoritative; the question is echoed with its case", () => {
    const r = ask("WwW.Example.ORG", "A");
    assert.equal(r.id, 4242);
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.flag_aa, true);
    assert.equal(r.flag_rd, true, "RD copied");
    assert.equal(r.flag_ra, false);
    assert.equal(r.questions[0]?.name, "WwW.Example.ORG");
    assert.deepEqual(r.answers.map((a) => a.data), ["192.0.2.10"]);
    assert.equal(r.answers[0]?.name, "WwW.Example.ORG");
  });

  test("SOA and NS at the apex, MX with its in-zone target's addresses as additional data", () => {
    const soa = ask("example.org", "SOA");
    assert.equal((soa.answers[0]?.data as { serial?: number } | undefined)?.serial, 5);
    assert.deepEqual(ask("example.org", "NS").answers.map((a) => a.data), ["ns1.coyote-host.net"]);
    const mx = ask("example.org", "MX");
    assert.deepEqual(summary(mx.answers), ["example.org MX"]);
    assert.deepEqual(summary(mx.additionals), ["www.example.org A", "www.example.org AAAA"]);
  });

  test("NXDOMAIN and NODATA carry the SOA with the negative TTL; empty non-terminals are NODATA", () => {
    const nx = ask("nothing.example.org", "A");
    assert.equal(nx.rcode, "NXDOMAIN");
    assert.equal(nx.flag_aa, true);
    assert.deepEqual(summary(nx.authorities), ["example.org SOA"]);
    assert.equal(nx.authorities[0]?.ttl, 300);
    const nodata = ask("www.example.org", "TXT");
    assert.equal(nodata.rcode, "NOERROR");
    assert.equal(nodata.answers.length, 0);
    assert.deepEqual(summary(nodata.authorities), ["example.org SOA"]);
    const ent = ask("deep.sub.example.org", "A");
    assert.equal(ent.rcode, "NOERROR", "an empty non-terminal exists");
    assert.equal(ent.answers.length, 0);
  });

  test("wildcards synthesise answers for names that do not exist, not below existing ones (RFC 4592)", () => {
    const wild = ask("anything.dyn.example.org", "A");
    assert.equal(wild.rcode, "NOERROR");
    assert.deepEqual(wild.answers.map((a) => `${a.name} ${String(a.data)}`), ["anything.dyn.example.org 192.0.2.77"]);
    assert.equal(ask("anything.dyn.example.org", "AAAA").rcode, "NOERROR", "NODATA at a wildcard");
    assert.equal(ask("a.b.dyn.example.org", "A").answers.length, 1, "the wildcard covers deeper names too");
    assert.equal(ask("x.deep.sub.example.org", "A").rcode, "NXDOMAIN", "no wildcard at that closest encloser");
    assert.equal(ask("*.dyn.example.org", "TXT").answers.length, 1, "the wildcard owner itself matches");
  });

  test("CNAMEs: followed inside the zone, not outside, not round a loop; a dangling one is NXDOMAIN", () => {
    assert.deepEqual(summary(ask("alias.example.org", "A").answers), ["alias.example.org CNAME", "www.example.org A"]);
    assert.deepEqual(summary(ask("alias.example.org", "CNAME").answers), ["alias.example.org CNAME"]);
    assert.deepEqual(summary(ask("outside.example.org", "A").answers), ["outside.example.org CNAME"]);
    const dangling = ask("dangling.example.org", "A");
    assert.equal(dangling.rcode, "NXDOMAIN");
    assert.deepEqual(summary(dangling.answers), ["dangling.example.org CNAME"]);
    const loop = ask("loop1.example.org", "A");
    assert.deepEqual(summary(loop.answers), ["loop1.example.org CNAME", "loop2.example.org CNAME"]);
  });

  test("delegations get a non-authoritative referral with glue", () => {
    const r = ask("www.lab.example.org", "A");
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.flag_aa, false);
    assert.equal(r.answers.length, 0);
    assert.deepEqual(summary(r.authorities), ["lab.example.org NS"]);
    assert.deepEqual(r.additionals.map((a) => `${a.name} ${String(a.data)}`), ["ns.lab.example.org 192.0.2.53"]);
  });

  test("names outside the zones are REFUSED; ANY gets one RRset over UDP and all over TCP", () => {
    const refused = ask("example.com", "A");
    assert.equal(refused.rcode, "REFUSED");
    assert.equal(refused.flag_aa, false);
    assert.deepEqual(summary(ask("example.org", "ANY").answers), ["example.org NS"], "one RRset over UDP (RFC 8482): the lowest type code");
    const all = summary(ask("example.org", "ANY", "tcp").answers);
    assert.ok(all.includes("example.org SOA") && all.includes("example.org NS") && all.includes("example.org MX"), "the whole node over TCP");
  });

  test("UDP answers over 512 bytes (or the EDNS size) are truncated; TCP and a big EDNS size are not", () => {
    const udp = ask("big.example.org", "TXT");
    assert.equal(udp.flag_tc, true);
    assert.equal(udp.answers.length, 0);
    assert.equal(udp.questions.length, 1);
    const edns = ask("big.example.org", "TXT", "udp", { edns: 4096 });
    assert.equal(edns.flag_tc, false);
    assert.equal(edns.answers.length, 1);
    assert.ok(edns.additionals.some((a) => a.type === "OPT"), "EDNS answered with EDNS");
    const small = ask("big.example.org", "TXT", "udp", { edns: 1232 });
    assert.equal(small.flag_tc, true);
    const tcp = ask("big.example.org", "TXT", "tcp");
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers.length, 1);
  });

  test("bad queries: FORMERR for garbage, NOTIMP for other opcodes, BADVERS for EDNS > 0, nothing for responses", () => {
    const formerr = answerQuery(zones, Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05, 0x61]), "udp");
    assert.ok(formerr);
    assert.equal(formerr.readUInt16BE(0), 0x1234);
    assert.equal(formerr.readUInt16BE(2) & 0x800f, 0x8001);
    assert.equal(answerQuery(zones, Buffer.from([1, 2, 3]), "udp"), undefined, "shorter than a header");
    const response = query("example.org", "A");
    response.writeUInt16BE(0x8000, 2);
    assert.equal(answerQuery(zones, response, "udp"), undefined, "a response is never answered");
    const notify = query("example.org", "SOA");
    notify.writeUInt16BE(4 << 11, 2);
    assert.equal((answerQuery(zones, notify, "udp") ?? Buffer.alloc(4)).readUInt16BE(2) & 0xf, RCODE.NOTIMP);
    const badvers = ask("example.org", "A", "udp", { edns: 1232, ednsVersion: 1 });
    const opt = badvers.additionals.find((a) => a.type === "OPT");
    assert.equal(opt?.extendedRcode, 1);
    const trailing = Buffer.concat([query("example.org", "A"), Buffer.from([0])]);
    assert.equal((answerQuery(zones, trailing, "udp") ?? Buffer.alloc(4)).readUInt16BE(2) & 0xf, RCODE.FORMERR);
  });

  test("fuzz: hundreds of random and mutated packets never throw, and answers stay right afterwards", () => {
    const seeds = [query("www.example.org", "A"), query("anything.dyn.example.org", "TXT", { edns: 1232 }), query("alias.example.org", "A"), query("example.org", "ANY")];
    let answered = 0;
    for (let i = 0; i < 600; i++) {
      let packet: Buffer;
      if (i % 3 === 0) {
        packet = randomBytes(Math.floor(Math.random() * 80));
      } else {
        packet = Buffer.from(seeds[i % seeds.length] ?? Buffer.alloc(0));
        const flips = 1 + Math.floor(Math.random() * 4);
        for (let f = 0; f < flips && packet.length > 0; f++) packet[Math.floor(Math.random() * packet.length)] = Math.floor(Math.random() * 256);
        if (i % 5 === 0) packet = packet.subarray(0, Math.floor(Math.random() * packet.length));
        // Keep QR clear half the time so that most mutants get past the first check.
        if (i % 2 === 0 && packet.length > 2) packet[2] = (packet[2] ?? 0) & 0x7f;
      }
      const response = answerQuery(zones, packet, i % 2 === 0 ? "udp" : "tcp");
      if (response !== undefined) {
        answered++;
        assert.ok(response.length >= 12);
        assert.ok(response.length <= (i % 2 === 0 ? 4096 : 65535));
        assert.doesNotThrow(() => decode(response), "every response is well-formed");
      }
    }
    assert.ok(answered > 100, `most packets get a response (${answered})`);
    assert.deepEqual(ask("www.example.org", "A").answers.map((a) => a.data), ["192.0.2.10"]);
  });
});
