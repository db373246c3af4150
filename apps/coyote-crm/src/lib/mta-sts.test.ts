import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mtaStsPolicyText } from "@coyote/spec";
import { mailLookupOf } from "./mail-lookups.ts";
import { mtaStsAsk } from "./mta-sts.ts";

const PATH = "/.well-known/mta-sts.txt";

describe("mtaStsAsk", () => {
  it("finds the domain of mta-sts.<domain>, as senders ask it", () => {
    assert.deepEqual(mtaStsAsk("mta-sts.alice.example", PATH), { kind: "domain", domain: "alice.example" });
    assert.deepEqual(mtaStsAsk("MTA-STS.Alice.Example.:8443", PATH), { kind: "domain", domain: "alice.example" });
  });

  it("leaves every other request to the panel: other paths, other hosts, queries", () => {
    for (const [host, target] of [
      ["mta-sts.alice.example", "/"],
      ["mta-sts.alice.example", `${PATH}?x=1`],
      ["mta-sts.alice.example", `${PATH}/`],
      ["mta-sts.alice.example", "/.well-known/MTA-STS.txt"],
      ["mta-sts.alice.example", `/x/..${PATH}`],
      ["mta-sts.alice.example", "/.well-known/mta-sts.txt%00"],
      ["alice.example", PATH],
      ["www.mta-sts.alice.example", PATH],
      ["autoconfig.alice.example", PATH],
    ] as const) {
      assert.deepEqual(mtaStsAsk(host, target), { kind: "not-mta-sts" }, `${host} ${target}`);
      assert.equal(mailLookupOf(host, target), undefined, `${host} ${target}: no lookup at all`);
    }
  });

  it("refuses hostile hosts without repeating them", () => {
    for (const [host, why] of [
      ["mta-sts.<script>.example", /not a domain name/],
      ["mta-sts.a&b.example", /not a domain name/],
      [`mta-sts.${"a".repeat(250)}.example`, /not a domain name/],
      ["mta-sts.com", /no domain after mta-sts\./],
      ["[::1]:443", /not a domain name/],
      ["", /not a domain name/],
    ] as const) {
      const ask = mtaStsAsk(host, PATH);
      assert.equal(ask.kind, "bad", host);
      assert.match(ask.why, why);
      assert.ok(!ask.why.includes("<") && !ask.why.includes("&"));
    }
  });
});

describe("the MTA-STS policy", () => {
  it("is exactly RFC 8461's form: enforce, the box's hostname as the one mx, a week, CRLF lines", () => {
    assert.equal(mtaStsPolicyText({ hostname: "mx.box.example" }), "version: STSv1\r\nmode: enforce\r\nmx: mx.box.example\r\nmax_age: 604800\r\n");
  });
});
