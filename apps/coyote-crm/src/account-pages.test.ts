// The account pages and autoconfig for real: the built Next.js app behind the crm's own server, a
// customer signed up through the shop, driven as a browser without JavaScript. Needs the app built
// (`npm run build`).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { StateStore, type ServiceSpec } from "@coyote/spec";
import { closeCrmDb, crmDb } from "./lib/instance.ts";
import { ensureDefaultPlan } from "./lib/plans.ts";
import { signUp } from "./lib/shop/signup.ts";
import { readServer } from "./lib/state.ts";
import { startCrm, type RunningCrm } from "./server.ts";
import { scramVerifies, SIGNUP_PASSWORD } from "./test/accounts.ts";
import { CookieJar, getPage, requestAs, submitForm } from "./test/panel.ts";

const AUTHOR = { name: "admin", email: "admin@box.net" };
const NEW_PASSWORD = "Walnut-harbour-orchid-93";
const MAIL = { smtpListen: "127.0.0.1:2525", imapsListen: "127.0.0.1:10993", imapListen: "127.0.0.1:10143", submissionsListen: "127.0.0.1:10465", submissionListen: "127.0.0.1:10587" };
let dir = "";
let logger: CoyoteLogger;
let crm: RunningCrm;
let store: StateStore;
let serviceId = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "crm-account-"));
  store = await StateStore.open(dir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "coyote.host.net", customerDomain: "box.net", activated: true, signupsOpen: true, mail: MAIL, xmpp: { clientPort: 15222 } }, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "web-only", domains: [{ name: "web-only.org" }] }, { author: AUTHOR });
  logger = createLogger({ component: "coyote-crm", file: join(dir, "logs", "coyote-crm.log") });
  crm = await startCrm({ stateDir: dir, logger, port: 0, sampleIntervalMs: 60_000, scrypt: { logN: 10, r: 8, p: 1 }, secureCookies: false });
  ensureDefaultPlan(crmDb());
  const made = await signUp({ db: crmDb(), store, server: await readServer(store), stateDir: dir, clientAddress: "127.0.0.1" }, { email: "alice@mail.net", password: SIGNUP_PASSWORD, confirm: SIGNUP_PASSWORD, domain: "alice.box.net", plan: "starter" });
  assert.ok(made.ok, JSON.stringify(made));
  serviceId = made.serviceId;
});
after(async () => {
  await crm.close();
  closeCrmDb();
  await logger.close();
  await rm(dir, { recursive: true, force: true });
});

async function signIn(password: string): Promise<{ jar: CookieJar; status: number; html: string }> {
  const jar = new CookieJar();
  const answer = await submitForm(crm.url, "/login", "email", { email: "alice@mail.net", password }, jar);
  return { jar, ...answer };
}

async function spec(): Promise<ServiceSpec> {
  const read = await store.getSpec(serviceId);
  assert.ok(read?.kind === "Service");
  return read;
}

describe("autoconfig on the panel's listener", () => {
  test("answers Thunderbird's two lookups for a mail domain, with the server spec's ports", async () => {
    for (const [host, path] of [
      ["autoconfig.alice.box.net", "/mail/config-v1.1.xml"],
      ["alice.box.net", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40alice.box.net"],
      // As snitch-proxy passes it on: the Host as the client sent it, port included.
      ["autoconfig.alice.box.net:8443", "/mail/config-v1.1.xml?emailaddress=alice%40alice.box.net"],
    ] as const) {
      const answer = await requestAs(crm.url, "GET", host, path);
      assert.equal(answer.status, 200, `${host}${path}: ${answer.body}`);
      assert.equal(answer.type, "application/xml; charset=utf-8");
      assert.match(answer.body, /<emailProvider id="alice\.box\.net">/);
      for (const port of [10993, 10143, 10465, 10587]) assert.match(answer.body, new RegExp(`<hostname>coyote\\.host\\.net</hostname>\\s*<port>${port}</port>`));
    }
  });

  test("refuses what it cannot answer, and the panel still refuses foreign hosts", async () => {
    const cases: Array<[string, string, string, number]> = [
      ["GET", "autoconfig.web-only.org", "/mail/config-v1.1.xml", 404],
      ["GET", "autoconfig.nobody.example", "/mail/config-v1.1.xml", 404],
      ["POST", "autoconfig.alice.box.net", "/mail/config-v1.1.xml", 405],
      ["GET", "autoconfig.<x>.net", "/mail/config-v1.1.xml", 400],
      ["GET", "alice.box.net", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=eve@evil.example", 400],
      ["GET", "alice.box.net", "/login", 421],
      ["GET", "autoconfig.alice.box.net", "/", 421],
      // The customer's names reach the panel only for the two autoconfig files.
      ["GET", "autoconfig.alice.box.net", "/admin", 421],
      ["GET", "autoconfig.alice.box.net:8443", "/account", 421],
      ["POST", "autoconfig.alice.box.net", "/login", 421],
      ["GET", "autoconfig.alice.box.net", "/mail/other.xml", 421],
      ["GET", "autoconfig.alice.box.net", "/mail/config-v1.1.xml/../../admin", 421],
      ["GET", "alice.box.net", "/.well-known/autoconfig/other", 421],
      ["GET", "alice.box.net", "/mail/config-v1.1.xml", 421],
      ["GET", "autoconfig.alice.box.net", "/.well-known/autoconfig/mail/config-v1.1.xml", 404],
    ];
    for (const [method, host, path, status] of cases) {
      const answer = await requestAs(crm.url, method, host, path);
      assert.equal(answer.status, status, `${method} ${host}${path}: ${answer.body}`);
      assert.ok(!answer.body.includes("<x>") && !answer.body.includes("evil"), "nothing the client sent comes back");
      assert.doesNotMatch(answer.body, /<html|__next/i, `${method} ${host}${path}: no panel page`);
    }
    const head = await requestAs(crm.url, "HEAD", "autoconfig.alice.box.net", "/mail/config-v1.1.xml");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  });
});

describe("a customer's account pages", () => {
  test("the service page shows the mail and chat apps' settings from the server spec", async () => {
    const { jar, status } = await signIn(SIGNUP_PASSWORD);
    assert.equal(status, 303);
    const page = await getPage(crm.url, `/account/services/${serviceId}`, jar);
    assert.equal(page.status, 200);
    const text = page.html.replace(/<!-- -->/g, "");
    assert.match(text, /coyote\.host\.net<\/code>, port 10993 \(SSL\/TLS\) or 10143 \(STARTTLS\)/);
    assert.match(text, /coyote\.host\.net<\/code>, port 10465 \(SSL\/TLS\) or 10587 \(STARTTLS\), with your user name and password/);
    assert.match(text, /coyote\.host\.net<\/code>, port 15222 \(STARTTLS\)/);
    assert.match(text, /1 of 5 mailboxes, 0 of 10 aliases/);
  });

  test("adds a mailbox and an alias through the page's forms, and refuses a bad one in place", async () => {
    const { jar } = await signIn(SIGNUP_PASSWORD);
    const path = `/account/services/${serviceId}`;
    const bad = await submitForm(crm.url, path, "password", { mailbox: "Post Master", password: NEW_PASSWORD, confirm: NEW_PASSWORD }, jar);
    assert.equal(bad.status, 200);
    assert.match(bad.html, /may hold only a-z, 0-9, dot, hyphen and underscore, not a space/);
    const added = await submitForm(crm.url, path, "password", { mailbox: "shop", password: NEW_PASSWORD, confirm: NEW_PASSWORD }, jar);
    assert.match(added.html, /Added the mailbox shop@alice\.box\.net\./);
    const alias = await submitForm(crm.url, path, "to", { alias: "postmaster", to: "shop@alice.box.net" }, jar);
    assert.match(alias.html, /Added the alias postmaster@alice\.box\.net, which forwards to shop@alice\.box\.net\./);
    const reset = await submitForm(crm.url, path, "mailboxPassword", { address: "shop@alice.box.net", mailboxPassword: "Juniper-canyon-otter-31", mailboxConfirm: "Juniper-canyon-otter-31" }, jar);
    assert.match(reset.html, /The mailbox shop@alice\.box\.net has its new password\./);
    const mail = (await spec()).mail;
    assert.deepEqual(mail?.mailboxes.map((b) => b.address), ["alice@alice.box.net", "shop@alice.box.net"]);
    const shopHash = (await store.readSecret(mail.mailboxes[1]?.credential ?? ""))?.toString("utf8") ?? "";
    assert.ok(scramVerifies(shopHash, "Juniper-canyon-otter-31"), "the mailbox's own new password");
    assert.deepEqual(mail.aliases, [{ address: "postmaster@alice.box.net", to: ["shop@alice.box.net"] }]);
  });

  test("a password change moves the panel, mail and XMPP to the new password; the old one signs in nowhere", async () => {
    const { jar } = await signIn(SIGNUP_PASSWORD);
    const wrong = await submitForm(crm.url, "/account/password", "current", { current: "not-my-password", password: NEW_PASSWORD, confirm: NEW_PASSWORD }, jar);
    assert.match(wrong.html, /that is not your current password/);
    const before = await spec();
    const changed = await submitForm(crm.url, "/account/password", "current", { current: SIGNUP_PASSWORD, password: NEW_PASSWORD, confirm: NEW_PASSWORD }, jar);
    assert.equal(changed.status, 200);
    assert.match(changed.html, /Your password is changed\./);
    // This browser got a fresh session; the old password's sessions ended.
    assert.equal((await getPage(crm.url, "/account", jar)).status, 200);

    const after = await spec();
    assert.equal(after.generation, (before.generation ?? 0) + 1);
    for (const credential of [after.mail?.mailboxes[0]?.credential, after.xmpp?.users[0]?.credential]) {
      const hash = (await store.readSecret(credential ?? ""))?.toString("utf8") ?? "";
      assert.ok(scramVerifies(hash, NEW_PASSWORD) && !scramVerifies(hash, SIGNUP_PASSWORD), "mail and xmpp take the new password");
    }
    const old = await signIn(SIGNUP_PASSWORD);
    assert.equal(old.status, 200);
    assert.match(old.html, /wrong e-mail address or password/);
    assert.equal((await signIn(NEW_PASSWORD)).status, 303);
  });
});
