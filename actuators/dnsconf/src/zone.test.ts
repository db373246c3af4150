import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ActuatorError } from "@coyote/actuator";
import {
  DkimRecordFile,
  dkimFilePath,
  DnsZoneFile,
  nextSerial,
  parseZoneFileHeader,
  parseZoneJsonHeader,
  renderKnotConf,
  renderZoneFile,
  renderZoneJson,
  splitTxt,
  zonesFor,
} from "./index.ts";
import { expectedPolicyId, serverSpec, serviceSpec } from "./test/support.ts";

const DKIM_TXT = `v=DKIM1; k=rsa; p=${"A".repeat(392)}`;

function fullService() {
  return serviceSpec("shop", {
    domains: [
      {
        name: "example.org",
        records: [
          { type: "CNAME", name: "blog", target: "blogs.example.net" },
          { type: "TXT", name: "@", text: "google-site-verification=abc" },
          { type: "A", name: "*", address: "192.0.2.55", ttl: 300 },
          { type: "NS", name: "lab", target: "ns.lab-host.net" },
        ],
      },
      { name: "example.net", authoritative: false },
    ],
    web: { hostnames: ["example.org", "www.example.org", "shop.example.net"], backend: { kind: "static", root: "." } },
    mail: { mailboxes: [{ address: "info@example.org", passwordHash: "{ARGON2ID}abc" }] },
    xmpp: { users: [{ username: "ann", domain: "example.org", passwordHash: "{ARGON2ID}abc" }] },
  });
}

describe("zonesFor", () => {
  test("derives SOA, NS, web, mail, DKIM, XMPP, CAA and the spec's records, canonically ordered", () => {
    const zones = zonesFor(fullService(), serverSpec(), { dkim: { "example.org": { selector: "coyote", txt: DKIM_TXT } } });
    assert.deepEqual(zones.map((z) => z.name), ["example.org"], "only authoritative domains get a zone");
    const zone = zones[0];
    assert.ok(zone);
    assert.deepEqual(zone.soa, { mname: "ns1.coyote-host.net", rname: "hostmaster.example.org", refresh: 3600, retry: 900, expire: 1209600, minimum: 300, ttl: 3600 });
    const text = renderZoneFile(zone, "shop", 7);
    const body = text.split("\n").filter((l) => !l.startsWith(";"));
    assert.deepEqual(body, [
      "example.org. 3600 IN SOA ns1.coyote-host.net. hostmaster.example.org. 7 3600 900 1209600 300",
      "example.org. 3600 IN A 192.0.2.10",
      "example.org. 3600 IN NS ns1.coyote-host.net.",
      "example.org. 3600 IN MX 10 ns1.coyote-host.net.",
      'example.org. 3600 IN TXT "google-site-verification=abc"',
      'example.org. 3600 IN TXT "v=spf1 mx -all"',
      "example.org. 3600 IN AAAA 2001:db8::10",
      'example.org. 3600 IN CAA 0 issue "letsencrypt.org"',
      "*.example.org. 300 IN A 192.0.2.55",
      '_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org"',
      `coyote._domainkey.example.org. 3600 IN TXT "${DKIM_TXT.slice(0, 255)}" "${DKIM_TXT.slice(255)}"`,
      `_mta-sts.example.org. 3600 IN TXT "v=STSv1; id=${expectedPolicyId("ns1.coyote-host.net")}"`,
      "_xmpp-client._tcp.example.org. 3600 IN SRV 0 5 5222 ns1.coyote-host.net.",
      "_xmpp-server._tcp.example.org. 3600 IN SRV 0 5 5269 ns1.coyote-host.net.",
      '_smtp._tls.example.org. 3600 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example.org"',
      "autoconfig.example.org. 3600 IN CNAME ns1.coyote-host.net.",
      "blog.example.org. 3600 IN CNAME blogs.example.net.",
      "lab.example.org. 3600 IN NS ns.lab-host.net.",
      "mta-sts.example.org. 3600 IN CNAME ns1.coyote-host.net.",
      "www.example.org. 3600 IN A 192.0.2.10",
      "www.example.org. 3600 IN AAAA 2001:db8::10",
      "",
    ]);
  });

  test("mail apps' autoconfig name points at the box in each mail zone, and yields to records already at it", () => {
    const names = (service: ReturnType<typeof serviceSpec>) => zonesFor(service, serverSpec()).map((z) => z.records.filter((r) => r.name.startsWith("autoconfig.")).map((r) => `${r.name} ${r.type} ${r.type === "CNAME" ? r.target : ""}`));
    const twoZones = serviceSpec("m", { domains: [{ name: "shop.example" }, { name: "shop.test" }, { name: "ext.example", authoritative: false }], mail: {} });
    assert.deepEqual(names(twoZones), [["autoconfig.shop.example CNAME ns1.coyote-host.net"], ["autoconfig.shop.test CNAME ns1.coyote-host.net"]]);
    assert.deepEqual(names(serviceSpec("w", { domains: [{ name: "shop.example" }], web: { hostnames: ["shop.example"], backend: { kind: "static", root: "." } } })), [[]], "no mail, no autoconfig");
    const own = serviceSpec("o", { domains: [{ name: "shop.example", records: [{ type: "A", name: "autoconfig", address: "192.0.2.99" }] }], mail: {} });
    assert.deepEqual(names(own), [["autoconfig.shop.example A "]], "the spec's own record stands, with no CNAME beside it");
    const web = serviceSpec("v", { domains: [{ name: "shop.example" }], mail: {}, web: { hostnames: ["autoconfig.shop.example"], backend: { kind: "static", root: "." } } });
    assert.deepEqual(names(web), [["autoconfig.shop.example A ", "autoconfig.shop.example AAAA "]], "a web hostname keeps its addresses");
  });

  test("file sharing's upload name points at the box only when the spec shares files, and yields to records already at it", () => {
    const names = (service: ReturnType<typeof serviceSpec>) => zonesFor(service, serverSpec()).map((z) => z.records.filter((r) => r.name.startsWith("upload.")).map((r) => `${r.name} ${r.type} ${r.type === "CNAME" ? r.target : ""}`));
    const xmpp = (more: Record<string, unknown>) => ({ users: [{ username: "ann", domain: "chat.example", passwordHash: "{ARGON2ID}abc" }], ...more });
    assert.deepEqual(names(serviceSpec("c", { domains: [{ name: "chat.example" }], xmpp: xmpp({}) })), [[]], "no file sharing, no upload name");
    assert.deepEqual(names(serviceSpec("c", { domains: [{ name: "chat.example" }], xmpp: xmpp({ fileSharing: false }) })), [[]]);
    assert.deepEqual(names(serviceSpec("c", { domains: [{ name: "chat.example" }, { name: "chat.test" }], xmpp: xmpp({ fileSharing: true }) })), [["upload.chat.example CNAME ns1.coyote-host.net"], ["upload.chat.test CNAME ns1.coyote-host.net"]]);
    const own = serviceSpec("o", { domains: [{ name: "chat.example", records: [{ type: "CNAME", name: "upload", target: "files.provider.example" }] }], xmpp: xmpp({ fileSharing: true }) });
    assert.deepEqual(names(own), [["upload.chat.example CNAME files.provider.example"]], "the spec's own record stands, alone");
    const web = serviceSpec("v", { domains: [{ name: "chat.example" }], xmpp: xmpp({ fileSharing: true }), web: { hostnames: ["upload.chat.example"], backend: { kind: "static", root: "." } } });
    assert.deepEqual(names(web), [["upload.chat.example A ", "upload.chat.example AAAA "]], "a web hostname keeps its addresses");
    assert.deepEqual(zonesFor(serviceSpec("n", { domains: [{ name: "chat.example", authoritative: false }], xmpp: xmpp({ fileSharing: true }) }), serverSpec()), [], "no zone of the box, nothing published");
  });

  test("MTA-STS only with ACME certificates, its id following the policy's mx; TLS reporting in both modes; a policy host of the spec's own", () => {
    const mail = serviceSpec("m", { domains: [{ name: "shop.example" }], mail: {} });
    const lines = (service: ReturnType<typeof serviceSpec>, server = serverSpec()) =>
      (zonesFor(service, server)[0]?.records ?? []).filter((r) => /^(_mta-sts|mta-sts|_smtp\._tls)\./.test(r.name)).map((r) => `${r.name} ${r.type} ${r.type === "CNAME" ? r.target : r.type === "TXT" ? r.strings.join("") : ""}`);
    const tlsRpt = "_smtp._tls.shop.example TXT v=TLSRPTv1; rua=mailto:postmaster@shop.example";
    assert.deepEqual(lines(mail), [`_mta-sts.shop.example TXT v=STSv1; id=${expectedPolicyId("ns1.coyote-host.net")}`, tlsRpt, "mta-sts.shop.example CNAME ns1.coyote-host.net"]);
    assert.deepEqual(lines(mail, serverSpec({ certificates: { mode: "local-ca" } })), [tlsRpt], "no MTA-STS with the local CA: senders could not validate the box's certificate");
    const moved = lines(mail, serverSpec({ hostname: "mx2.coyote-host.net" }));
    assert.equal(moved[0], `_mta-sts.shop.example TXT v=STSv1; id=${expectedPolicyId("mx2.coyote-host.net")}`, "another mx, another id");
    assert.notEqual(expectedPolicyId("mx2.coyote-host.net"), expectedPolicyId("ns1.coyote-host.net"));
    assert.deepEqual(lines(serviceSpec("w", { domains: [{ name: "shop.example" }], web: { hostnames: ["shop.example"], backend: { kind: "static", root: "." } } })), [], "no mail, neither");
    const own = serviceSpec("o", {
      domains: [{ name: "shop.example", records: [{ type: "CNAME", name: "mta-sts", target: "policy.mailhost.example" }] }],
      mail: {},
    });
    assert.deepEqual(lines(own), [tlsRpt, "mta-sts.shop.example CNAME policy.mailhost.example"], "the spec's own policy host stands; no id for a policy the box does not serve");
  });

  test("a service without authoritative domains has no zones; no address records without server addresses", () => {
    const none = serviceSpec("ext", { domains: [{ name: "example.com", authoritative: false }], web: { hostnames: ["example.com"], backend: { kind: "static", root: "." } } });
    assert.deepEqual(zonesFor(none, serverSpec()), []);
    const bare = serverSpec({ publicIPv4: undefined, publicIPv6: undefined, certificates: { mode: "local-ca" } });
    const web = serviceSpec("web", { domains: [{ name: "example.com" }], web: { hostnames: ["www.example.com"], backend: { kind: "static", root: "." } } });
    const [zone] = zonesFor(web, bare);
    assert.deepEqual(zone?.records.map((r) => `${r.name} ${r.type}`), ["example.com NS"], "no A/AAAA, no CAA with a local CA");
  });

  test("a web hostname belongs to the most specific zone; the server's hostname inside a zone gets its addresses", () => {
    const spec = serviceSpec("nest", {
      domains: [{ name: "example.com" }, { name: "dev.example.com" }],
      web: { hostnames: ["app.dev.example.com", "www.example.com"], backend: { kind: "static", root: "." } },
    });
    const zones = zonesFor(spec, serverSpec({ hostname: "ns1.example.com", publicIPv6: undefined }));
    const names = (zone: string) => zones.find((z) => z.name === zone)?.records.filter((r) => r.type === "A").map((r) => r.name);
    assert.deepEqual(names("example.com"), ["ns1.example.com", "www.example.com"]);
    assert.deepEqual(names("dev.example.com"), ["app.dev.example.com"]);
  });

  test("a CNAME sharing its name with other data is a terminal InvalidZone error naming the name", () => {
    const clash = (records: unknown[], extra: Record<string, unknown> = {}) => () =>
      zonesFor(serviceSpec("bad", { domains: [{ name: "example.org", records }], ...extra }), serverSpec());
    const check = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(fn, (error: unknown) => {
        assert.ok(error instanceof ActuatorError);
        assert.equal(error.reason, "InvalidZone");
        assert.equal(error.terminal, true);
        assert.match(error.message, pattern);
        return true;
      });
    check(clash([{ type: "CNAME", name: "www", target: "a.example.net" }, { type: "TXT", name: "www", text: "x" }]), /^rendering zone example\.org: the CNAME at www\.example\.org shares its name with other records \(TXT\)/);
    check(clash([{ type: "CNAME", name: "@", target: "a.example.net" }]), /CNAME at example\.org is not allowed: the zone apex/);
    check(clash([{ type: "CNAME", name: "x", target: "a.example.net" }, { type: "CNAME", name: "x", target: "b.example.net" }]), /x\.example\.org has 2 CNAME records/);
    // A generated record counts too: the web hostname's A record.
    check(clash([{ type: "CNAME", name: "www", target: "a.example.net" }], { web: { hostnames: ["www.example.org"], backend: { kind: "static", root: "." } } }), /www\.example\.org shares its name with other records \(A, AAAA\)/);
  });

  test("duplicates collapse, an RRset gets one TTL, and the order of the spec does not matter", () => {
    const records = [
      { type: "A", name: "a", address: "192.0.2.2", ttl: 600 },
      { type: "A", name: "a", address: "192.0.2.1" },
      { type: "A", name: "a", address: "192.0.2.2" },
      { type: "AAAA", name: "a", address: "2001:DB8:0:0::1" },
      { type: "AAAA", name: "a", address: "2001:db8::1" },
      { type: "MX", name: "@", priority: 10, exchange: "ns1.coyote-host.net" },
    ];
    const one = zonesFor(serviceSpec("d", { domains: [{ name: "example.org", records }], mail: {} }), serverSpec());
    const two = zonesFor(serviceSpec("d", { domains: [{ name: "example.org", records: [...records].reverse() }], mail: {} }), serverSpec());
    assert.equal(renderZoneFile(one[0] ?? assert.fail(), "d", 1), renderZoneFile(two[0] ?? assert.fail(), "d", 1));
    const a = one[0]?.records.filter((r) => r.name === "a.example.org");
    assert.deepEqual(a?.map((r) => `${r.type} ${r.ttl} ${"address" in r ? r.address : ""}`), ["A 600 192.0.2.1", "A 600 192.0.2.2", "AAAA 3600 2001:db8::1"]);
    assert.equal(one[0]?.records.filter((r) => r.type === "MX").length, 1, "the spec's MX equal to the generated one is one record");
  });
});

describe("helpers", () => {
  test("TXT values split into character-strings of at most 255 bytes, never inside a character", () => {
    assert.deepEqual(splitTxt("short"), ["short"]);
    const long = "x".repeat(600);
    assert.deepEqual(splitTxt(long).map((s) => s.length), [255, 255, 90]);
    const wide = "é".repeat(200);
    const parts = splitTxt(wide);
    assert.ok(parts.every((p) => Buffer.byteLength(p) <= 255));
    assert.equal(parts.join(""), wide);
    assert.deepEqual(parts.map((p) => Buffer.byteLength(p)), [254, 146]);
  });

  test("serials grow by one, start at 1 and wrap past 2^32 - 1 to 1", () => {
    assert.equal(nextSerial(undefined), 1);
    assert.equal(nextSerial(0), 1);
    assert.equal(nextSerial(41), 42);
    assert.equal(nextSerial(0xffffffff), 1);
  });

  test("zone files carry owner and serial; JSON zone files validate", () => {
    const [zone] = zonesFor(fullService(), serverSpec());
    assert.ok(zone);
    assert.deepEqual(parseZoneFileHeader(renderZoneFile(zone, "shop", 12)), { owner: "shop", serial: 12 });
    assert.equal(parseZoneFileHeader("example.org. 3600 IN A 192.0.2.1\n"), undefined);
    const json = renderZoneJson(zone, "shop", 12);
    assert.deepEqual(parseZoneJsonHeader(json), { owner: "shop", serial: 12 });
    const parsed = DnsZoneFile.parse(JSON.parse(json));
    assert.equal(parsed.records.length, zone.records.length);
    assert.equal(renderZoneJson(zone, "shop", 12), json, "rendering is deterministic");
    const outside = { ...parsed, records: [{ name: "www.example.com", ttl: 60, type: "A", address: "192.0.2.1" }] };
    assert.match(DnsZoneFile.safeParse(outside).error?.message ?? "", /not inside zone example\.org/);
  });

  test("the DKIM contract: schema and path", () => {
    assert.ok(DkimRecordFile.safeParse({ selector: "coyote", txt: DKIM_TXT }).success);
    assert.ok(!DkimRecordFile.safeParse({ selector: "Bad Selector", txt: DKIM_TXT }).success);
    assert.ok(!DkimRecordFile.safeParse({ selector: "coyote", txt: "hello" }).success);
    assert.equal(dkimFilePath("/var/lib/coyote", "example.org"), "/var/lib/coyote/mail/dkim/example.org.json");
    assert.throws(() => dkimFilePath("/var/lib/coyote", "../secrets/x"), /not a domain name/);
  });

  test("knot.conf lists the zones sorted and refuses bad addresses", () => {
    const conf = renderKnotConf(["b.example", "a.example", "b.example"], { zonesDir: "/z", listen: ["127.0.0.1:5300", "[::1]:5300"], controlSocket: "/run/k.sock" });
    assert.match(conf, /listen: \[ "127\.0\.0\.1@5300", "::1@5300" \]/);
    assert.match(conf, /zone:\n {2}- domain: "a\.example"\n {2}- domain: "b\.example"\n$/);
    assert.doesNotMatch(renderKnotConf([], { zonesDir: "/z", listen: ["127.0.0.1:53"], controlSocket: "/s" }), /zone:/);
    assert.throws(() => renderKnotConf([], { zonesDir: "/z", listen: ["localhost:53"], controlSocket: "/s" }), /not an ip:port listen address/);
    assert.throws(() => renderKnotConf([], { zonesDir: '/z"', listen: ["127.0.0.1:53"], controlSocket: "/s" }), /cannot hold quotes/);
  });
});
