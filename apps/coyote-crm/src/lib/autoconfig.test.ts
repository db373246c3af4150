import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AUTOCONFIG_PATH, autoconfigAsk, autoconfigXml, escapeXml, WELL_KNOWN_AUTOCONFIG_PATH } from "./autoconfig.ts";
import { connectionSettings, type ConnectionSettings } from "./shop/connection-settings.ts";
import { testServer } from "../test/accounts.ts";

/** The markup of a document: every tag name in order, and every attribute, without the text between. */
function skeleton(xml: string): string[] {
  return [...xml.matchAll(/<[^>]*>/g)].map((m) => m[0].replace(/="[^"]*"/g, '=""'));
}

describe("autoconfigAsk", () => {
  it("finds the domain at both of Thunderbird's addresses", () => {
    assert.deepEqual(autoconfigAsk("autoconfig.alice.example", AUTOCONFIG_PATH), { kind: "domain", domain: "alice.example" });
    assert.deepEqual(autoconfigAsk("AutoConfig.Alice.Example.:8443", `${AUTOCONFIG_PATH}?emailaddress=bob%40alice.example`), { kind: "domain", domain: "alice.example" });
    assert.deepEqual(autoconfigAsk("alice.example", `${WELL_KNOWN_AUTOCONFIG_PATH}?emailaddress=Bob@Alice.Example`), { kind: "domain", domain: "alice.example" });
    assert.deepEqual(autoconfigAsk("alice.example", WELL_KNOWN_AUTOCONFIG_PATH), { kind: "domain", domain: "alice.example" });
  });

  it("leaves every other request to the panel", () => {
    for (const [host, target] of [
      ["alice.example", "/"],
      ["alice.example", AUTOCONFIG_PATH],
      ["autoconfig.alice.example", `${AUTOCONFIG_PATH}/x`],
      ["autoconfig.alice.example", "/mail/config-v1.1.xml%00"],
      ["autoconfig.alice.example", "/MAIL/config-v1.1.xml"],
      ["autoconfig.alice.example", `/x/..${AUTOCONFIG_PATH}`],
      ["alice.example", `${WELL_KNOWN_AUTOCONFIG_PATH}?${"a".repeat(3000)}`],
    ] as const) {
      assert.deepEqual(autoconfigAsk(host, target), { kind: "not-autoconfig" }, `${host} ${target.slice(0, 80)}`);
    }
  });

  it("refuses hostile hosts and addresses without reflecting them", () => {
    for (const [host, target, why] of [
      ["autoconfig.<script>.example", AUTOCONFIG_PATH, /not a domain name/],
      ["autoconfig.a&b.example", AUTOCONFIG_PATH, /not a domain name/],
      ["autoconfig.alice.example\u0000.evil", AUTOCONFIG_PATH, /not a domain name/],
      [`autoconfig.${"a".repeat(250)}.example`, AUTOCONFIG_PATH, /not a domain name/],
      ["autoconfig.com", AUTOCONFIG_PATH, /no domain after autoconfig\./],
      ["[::1]:443", WELL_KNOWN_AUTOCONFIG_PATH, /not a domain name/],
      ["", WELL_KNOWN_AUTOCONFIG_PATH, /not a domain name/],
      ["alice.example", `${WELL_KNOWN_AUTOCONFIG_PATH}?emailaddress=bob@evil.example`, /not an address at alice\.example/],
      ["alice.example", `${WELL_KNOWN_AUTOCONFIG_PATH}?emailaddress=%3Cx%3E`, /not an address at alice\.example/],
      ["alice.example", `${WELL_KNOWN_AUTOCONFIG_PATH}?emailaddress=a@alice.example&emailaddress=b@alice.example`, /one emailaddress at most/],
    ] as const) {
      const ask = autoconfigAsk(host, target);
      assert.equal(ask.kind, "bad", `${host} ${target}`);
      assert.match(ask.why, why);
      assert.ok(!ask.why.includes("<") && !ask.why.includes("evil"), "the answer repeats nothing the client sent");
    }
  });
});

describe("autoconfigXml", () => {
  const settings = connectionSettings(testServer({ hostname: "mx.box.example", mail: { imapsListen: "0.0.0.0:993", imapListen: "0.0.0.0:143", submissionsListen: "0.0.0.0:465", submissionListen: "0.0.0.0:587" } }));

  it("lists IMAP and submission with their security, the user name left to the client", () => {
    const xml = autoconfigXml("alice.example", settings);
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">\n  <emailProvider id="alice.example">\n    <domain>alice.example</domain>'));
    const servers = [...xml.matchAll(/<(incoming|outgoing)Server type="(\w+)">\s*<hostname>([^<]*)<\/hostname>\s*<port>(\d+)<\/port>\s*<socketType>(\w+)<\/socketType>\s*<authentication>([\w-]+)<\/authentication>\s*<username>([^<]*)<\/username>/g)].map((m) => m.slice(1).join(" "));
    assert.deepEqual(servers, [
      "incoming imap mx.box.example 993 SSL password-cleartext %EMAILADDRESS%",
      "incoming imap mx.box.example 143 STARTTLS password-cleartext %EMAILADDRESS%",
      "outgoing smtp mx.box.example 465 SSL password-cleartext %EMAILADDRESS%",
      "outgoing smtp mx.box.example 587 STARTTLS password-cleartext %EMAILADDRESS%",
    ]);
  });

  it("escapes whatever it is given: hostile names cannot add or break markup", () => {
    const hostile = `a<b>&"'</domain><evil x="1"/>\u0000\u0007\ud800.example`;
    const hostileSettings: ConnectionSettings = { ...settings, host: `mx</hostname><evil/>&amp;` };
    const good = autoconfigXml("alice.example", settings);
    const bad = autoconfigXml(hostile, hostileSettings);
    assert.deepEqual(skeleton(bad), skeleton(good), "the same elements and attributes, nothing more");
    assert.ok(!bad.includes("<evil") && !bad.includes("\u0000") && !bad.includes("\u0007") && !bad.includes("\ud800"));
    assert.ok(bad.includes("<domain>a&#60;b&#62;&#38;&#34;&#39;&#60;/domain&#62;&#60;evil x=&#34;1&#34;/&#62;.example</domain>"));
    assert.ok(bad.includes("<hostname>mx&#60;/hostname&#62;&#60;evil/&#62;&#38;amp;</hostname>"));
    assert.equal(escapeXml("plain.example"), "plain.example");
  });
});
