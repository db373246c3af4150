import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ServiceSpec } from "@coyote/spec";
import { classifyDomain, deriveServiceId, domainTaken, mailLocalPart, normalizeDomain } from "./domains.ts";

const server = { hostname: "coyote.box.test", customerDomain: "box.test" };

describe("classifyDomain", () => {
  it("hands out one label under the customer domain, not authoritative", () => {
    assert.deepEqual(classifyDomain("alice.box.test", server), { ok: true, name: "alice.box.test", authoritative: false });
  });

  it("treats any other name as the customer's own zone", () => {
    assert.deepEqual(classifyDomain("bob.org", server), { ok: true, name: "bob.org", authoritative: true });
    assert.deepEqual(classifyDomain("blog.bob.org", server), { ok: true, name: "blog.bob.org", authoritative: true });
    assert.deepEqual(classifyDomain("notbox.net", server), { ok: true, name: "notbox.net", authoritative: true });
  });

  it("refuses what no one may claim: public suffixes, special-use and well-known names, labels clients look up", () => {
    for (const [name, says] of [["co.uk", "public suffix"], ["github.io", "public suffix"], ["notbox.test", "special use"], ["example.org", "documentation"], ["gmail.com", "well-known"], ["mta-sts.bob.org", "mta-sts"], ["autoconfig.box.test", "reserved"]] as const) {
      const claim = classifyDomain(name, server);
      assert.ok(!claim.ok && claim.error.includes(says), `${name}: ${JSON.stringify(claim)}`);
    }
  });

  it("refuses what is not a domain name", () => {
    for (const name of ["", "localhost", "-a.org", "a..org", "under_score.org", "1.2.3.4", `${"a".repeat(64)}.org`]) {
      assert.equal(classifyDomain(name, server).ok, false, name);
    }
  });

  it("refuses the box's own names", () => {
    assert.deepEqual(classifyDomain("box.test", server), { ok: false, error: "box.test is the box's own domain; choose a name under it, like yourname.box.test" });
    assert.deepEqual(classifyDomain("a.b.box.test", server), { ok: false, error: "choose one name right under box.test, like yourname.box.test (a.b.box.test is too deep)" });
    assert.deepEqual(classifyDomain("www.box.test", server), { ok: false, error: "www.box.test is reserved for the box itself; choose another name" });
    assert.deepEqual(classifyDomain("test", { hostname: "coyote.test" }).ok, false);
    assert.deepEqual(classifyDomain("coyote.test", { hostname: "panel.coyote.test" }), { ok: false, error: "coyote.test holds the box's own name panel.coyote.test; choose another domain" });
    assert.deepEqual(classifyDomain("x.panel.coyote.test", { hostname: "panel.coyote.test" }), { ok: false, error: "x.panel.coyote.test belongs to the box itself (panel.coyote.test); choose your own domain" });
  });

  it("refuses a zone that holds the customer domain", () => {
    assert.deepEqual(classifyDomain("box.test", { hostname: "h.other.test", customerDomain: "c.box.test" }), { ok: false, error: "box.test holds the box's own domain c.box.test; choose another domain" });
  });
});

describe("normalizeDomain", () => {
  it("trims, lowercases and drops a trailing dot", () => {
    assert.equal(normalizeDomain("  Example.ORG. "), "example.org");
  });
});

describe("domainTaken", () => {
  const spec = (domains: Array<{ name: string; authoritative: boolean }>, hostnames?: string[]): ServiceSpec => ({
    schemaVersion: 1,
    kind: "Service",
    id: "s",
    domains: domains.map((d) => ({ ...d, records: [] })),
    ...(hostnames === undefined ? {} : { web: { hostnames, backend: { kind: "upstream" as const, address: "127.0.0.1:1" } } }),
  });

  it("finds a domain in specs, web hostnames, zones and customer rows", () => {
    const services = [spec([{ name: "a.org", authoritative: true }]), spec([{ name: "w.test", authoritative: false }], ["w.test", "*.w.test"])];
    assert.equal(domainTaken("a.org", services, []), "a.org is already taken");
    assert.equal(domainTaken("x.a.org", services, []), "x.a.org is already taken: it lies in a.org, which another service holds");
    assert.equal(domainTaken("x.w.test", services, []), "x.w.test is already taken");
    assert.equal(domainTaken("c.org", services, ["c.org"]), "c.org is already taken");
  });

  it("refuses names under and above another service's names, also for a customer's row", () => {
    const services = [spec([{ name: "w.test", authoritative: false }], ["*.w.test"])];
    assert.equal(domainTaken("y.x.w.test", services, []), "y.x.w.test lies in w.test, which another service has; choose another domain");
    assert.equal(domainTaken("test", services, []), "test holds w.test, which another service has; choose another domain");
    assert.equal(domainTaken("x.b.org", services, ["b.org"]), "x.b.org lies in b.org, which another service has; choose another domain");
  });

  it("leaves free names free", () => {
    const services = [spec([{ name: "w.test", authoritative: false }], ["*.w.test"])];
    assert.equal(domainTaken("a.org", services, ["b.org"]), undefined);
    assert.equal(domainTaken("sub.w.test.org", services, []), undefined);
  });
});

describe("deriveServiceId", () => {
  it("turns dots into hyphens", () => {
    assert.equal(deriveServiceId("alice.box.test", () => false), "alice-box-test");
  });

  it("counts up while an id is taken", () => {
    const taken = new Set(["example-org", "example-org-2"]);
    assert.equal(deriveServiceId("example.org", (id) => taken.has(id)), "example-org-3");
  });

  it("keeps ids at 63 characters, without a trailing hyphen", () => {
    const domain = `${"a".repeat(61)}.${"b".repeat(10)}.org`;
    const id = deriveServiceId(domain, () => false);
    assert.equal(id, `${"a".repeat(61)}-b`);
    const second = deriveServiceId(domain, (i) => i === id);
    assert.equal(second, `${"a".repeat(61)}-2`);
    const long = `${"c".repeat(62)}.io`;
    assert.equal(deriveServiceId(long, () => false), "c".repeat(62), "the cut leaves no trailing hyphen");
  });

  it("never gives the reserved id server", () => {
    assert.equal(deriveServiceId("server", () => false), "server-2");
  });
});

describe("mailLocalPart", () => {
  it("keeps what mail and XMPP accept", () => {
    assert.equal(mailLocalPart("Alice.Smith@example.org"), "alice.smith");
    assert.equal(mailLocalPart("bob+shop@example.org"), "bobshop");
    assert.equal(mailLocalPart("j_o-e@example.org"), "j_o-e");
    assert.equal(mailLocalPart('".a..b."@example.org'), "a.b");
    assert.equal(mailLocalPart("ünï@example.org"), "n");
    assert.equal(mailLocalPart("+++@example.org"), "mail");
    assert.equal(mailLocalPart(`${"x".repeat(70)}@example.org`), "x".repeat(64));
    assert.equal(mailLocalPart("_bob-@example.org"), "bob");
  });

  it("never makes a mailbox of a role or system name", () => {
    for (const email of ["admin@gmail.com", "Postmaster@example.org", "Webmaster@example.org", "root@example.org", "mailer-daemon@example.org", "hostmaster@example.org"]) {
      assert.equal(mailLocalPart(email), "mail", email);
    }
  });
});
