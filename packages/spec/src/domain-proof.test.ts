import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isProven, needsProof, servedSpec } from "./domain-proof.ts";
import { ServiceSpec } from "./specs.ts";
import { validate } from "./validate.ts";

const TOKEN = "tok_0123456789abcdefghijkl";
const box = { hostname: "coyote.host.net", customerDomain: "box.net" };
const spec = validate(ServiceSpec, {
  schemaVersion: 1,
  kind: "Service",
  id: "bob",
  owner: { customerId: "u-bob", email: "bob@mail.net" },
  domains: [{ name: "bob.org", challenge: TOKEN }, { name: "bob.box.net", authoritative: false }],
  mail: { mailboxes: [{ address: "a@bob.org", passwordHash: "{SHA512-CRYPT}$6$x$y" }, { address: "a@bob.box.net", passwordHash: "{SHA512-CRYPT}$6$x$y" }], aliases: [{ address: "info@bob.org", to: ["a@bob.box.net"] }], catchAll: "a@bob.box.net" },
  xmpp: { users: [{ username: "a", domain: "bob.org", passwordHash: "{SCRAM-SHA-1}x" }, { username: "a", domain: "bob.box.net", passwordHash: "{SCRAM-SHA-1}x" }] },
  web: { hostnames: ["bob.org", "*.bob.org", "bob.box.net"], backend: { kind: "upstream", address: "127.0.0.1:9" } },
}, "(test)");

describe("needsProof", () => {
  test("a customer's own domain needs proof; a name under the box's customer domain, a vouched one and the admin's own service do not", () => {
    const [own, sub] = spec.domains;
    assert.ok(own && sub);
    assert.equal(needsProof(own, spec, box), true);
    assert.equal(needsProof(sub, spec, box), false);
    assert.equal(needsProof({ ...own, vouched: { by: "ada@box.net", at: "2026-01-01T00:00:00.000Z" } }, spec, box), false);
    assert.equal(needsProof(own, { owner: undefined }, box), false);
  });

  test("a proof counts only for the token the spec holds now", () => {
    const own = { name: "bob.org", challenge: TOKEN };
    assert.equal(isProven(own, [{ name: "bob.org", method: "txt", token: TOKEN, at: "2026-01-01T00:00:00.000Z" }]), true);
    assert.equal(isProven({ ...own, challenge: `${TOKEN}x` }, [{ name: "bob.org", method: "txt", token: TOKEN, at: "2026-01-01T00:00:00.000Z" }]), false);
    assert.equal(isProven(own, [{ name: "other.org", method: "txt", token: TOKEN, at: "2026-01-01T00:00:00.000Z" }]), false);
  });
});

describe("servedSpec", () => {
  test("leaves out an unproven domain with its mailboxes, aliases, XMPP users and web hostnames", () => {
    const served = servedSpec(spec, new Set(["bob.box.net"]));
    assert.deepEqual(served.domains.map((d) => d.name), ["bob.box.net"]);
    assert.deepEqual(served.mail?.mailboxes.map((m) => m.address), ["a@bob.box.net"]);
    assert.deepEqual(served.mail.aliases, []);
    assert.equal(served.mail.catchAll, "a@bob.box.net");
    assert.deepEqual(served.xmpp?.users.map((u) => u.domain), ["bob.box.net"]);
    assert.deepEqual(served.web?.hostnames, ["bob.box.net"]);
  });

  test("with nothing proven there is no web part left; with everything proven the spec is unchanged", () => {
    const none = servedSpec(spec, new Set());
    assert.deepEqual(none.domains, []);
    assert.equal(none.web, undefined);
    assert.equal(servedSpec(spec, new Set(["bob.org", "bob.box.net"])), spec);
  });
});
