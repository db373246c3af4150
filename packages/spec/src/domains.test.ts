import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { domainConflict, domainNameProblem, heldNames, serviceNameIssues } from "./domains.ts";
import { ContractError } from "./errors.ts";
import { StateStore } from "./store.ts";
import type { ServiceSpec } from "./specs.ts";

const box = { hostname: "coyote.host.net", customerDomain: "box.net" };

/** Hostile names, each with the class of protection that must refuse it and a word of the message. */
const HOSTILE: readonly (readonly [name: string, why: string, says: string])[] = [
  // public suffixes, ICANN and private
  ["co.uk", "public suffix", "public suffix"],
  ["com.au", "public suffix", "public suffix"],
  ["github.io", "private suffix", "shared hosting"],
  ["blogspot.com", "private suffix", "shared hosting"],
  // special-use names
  ["localhost.localdomain", "special use", "special use"],
  ["printer.local", "special use (mDNS)", ".local"],
  ["shop.test", "special use", ".test"],
  ["x.invalid", "special use", ".invalid"],
  ["site.example", "special use", ".example"],
  ["abcdefghijklmnop.onion", "special use (Tor)", ".onion"],
  ["router.home.arpa", "special use (home networks)", ".arpa"],
  ["1.0.0.127.in-addr.arpa", "reverse zone", ".arpa"],
  ["corp.internal", "special use", ".internal"],
  ["name.alt", "special use", ".alt"],
  ["example.org", "documentation", "documentation"],
  ["shop.example.com", "documentation", "documentation"],
  // well-known public domains and names under them
  ["gmail.com", "well-known", "well-known"],
  ["mx.google.com", "well-known", "well-known"],
  ["outlook.com", "well-known", "well-known"],
  // labels clients and CAs look up by name, anywhere in the name
  ["mta-sts.bob.org", "special label", "mta-sts"],
  ["openpgpkey.bob.org", "special label", "openpgpkey"],
  ["autoconfig.bob.org", "special label", "autoconfig"],
  ["autodiscover.alice.box.net", "special label under the customer domain", "autodiscover"],
  ["wpad.bob.org", "special label", "wpad"],
  ["isatap.bob.org", "special label", "isatap"],
  ["_acme-challenge.bob.org", "underscore label", "_acme-challenge"],
  ["mta-sts.box.net", "special label right under the customer domain", "mta-sts"],
  // the box's own names
  ["box.net", "the customer domain's apex", "is the box's own domain; choose a name under it, like yourname.box.net"],
  ["net", "a parent of the box's names (and a suffix)", "box's own"],
  ["coyote.host.net", "the box's hostname", "box's own name"],
  ["host.net", "a parent of the box's hostname", "box's own name"],
  ["x.coyote.host.net", "a child of the box's hostname", "box's own name"],
];

describe("domainNameProblem", () => {
  for (const [name, why, says] of HOSTILE) {
    test(`refuses ${name} (${why})`, () => {
      const problem = domainNameProblem(name, box);
      assert.ok(problem !== undefined, `${name} was accepted`);
      assert.ok(problem.includes(says), `${name}: ${problem}`);
    });
  }

  test("accepts a customer's own registrable domain, a name under one, and names under the customer domain", () => {
    for (const name of ["bob.org", "shop.bob.org", "alice.github.io", "bob.co.uk", "alice.box.net"]) assert.equal(domainNameProblem(name, box), undefined, name);
  });

  test("names under the customer domain are allowed even when the box's hostname is the customer domain", () => {
    assert.equal(domainNameProblem("alice.box.net", { hostname: "box.net", customerDomain: "box.net" }), undefined);
    assert.match(domainNameProblem("box.net", { hostname: "box.net", customerDomain: "box.net" }) ?? "", /box's own name/);
  });

  test("refuses a parent of the customer domain that holds nothing else of the box", () => {
    assert.equal(domainNameProblem("box.org", { hostname: "coyote.host.net", customerDomain: "c.box.org" }), "box.org holds the box's own domain c.box.org; choose another domain");
  });

  test("names under a special-use customer domain are allowed (the admin chose it), its parent is not", () => {
    const local = { hostname: "coyote.box.test", customerDomain: "box.test" };
    assert.equal(domainNameProblem("alice.box.test", local), undefined);
    assert.match(domainNameProblem("other.test", local) ?? "", /special use/);
  });
});

describe("domainConflict", () => {
  const held = heldNames([
    { id: "bob", domains: [{ name: "bob.org", authoritative: true, records: [] }] },
    { id: "alice", domains: [{ name: "alice.box.net", authoritative: false, records: [] }], web: { hostnames: ["*.wild.alice.box.net"], backend: { kind: "upstream", address: "127.0.0.1:1" } } },
  ]);

  test("refuses an equal name, a parent and a child of another service's name", () => {
    assert.match(domainConflict("bob.org", held) ?? "", /already taken/);
    assert.match(domainConflict("shop.bob.org", held) ?? "", /lies in bob\.org/);
    assert.match(domainConflict("x.wild.alice.box.net", held) ?? "", /lies in (wild\.)?alice\.box\.net/);
    assert.match(domainConflict("box.net", held) ?? "", /holds alice\.box\.net/);
    assert.match(domainConflict("org", held) ?? "", /holds bob\.org/);
  });

  test("accepts a name beside the others", () => {
    assert.equal(domainConflict("bobby.org", held), undefined);
    assert.equal(domainConflict("carol.box.net", held), undefined);
  });
});

function service(id: string, name: string, owned: boolean): ServiceSpec {
  const spec: ServiceSpec = { schemaVersion: 1, kind: "Service", id, domains: [{ name, authoritative: true, records: [] }] };
  return owned ? { ...spec, owner: { customerId: `u-${id}`, email: `${id}@mail.net` } } : spec;
}

describe("serviceNameIssues", () => {
  test("names the field of each refused name and leaves the service's own older version out", () => {
    const others = [service("bob", "bob.org", true)];
    assert.deepEqual(serviceNameIssues(service("bob", "bob.org", true), box, others), []);
    const spec = { ...service("eve", "eve.org", true), web: { hostnames: ["www.bob.org"], backend: { kind: "upstream" as const, address: "127.0.0.1:1" } } } as ServiceSpec;
    assert.deepEqual(serviceNameIssues(spec, box, others), [{ path: ["web", "hostnames", 0], message: "www.bob.org lies in bob.org, which another service has; choose another domain" }]);
  });
});

describe("StateStore.applySpec refuses a customer's service that claims what it cannot", () => {
  test("a parent of another service's domain, a public suffix, and the box's hostname; the admin's own service is not checked", async () => {
    const root = await mkdtemp(join(tmpdir(), "coyote-domains-"));
    try {
      const store = await StateStore.open(join(root, "state"));
      const author = { name: "shop", email: "shop@mail.net" };
      await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "coyote.host.net", customerDomain: "box.net" }, { author });
      await store.applySpec(service("bob", "shop.bob.org", true), { author });
      for (const [name, says] of [["bob.org", "holds shop.bob.org"], ["co.uk", "public suffix"], ["coyote.host.net", "box's own name"]] as const) {
        await assert.rejects(store.applySpec(service("eve", name, true), { author }), (error: unknown) => {
          assert.ok(error instanceof ContractError, String(error));
          assert.match(error.message, /domains\[0\]\.name/);
          assert.ok(error.message.includes(says), error.message);
          return true;
        });
      }
      assert.equal(await store.getSpec("eve"), undefined);
      // The admin's own service answers to the admin, who writes its spec by hand.
      await store.applySpec(service("admin-site", "site.test", false), { author });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
