// The certificates of XMPP domains: each domain of a service with XMPP gets one (Prosody presents
// it), from the same plan and steps as routed names, with no route; claimed against other services
// like them, and removed once the service no longer serves XMPP there.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, ServerSpec, ServiceSpec, StateStore, certificateFileName, parseJson, validate } from "@coyote/spec";
import { createDnsActuator } from "@coyote/actuator-dnsconf";
import { freePort, freeUdpTcpPort, waitFor } from "@coyote/testing";
import { CertificateMeta, createSnickersActuator } from "./actuator.ts";
import { LocalCa } from "./local-ca.ts";
import { RoutesFragment } from "./routes.ts";
import { serveChallenges, startFakeDns, startPebble } from "./test/support.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const PASSWORD = "{SCRAM-SHA-1}x";
const site = { kind: "static", root: "." };
const leafOf = (pem: string) => new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)?.[0] ?? "");
const gone = (file: string) => stat(file).then(() => false, (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT");

function server(extra: Record<string, unknown> = {}): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", ...extra }, "server");
}

function service(id: string, fields: Record<string, unknown>): ServiceSpec {
  return validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, ...fields }, id);
}

/** A service with XMPP alone, a user on `domain` (a zone the box serves unless told). */
const chatOnly = (id: string, domain: string, authoritative = true) => service(id, { domains: [{ name: domain, authoritative }], xmpp: { users: [{ username: "anna", domain, passwordHash: PASSWORD }], groupChat: true } });

/** A state folder with its logger and store, and readers of what snickers writes in it. */
async function stateFolder(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const logger: CoyoteLogger = createLogger({ component: "minion", file: join(dir, "logs", "minion.log") });
  const store = await StateStore.open(dir, { author: AUTHOR });
  const certs = join(dir, "proxy", "certs");
  return {
    dir,
    context: (spec: ServerSpec = server()): ActuatorContext => ({ stateDir: dir, store, logger, signal: new AbortController().signal, server: spec }),
    pemFile: (host: string) => join(certs, certificateFileName(host)),
    meta: (host: string) => readFile(join(certs, certificateFileName(host).replace(/\.pem$/, ".json")), "utf8").then((text) => parseJson(CertificateMeta, text, host), () => undefined),
    leaf: (host: string) => readFile(join(certs, certificateFileName(host)), "utf8").then(leafOf, () => undefined),
    fragment: (id: string) => readFile(join(dir, "proxy", "routes.d", `${id}.json`), "utf8").then((text) => parseJson(RoutesFragment, text, id)),
    combined: async () => parseJson(ProxyRoutes, await readFile(join(dir, "proxy", "routes.json"), "utf8"), "routes"),
    close: async () => {
      await logger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("snickers with an XMPP service (local CA)", () => {
  let state: Awaited<ReturnType<typeof stateFolder>>;
  const actuator = () => createSnickersActuator({ stateDir: state.dir });
  const reconcile = async (target: Target) => {
    const snickers = actuator();
    const result = await converge(snickers, target, state.context());
    if (result.changed) await commitActuator(snickers, state.context());
    return result;
  };
  const refused = (target: Target, reason: string, message: RegExp) =>
    assert.rejects(converge(actuator(), target, state.context()), (error: unknown) => {
      assert.ok(error instanceof ActuatorError, String(error));
      assert.equal(error.reason, reason);
      assert.equal(error.terminal, true);
      assert.match(error.message, message);
      return true;
    });

  before(async () => {
    state = await stateFolder("snickers-xmpp-");
  });
  after(async () => {
    await state.close();
  });

  it("gives an XMPP-only service a certificate for its domain from the box's CA, and no route", async () => {
    assert.equal(actuator().appliesTo?.(chatOnly("chat", "chat.test")), true, "its WebReady says whether the certificate is there");
    const first = await reconcile({ id: "chat", spec: chatOnly("chat", "chat.test") });
    assert.ok(first.changed);
    assert.deepEqual(first.plan.describe, ["claim XMPP domain chat.test (a certificate, no route)", "issue a certificate for chat.test (no certificate yet)"]);
    const leaf = await state.leaf("chat.test");
    assert.ok(leaf, "a certificate for the domain");
    assert.ok(leaf.checkHost("chat.test"), `for the domain: ${String(leaf.subjectAltName)}`);
    const ca = await LocalCa.open(join(state.dir, "proxy", "ca"), "box.test");
    assert.ok(leaf.verify(new X509Certificate(ca.certificatePem).publicKey), "signed by the box's local CA");
    assert.match(await readFile(state.pemFile("chat.test"), "utf8"), /^-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/, "key and chain in one PEM, as xmppconf copies it for Prosody");
    assert.equal((await state.meta("chat.test"))?.serviceId, "chat");
    // The group chat component is reached through the domain's own connections: no certificate of its own.
    assert.equal(await gone(state.pemFile("conference.chat.test")), true);
    const own = await state.fragment("chat");
    assert.deepEqual(own.hosts, ["chat.test"], "claimed");
    assert.deepEqual(own.routes, [], "not routed");
    assert.ok(!(await state.combined()).routes.some((route) => route.host === "chat.test"), "no route in routes.json");
    const again = await converge(actuator(), { id: "chat", spec: chatOnly("chat", "chat.test") }, state.context());
    assert.equal(again.changed, false, `converged: ${again.plan.describe.join("; ")}`);
  });

  it("gives a site and XMPP on one domain one certificate, routing only the site", async () => {
    const both = service("both", { domains: [{ name: "both.test" }], web: { hostnames: ["www.both.test"], backend: site }, xmpp: { users: [{ username: "bob", domain: "both.test", passwordHash: PASSWORD }] } });
    await reconcile({ id: "both", spec: both });
    assert.deepEqual((await state.fragment("both")).hosts, ["www.both.test", "both.test"]);
    assert.deepEqual((await state.combined()).routes.filter((route) => route.serviceId === "both").map((route) => route.host), ["www.both.test"]);
    assert.ok((await state.leaf("both.test"))?.checkHost("both.test"));
    assert.ok((await state.leaf("www.both.test"))?.checkHost("www.both.test"));
  });

  it("refuses an XMPP domain another service routes, and a web hostname another service serves XMPP on", async () => {
    await reconcile({ id: "shop", spec: service("shop", { domains: [{ name: "shop.test" }], web: { hostnames: ["shop.test"], backend: site } }) });
    await refused({ id: "thief", spec: chatOnly("thief", "shop.test") }, "HostnameTaken", /^XMPP domain shop\.test is already served by service shop$/);
    await refused({ id: "late", spec: service("late", { domains: [{ name: "chat.test" }], web: { hostnames: ["chat.test"], backend: site } }) }, "HostnameTaken", /^web hostname chat\.test is already served by service chat$/);
    await refused({ id: "twin", spec: chatOnly("twin", "chat.test") }, "HostnameTaken", /^XMPP domain chat\.test is already served by service chat$/);
    for (const id of ["thief", "late", "twin"]) assert.equal(await gone(join(state.dir, "proxy", "routes.d", `${id}.json`)), true, `nothing claimed for ${id}`);
    assert.equal((await state.meta("shop.test"))?.serviceId, "shop", "the owner's certificate stays its own");
    assert.equal((await state.meta("chat.test"))?.serviceId, "chat");
  });

  it("keeps the box's own hostname reserved", async () => {
    await refused({ id: "boxed", spec: chatOnly("boxed", "box.test") }, "HostnameReserved", /^XMPP domain box\.test is the box's own hostname/);
  });

  it("revokes and removes the certificate once XMPP is dropped, and when the service is deleted", async () => {
    const before = await state.leaf("chat.test");
    assert.ok(before);
    const dropped = await reconcile({ id: "chat", spec: service("chat", { domains: [{ name: "chat.test" }] }) });
    assert.deepEqual(dropped.plan.describe, ["remove the service's routes", "remove the certificate of chat.test"]);
    assert.equal(await gone(state.pemFile("chat.test")), true);
    assert.equal(await state.meta("chat.test"), undefined);
    assert.equal(await gone(join(state.dir, "proxy", "routes.d", "chat.json")), true, "the name is free again");
    const record = await readFile(join(state.dir, "proxy", "ca", "revocations.json"), "utf8");
    assert.ok(record.toUpperCase().includes(before.serialNumber.toUpperCase()), "revoked");

    await reconcile({ id: "chat", spec: chatOnly("chat", "chat.test") });
    assert.ok(await state.leaf("chat.test"));
    const deleted = await reconcile({ id: "chat", spec: undefined });
    assert.ok(deleted.plan.describe.includes("remove the certificate of chat.test"), deleted.plan.describe.join("; "));
    assert.equal(await gone(state.pemFile("chat.test")), true);
  });
});

describe("snickers with an XMPP service (ACME)", () => {
  it("orders the certificate of a domain whose zone is elsewhere from Pebble over HTTP-01, answered by the proxy though no route names it", { timeout: 60_000 }, async () => {
    const state = await stateFolder("snickers-xmpp-acme-");
    const dns = await startFakeDns(join(state.dir, "dns"));
    const httpPort = await freePort();
    const challenges = await serveChallenges(join(state.dir, "proxy", "challenges"), httpPort);
    const pebble = await startPebble(join(state.dir, "pebble"), { httpPort, dnsServer: dns.address });
    const snickers = createSnickersActuator({ stateDir: state.dir, orderPollMs: 50 });
    const spec = server({ certificates: { mode: "acme", directoryUrl: pebble.directoryUrl, email: "admin@box.test", caBundleFile: pebble.tlsCaFile } });
    // Started, as the minion does: its stop ends the orders under way.
    const handle = await snickers.start?.(state.context(spec));
    try {
      // Its own records lead to the box (the fake DNS answers every name with 127.0.0.1).
      const target: Target = { id: "chat", spec: chatOnly("chat", "chat.test", false) };
      const applied = await converge(snickers, target, state.context(spec));
      assert.equal(applied.requeue?.reason, "CertificatePending");
      await commitActuator(snickers, state.context(spec));
      const meta = await waitFor("the certificate from Pebble", async () => {
        const found = await state.meta("chat.test");
        return found?.certificate?.issuer === "acme" ? found : undefined;
      }, { timeoutMs: 45_000 });
      assert.equal(meta.serviceId, "chat");
      assert.equal(meta.certificate?.directoryUrl, pebble.directoryUrl);
      const leaf = await state.leaf("chat.test");
      assert.ok(leaf, "a certificate for the domain");
      assert.ok(leaf.checkHost("chat.test"), "for the domain");
      assert.match(leaf.issuer, /Pebble/i, "issued by Pebble, not the local CA");
      assert.ok(challenges.hosts.some((host) => host.startsWith("chat.test")), `Pebble asked for the challenge of chat.test: ${challenges.hosts.join(", ")}`);
      assert.ok(!(await state.combined()).routes.some((route) => route.host === "chat.test"), "no route in routes.json");
    } finally {
      await handle?.stop();
      await pebble.stop();
      await challenges.close();
      await dns.stop();
      await state.close();
    }
  });
  it("orders the certificate of a domain whose zone the box serves over DNS-01, through the built-in DNS server, since no address leads to the box", { timeout: 60_000 }, async () => {
    const state = await stateFolder("snickers-xmpp-dns01-");
    const dnsPort = await freeUdpTcpPort();
    const httpPort = await freePort();
    const challenges = await serveChallenges(join(state.dir, "proxy", "challenges"), httpPort);
    const pebble = await startPebble(join(state.dir, "pebble"), { httpPort, dnsServer: `127.0.0.1:${dnsPort}` });
    const spec = server({ dns: { listen: [`127.0.0.1:${dnsPort}`] }, certificates: { mode: "acme", directoryUrl: pebble.directoryUrl, email: "admin@box.test", caBundleFile: pebble.tlsCaFile } });
    const target: Target = { id: "chat", spec: chatOnly("chat", "chat.test") };
    // The zone, with its SRV records and no address for chat.test, served as the minion does.
    const dnsconf = createDnsActuator({ stateDir: state.dir, backend: "builtin" });
    await converge(dnsconf, target, state.context(spec));
    await commitActuator(dnsconf, state.context(spec));
    const dns = await dnsconf.start?.(state.context(spec));
    const snickers = createSnickersActuator({ stateDir: state.dir, orderPollMs: 50 });
    const handle = await snickers.start?.(state.context(spec));
    try {
      const applied = await converge(snickers, target, state.context(spec));
      assert.equal(applied.requeue?.reason, "CertificatePending");
      await commitActuator(snickers, state.context(spec));
      const meta = await waitFor("the certificate from Pebble", async () => {
        const found = await state.meta("chat.test");
        return found?.certificate?.issuer === "acme" || found?.attempts.lastError !== undefined ? found : undefined;
      }, { timeoutMs: 45_000 });
      assert.equal(meta.attempts.lastError, undefined, "the order succeeded");
      assert.equal(meta.certificate?.directoryUrl, pebble.directoryUrl);
      const leaf = await state.leaf("chat.test");
      assert.ok(leaf, "a certificate for the domain");
      assert.ok(leaf.checkHost("chat.test"), "for the domain");
      assert.match(leaf.issuer, /Pebble/i, "issued by Pebble, not the local CA");
      assert.ok(!challenges.hosts.some((host) => host.startsWith("chat.test")), `no HTTP-01 challenge for chat.test: ${challenges.hosts.join(", ")}`);
    } finally {
      await handle?.stop();
      await dns?.stop();
      await pebble.stop();
      await challenges.close();
      await state.close();
    }
  });
});
