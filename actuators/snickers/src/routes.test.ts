// Mail apps' autoconfig routes: for a service with mail, `autoconfig.<domain>/mail/` and, on a
// domain its site answers, `<domain>/.well-known/autoconfig/` go to the panel, with certificates
// like every routed name.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, ServerSpec, ServiceSpec, StateStore, parseJson, validate } from "@coyote/spec";
import { createSnickersActuator } from "./actuator.ts";
import { AUTOCONFIG_PREFIX, MTA_STS_PREFIX, RoutesFragment, WELL_KNOWN_AUTOCONFIG_PREFIX, fragmentTextOf, hostClaimsOf, routesFor } from "./routes.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const PANEL = 3917;

function server(): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", ports: { panel: PANEL } }, "server");
}

/** The box with ACME certificates: the only mode in which MTA-STS is published. */
function acmeServer(): ServerSpec {
  return validate(ServerSpec, { ...server(), certificates: { mode: "acme", directoryUrl: "https://acme.example/directory", email: "ops@box.test" } }, "server");
}

function service(id: string, fields: Record<string, unknown>): ServiceSpec {
  return validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, ...fields }, id);
}

const MAILBOX = { address: "anna@shop.example", passwordHash: "{SCRAM-SHA-256}x" };
const mailOnly = () => service("shop", { domains: [{ name: "shop.example" }], mail: { mailboxes: [MAILBOX] } });
const site = { kind: "static", root: "." };
const panel = { kind: "address", address: `127.0.0.1:${PANEL}` };

describe("autoconfig routes", () => {
  it("routes a mail domain's two autoconfig lookups to the panel, beside the service's own site", () => {
    const spec = service("shop", { domains: [{ name: "shop.example" }, { name: "shop.test" }], mail: { mailboxes: [MAILBOX] }, web: { hostnames: ["shop.example", "www.shop.example"], backend: site } });
    const routes = routesFor(spec, "/srv/coyote", server());
    assert.deepEqual(routes.map((r) => [r.host, r.pathPrefix, r.upstream.kind === "address" ? r.upstream.address : r.upstream.kind]), [
      ["shop.example", "/", "static"],
      ["www.shop.example", "/", "static"],
      ["autoconfig.shop.example", AUTOCONFIG_PREFIX, `127.0.0.1:${PANEL}`],
      ["shop.example", WELL_KNOWN_AUTOCONFIG_PREFIX, `127.0.0.1:${PANEL}`],
      // shop.test has mail and no site here: only its autoconfig name, which dnsconf publishes.
      ["autoconfig.shop.test", AUTOCONFIG_PREFIX, `127.0.0.1:${PANEL}`],
    ]);
    const fragment = parseJson(RoutesFragment, fragmentTextOf(spec, "/srv/coyote", server()) ?? "", "fragment");
    assert.deepEqual(fragment.hosts, ["shop.example", "www.shop.example", "autoconfig.shop.example", "autoconfig.shop.test"], "each host once, so each gets one certificate");
    assert.deepEqual(hostClaimsOf(spec, server()).map((c) => c.host), fragment.hosts);
    // The combined file's own validation accepts them (every host and prefix once).
    validate(ProxyRoutes, { schemaVersion: 1, generatedAt: "2026-11-01T00:00:00Z", routes }, "routes");
  });

  it("routes only names that lead to the box: none without mail, and none the spec or the site answers otherwise", () => {
    const hosts = (fields: Record<string, unknown>) => routesFor(service("x", fields), "/srv/coyote", server()).map((r) => `${r.host}${r.pathPrefix}`);
    assert.deepEqual(hosts({ domains: [{ name: "w.example" }], web: { hostnames: ["w.example"], backend: site } }), ["w.example/"], "no mail");
    assert.deepEqual(hosts({ domains: [{ name: "m.example" }], mail: {} }), [`autoconfig.m.example${AUTOCONFIG_PREFIX}`], "mail alone: the domain itself does not lead here");
    assert.deepEqual(hosts({ domains: [{ name: "o.example" }], mail: {}, web: { hostnames: ["autoconfig.o.example"], backend: site } }), ["autoconfig.o.example/"], "the site answers its own web hostname");
    assert.deepEqual(hosts({ domains: [{ name: "r.example", records: [{ type: "CNAME", name: "autoconfig", target: "autoconfig.provider.example" }] }], mail: {} }), [], "the spec points the name elsewhere");
    assert.deepEqual(hosts({ domains: [{ name: "n.example", authoritative: false }], mail: {} }), [], "a zone the box does not serve: nothing publishes the name");
    assert.deepEqual(hosts({ domains: [{ name: "s.example", authoritative: false }], mail: {}, web: { hostnames: ["s.example"], backend: site } }), ["s.example/", `s.example${WELL_KNOWN_AUTOCONFIG_PREFIX}`], "but its site's host is here");
    assert.equal(fragmentTextOf(service("n", { domains: [{ name: "n.example" }] }), "/srv/coyote", server()), undefined);
  });

  it("keeps a wildcard site on the rest of autoconfig.<domain>, and a site's HSTS choice on the hosts it answers", () => {
    const wild = service("wild", { domains: [{ name: "wild.example", authoritative: false }], mail: {}, web: { hostnames: ["*.wild.example"], backend: site, hsts: true } });
    assert.deepEqual(routesFor(wild, "/srv/coyote", server()).map((r) => [`${r.host}${r.pathPrefix}`, r.upstream.kind, r.hsts === true]), [
      ["*.wild.example/", "static", true],
      [`autoconfig.wild.example${AUTOCONFIG_PREFIX}`, "address", true],
      ["autoconfig.wild.example/", "static", true],
    ]);
    const strict = service("strict", { domains: [{ name: "strict.example" }], mail: {}, web: { hostnames: ["strict.example"], backend: site, hsts: true } });
    assert.deepEqual(routesFor(strict, "/srv/coyote", server()).map((r) => [`${r.host}${r.pathPrefix}`, r.hsts === true]), [
      ["strict.example/", true],
      [`autoconfig.strict.example${AUTOCONFIG_PREFIX}`, false],
      [`strict.example${WELL_KNOWN_AUTOCONFIG_PREFIX}`, true],
    ]);
  });
});

describe("MTA-STS policy routes", () => {
  const routesOf = (spec: ServiceSpec, box: ServerSpec) => routesFor(spec, "/srv/coyote", box).map((r) => [`${r.host}${r.pathPrefix}`, r.upstream.kind === "address" ? r.upstream.address : r.upstream.kind, r.hsts === true]);

  it("routes mta-sts.<domain> to the panel for its policy file alone, beside autoconfig, with ACME certificates", () => {
    assert.equal(MTA_STS_PREFIX, "/.well-known/mta-sts.txt");
    const spec = service("shop", { domains: [{ name: "shop.example" }, { name: "shop.test" }], mail: {}, web: { hostnames: ["shop.example"], backend: site, hsts: true } });
    assert.deepEqual(routesOf(spec, acmeServer()), [
      ["shop.example/", "static", true],
      [`autoconfig.shop.example${AUTOCONFIG_PREFIX}`, `127.0.0.1:${PANEL}`, false],
      ["mta-sts.shop.example/.well-known/mta-sts.txt", `127.0.0.1:${PANEL}`, false],
      [`shop.example${WELL_KNOWN_AUTOCONFIG_PREFIX}`, `127.0.0.1:${PANEL}`, true],
      [`autoconfig.shop.test${AUTOCONFIG_PREFIX}`, `127.0.0.1:${PANEL}`, false],
      ["mta-sts.shop.test/.well-known/mta-sts.txt", `127.0.0.1:${PANEL}`, false],
    ]);
    assert.deepEqual(hostClaimsOf(spec, acmeServer()).map((c) => c.what), [
      "web hostname shop.example",
      "autoconfig name autoconfig.shop.example of mail domain shop.example",
      "MTA-STS policy host mta-sts.shop.example of mail domain shop.example",
      "autoconfig name autoconfig.shop.test of mail domain shop.test",
      "MTA-STS policy host mta-sts.shop.test of mail domain shop.test",
    ]);
    const fragment = parseJson(RoutesFragment, fragmentTextOf(spec, "/srv/coyote", acmeServer()) ?? "", "fragment");
    assert.deepEqual(hostClaimsOf(spec, acmeServer()).map((c) => c.host), fragment.hosts, "each routed name gets its certificate");
  });

  it("routes no policy host with the local CA, nor one the spec, the site or another zone answers", () => {
    const names = (spec: ServiceSpec, box = acmeServer()) => routesFor(spec, "/srv/coyote", box).map((r) => `${r.host}${r.pathPrefix}`).filter((h) => h.startsWith("mta-sts."));
    const mail = service("m", { domains: [{ name: "m.example" }], mail: {} });
    assert.deepEqual(names(mail), ["mta-sts.m.example/.well-known/mta-sts.txt"]);
    assert.deepEqual(names(mail, server()), [], "the local CA: senders enforcing the policy would refuse the box's certificate");
    assert.deepEqual(hostClaimsOf(mail, server()).map((c) => c.host), ["autoconfig.m.example"], "and no claim on it");
    assert.deepEqual(names(service("w", { domains: [{ name: "w.example" }], web: { hostnames: ["w.example"], backend: site } })), [], "no mail");
    assert.deepEqual(names(service("r", { domains: [{ name: "r.example", records: [{ type: "CNAME", name: "mta-sts", target: "policy.provider.example" }] }], mail: {} })), [], "the spec points the name elsewhere");
    assert.deepEqual(names(service("o", { domains: [{ name: "o.example" }], mail: {}, web: { hostnames: ["mta-sts.o.example"], backend: site } })), ["mta-sts.o.example/"], "the site answers its own web hostname");
    assert.deepEqual(names(service("z", { domains: [{ name: "z.example" }, { name: "mta-sts.z.example" }], mail: {} })), ["mta-sts.mta-sts.z.example/.well-known/mta-sts.txt"], "a domain of its own is a mail domain, not a policy host");
    assert.deepEqual(names(service("n", { domains: [{ name: "n.example", authoritative: false }], mail: {} })), [], "a zone the box does not serve");
    const wild = service("wild", { domains: [{ name: "wild.example", authoritative: false }], mail: {}, web: { hostnames: ["*.wild.example"], backend: site, hsts: true } });
    assert.deepEqual(routesOf(wild, acmeServer()).filter(([host]) => String(host).startsWith("mta-sts.")), [
      ["mta-sts.wild.example/.well-known/mta-sts.txt", `127.0.0.1:${PANEL}`, true],
      ["mta-sts.wild.example/", "static", true],
    ], "a wildcard site keeps the rest of the name");
  });

  it("refuses a policy host another service claims, by the same check as every routed name", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "snickers-mta-sts-"));
    const logger = createLogger({ component: "minion", file: join(stateDir, "logs", "minion.log") });
    try {
      const store = await StateStore.open(stateDir, { author: AUTHOR });
      const box = acmeServer();
      const context: ActuatorContext = { stateDir, store, logger, signal: new AbortController().signal, server: box };
      // The owner's fragment, as its apply writes it.
      const owner = service("post", { domains: [{ name: "post.example" }], mail: {} });
      await mkdir(join(stateDir, "proxy", "routes.d"), { recursive: true });
      await writeFile(join(stateDir, "proxy", "routes.d", "post.json"), fragmentTextOf(owner, stateDir, box) ?? "");
      const taken = async (spec: ServiceSpec, message: RegExp) => {
        const snickers = createSnickersActuator({ stateDir });
        const target = { id: spec.id, spec };
        const observed = await snickers.observe(target, context);
        assert.throws(() => snickers.plan(target, observed, box), (error: unknown) => {
          assert.ok(error instanceof ActuatorError);
          assert.equal(error.reason, "HostnameTaken");
          assert.equal(error.terminal, true);
          assert.match(error.message, message);
          return true;
        });
      };
      // Its autoconfig name pointed elsewhere, so that the policy host is the one name in dispute.
      await taken(service("twin", { domains: [{ name: "post.example", records: [{ type: "CNAME", name: "autoconfig", target: "ac.provider.example" }] }], mail: {} }), /^MTA-STS policy host mta-sts\.post\.example of mail domain post\.example is already served by service post$/);
      await taken(service("thief", { domains: [{ name: "mta-sts.post.example" }], web: { hostnames: ["mta-sts.post.example"], backend: site } }), /^web hostname mta-sts\.post\.example is already served by service post$/);
    } finally {
      await logger.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe("snickers with a mail service", () => {
  let stateDir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  const actuator = () => createSnickersActuator({ stateDir });
  const context = (): ActuatorContext => ({ stateDir, store, logger, signal: new AbortController().signal, server: server() });
  const fragment = async (id: string) => parseJson(RoutesFragment, await readFile(join(stateDir, "proxy", "routes.d", `${id}.json`), "utf8"), id);
  const combined = async () => parseJson(ProxyRoutes, await readFile(join(stateDir, "proxy", "routes.json"), "utf8"), "routes");
  const reconcile = async (snickers: ReturnType<typeof actuator>, target: Target) => {
    const result = await converge(snickers, target, context());
    if (result.changed) await commitActuator(snickers, context());
    return result;
  };

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "snickers-autoconfig-"));
    logger = createLogger({ component: "minion", file: join(stateDir, "logs", "minion.log") });
    store = await StateStore.open(stateDir, { author: AUTHOR });
  });
  after(async () => {
    await logger.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("a mail-only service gets its autoconfig name routed, in its fragment and in routes.json, with a certificate", async () => {
    const snickers = actuator();
    assert.equal(snickers.appliesTo?.(mailOnly()), true, "its WebReady says whether the name is served");
    const first = await reconcile(snickers, { id: "shop", spec: mailOnly() });
    assert.ok(first.changed);
    const own = await fragment("shop");
    assert.deepEqual(own.hosts, ["autoconfig.shop.example"]);
    assert.deepEqual(own.routes, [{ host: "autoconfig.shop.example", pathPrefix: AUTOCONFIG_PREFIX, serviceId: "shop", upstream: panel }]);
    assert.deepEqual((await combined()).routes.filter((r) => r.serviceId === "shop").map((r) => `${r.host}${r.pathPrefix}`), ["autoconfig.shop.example/mail/"]);
    const leaf = new X509Certificate(await readFile(join(stateDir, "proxy", "certs", "autoconfig.shop.example.pem"), "utf8"));
    assert.ok(leaf.checkHost("autoconfig.shop.example"));
    await assert.rejects(stat(join(stateDir, "proxy", "certs", "shop.example.pem")), /ENOENT/, "no certificate for a domain that does not lead here");
    assert.equal((await converge(actuator(), { id: "shop", spec: mailOnly() }, context())).changed, false, "converged");
  });

  it("refuses an autoconfig name another service routes, and a web hostname on another's autoconfig name", async () => {
    const taken = async (spec: ServiceSpec, message: RegExp) =>
      assert.rejects(converge(actuator(), { id: spec.id, spec }, context()), (error: unknown) => {
        assert.ok(error instanceof ActuatorError);
        assert.equal(error.reason, "HostnameTaken");
        assert.equal(error.terminal, true);
        assert.match(error.message, message);
        return true;
      });
    await taken(service("thief", { domains: [{ name: "autoconfig.shop.example" }], web: { hostnames: ["autoconfig.shop.example"], backend: site } }), /^web hostname autoconfig\.shop\.example is already served by service shop$/);
    await taken(service("twin", { domains: [{ name: "shop.example" }], mail: {} }), /^autoconfig name autoconfig\.shop\.example of mail domain shop\.example is already served by service shop$/);
    await reconcile(actuator(), { id: "blog", spec: service("blog", { domains: [{ name: "blog.example" }], web: { hostnames: ["autoconfig.blog.example"], backend: site } }) });
    await taken(service("late", { domains: [{ name: "blog.example" }], mail: {} }), /^autoconfig name autoconfig\.blog\.example of mail domain blog\.example is already served by service blog$/);
    for (const id of ["thief", "twin", "late"]) await assert.rejects(stat(join(stateDir, "proxy", "routes.d", `${id}.json`)), /ENOENT/, `nothing written for ${id}`);
    assert.deepEqual((await combined()).routes.filter((r) => r.host.startsWith("autoconfig.")).map((r) => `${r.host}${r.pathPrefix} ${r.serviceId}`).sort(), ["autoconfig.blog.example/ blog", "autoconfig.shop.example/mail/ shop"]);
  });

  it("adding a site keeps the autoconfig routes; dropping mail removes them and their certificates", async () => {
    const withSite = service("shop", { domains: [{ name: "shop.example" }], mail: { mailboxes: [MAILBOX] }, web: { hostnames: ["shop.example"], backend: site } });
    await reconcile(actuator(), { id: "shop", spec: withSite });
    assert.deepEqual((await combined()).routes.filter((r) => r.serviceId === "shop").map((r) => `${r.host}${r.pathPrefix}`), ["shop.example/", "autoconfig.shop.example/mail/", "shop.example/.well-known/autoconfig/"]);

    const noMail = service("shop", { domains: [{ name: "shop.example" }], web: { hostnames: ["shop.example"], backend: site } });
    const dropped = await reconcile(actuator(), { id: "shop", spec: noMail });
    assert.ok(dropped.plan.describe.includes("remove the certificate of autoconfig.shop.example"), dropped.plan.describe.join("; "));
    assert.deepEqual((await fragment("shop")).hosts, ["shop.example"]);
    assert.deepEqual((await combined()).routes.filter((r) => r.serviceId === "shop").map((r) => `${r.host}${r.pathPrefix}`), ["shop.example/"]);
    await assert.rejects(stat(join(stateDir, "proxy", "certs", "autoconfig.shop.example.pem")), /ENOENT/);
    await stat(join(stateDir, "proxy", "certs", "shop.example.pem"));

    // Mail only again, then no mail and no site: the fragment goes.
    await reconcile(actuator(), { id: "shop", spec: mailOnly() });
    assert.deepEqual((await combined()).routes.filter((r) => r.serviceId === "shop").map((r) => `${r.host}${r.pathPrefix}`), ["autoconfig.shop.example/mail/"]);
    const bare = await reconcile(actuator(), { id: "shop", spec: service("shop", { domains: [{ name: "shop.example" }] }) });
    assert.ok(bare.plan.describe.includes("remove the service's routes"), bare.plan.describe.join("; "));
    await assert.rejects(stat(join(stateDir, "proxy", "routes.d", "shop.json")), /ENOENT/);
    assert.ok(!(await combined()).routes.some((r) => r.serviceId === "shop"));
  });
});
