// Mail apps' autoconfig routes: for a service with mail, `autoconfig.<domain>/mail/` and, on a
// domain its site answers, `<domain>/.well-known/autoconfig/` go to the panel, with certificates
// like every routed name.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, ServerSpec, ServiceSpec, StateStore, parseJson, validate } from "@coyote/spec";
import { createSnickersActuator } from "./actuator.ts";
import { AUTOCONFIG_PREFIX, RoutesFragment, WELL_KNOWN_AUTOCONFIG_PREFIX, fragmentTextOf, hostClaimsOf, routesFor } from "./routes.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const PANEL = 3917;

function server(): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", ports: { panel: PANEL } }, "server");
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
