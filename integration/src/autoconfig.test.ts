// Mail apps' autoconfig end to end: snickers routes a mail domain's two autoconfig lookups to the
// panel, snitch-proxy serves them over TLS with the local CA's certificates, and the panel (run
// as `coyote run coyote-crm` runs it, from the built app) answers config-v1.1.xml; the customer's
// own site keeps every other path of the domain, and the panel shows nothing else on those names.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { LocalCa, createSnickersActuator } from "@coyote/actuator-snickers";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore, validate } from "@coyote/spec";
import { startProxy, type RunningProxy } from "@coyote/snitch-proxy";
import { backend, get1, peerCertificate, type Backend } from "@coyote/snitch-proxy/testing";
import { freePorts, stopChild } from "@coyote/testing";
import { startPanel } from "./support/panel.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const XML = "application/xml; charset=utf-8";
let root = "";
let stateDir = "";
let proxy: RunningProxy;
let proxyLogger: CoyoteLogger;
let logger: CoyoteLogger;
let site: Backend;
let crm: ChildProcess | undefined;
let ca = "";

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-autoconfig-"));
  stateDir = join(root, "state");
  const [panel = 0, https = 0, http = 0, smtp = 0] = await freePorts(4);
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  const server = validate(ServerSpec, {
    schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", activated: true, runtime: "process",
    ports: { panel, https, http },
    mail: { smtpListen: `127.0.0.1:${smtp}`, imapsListen: "127.0.0.1:10993", submissionsListen: "127.0.0.1:10465" },
  }, "server");
  await store.applySpec(server, { author: AUTHOR });
  site = await backend("site");
  const shop = validate(ServiceSpec, {
    schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.example" }],
    mail: { mailboxes: [{ address: "anna@shop.example", passwordHash: "{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy" }] },
    web: { hostnames: ["shop.example"], backend: { kind: "upstream", address: site.address } },
  }, "shop");
  await store.applySpec(shop, { author: AUTHOR });
  const blog = validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id: "blog", domains: [{ name: "blog.example" }], web: { hostnames: ["blog.example"], backend: { kind: "upstream", address: site.address } } }, "blog");
  await store.applySpec(blog, { author: AUTHOR });

  // snickers as the minion runs it: a reconcile of each service, then the batch's commit.
  logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  const context = { stateDir, store, logger, signal: new AbortController().signal, server };
  const snickers = createSnickersActuator({ stateDir });
  for (const spec of [shop, blog]) {
    const target = { id: spec.id, spec };
    await snickers.apply(snickers.plan(target, await snickers.observe(target, context), server), target, context);
  }
  await snickers.commit?.(context);
  ca = (await LocalCa.open(join(stateDir, "proxy", "ca"), server.hostname)).certificatePem;

  proxyLogger = createLogger({ component: "snitch-proxy", file: logFileFor(stateDir, "snitch-proxy") });
  proxy = await startProxy({ stateDir, logger: proxyLogger, https: { host: "127.0.0.1", port: https }, http: { host: "127.0.0.1", port: http } });

  crm = await startPanel(stateDir, panel, join(root, "crm.out.log"));
});

after(async () => {
  if (crm) await stopChild(crm);
  await proxy.stop(500);
  await site.close();
  await proxyLogger.close();
  await logger.close();
  await rm(root, { recursive: true, force: true });
});

test("a mail app's two autoconfig lookups reach the panel through the proxy, over TLS the local CA vouches for", { timeout: 60_000 }, async () => {
  const port = proxy.httpsAddress.port;
  const cert = await peerCertificate(port, "autoconfig.shop.example", ca);
  assert.equal(cert.subjectaltname, "DNS:autoconfig.shop.example");
  for (const [host, path] of [
    ["autoconfig.shop.example", "/mail/config-v1.1.xml?emailaddress=anna%40shop.example"],
    ["shop.example", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=anna%40shop.example"],
  ] as const) {
    const answer = await get1(port, host, ca, path);
    assert.equal(answer.status, 200, `${host}${path}: ${answer.body}`);
    assert.equal(answer.headers["content-type"], XML);
    assert.match(answer.body, /<emailProvider id="shop\.example">/);
    assert.match(answer.body, /<incomingServer type="imap">\s*<hostname>box\.test<\/hostname>\s*<port>10993<\/port>\s*<socketType>SSL<\/socketType>/);
    assert.match(answer.body, /<outgoingServer type="smtp">\s*<hostname>box\.test<\/hostname>\s*<port>10465<\/port>/);
  }
  assert.equal(site.seen.length, 0, "the site saw none of them");
});

test("the site keeps every other path of the domain, and the panel shows nothing else on the customer's names", { timeout: 60_000 }, async () => {
  const port = proxy.httpsAddress.port;
  for (const path of ["/", "/mail/config-v1.1.xml", "/.well-known/other", "/admin"]) {
    const answer = await get1(port, "shop.example", ca, path);
    assert.deepEqual([answer.status, answer.body], [200, `site GET ${path} `], `shop.example${path} goes to the site`);
  }
  for (const path of ["/mail/admin", "/mail/config-v1.1.xml/../../admin"]) {
    const answer = await get1(port, "autoconfig.shop.example", ca, path);
    assert.equal(answer.status, 421, `autoconfig.shop.example${path}: ${answer.body}`);
    assert.doesNotMatch(answer.body, /<html|__next/i);
  }
  const admin = await get1(port, "autoconfig.shop.example", ca, "/admin");
  assert.equal(admin.status, 404, "the proxy has no route but the autoconfig path on that name");
  assert.match(admin.body, /No site here/);
  const other = await get1(port, "shop.example", ca, "/.well-known/autoconfig/other");
  assert.equal(other.status, 421, other.body);
  // A domain without mail here has no autoconfig name, and its well-known path is its own site's.
  await assert.rejects(get1(port, "autoconfig.blog.example", ca, "/mail/config-v1.1.xml"));
  const blog = await get1(port, "blog.example", ca, "/.well-known/autoconfig/mail/config-v1.1.xml");
  assert.deepEqual([blog.status, blog.body], [200, "site GET /.well-known/autoconfig/mail/config-v1.1.xml "]);
});
