// The box's own route: its hostname, every path, to the panel, first in `proxy/routes.json`, owned
// by no service; and the refusal of every service that claims that name.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, converge, type ActuatorContext } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, ServerSpec, ServiceSpec, StateStore, parseJson, validate } from "@coyote/spec";
import { waitFor } from "@coyote/testing";
import { createSnickersActuator } from "./actuator.ts";
import { boxRoutesFor, carriesSettings, combineRoutes, proxySettingsFor, routesFor, type RoutesFragment } from "./routes.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };

function server(hostname = "box.test", panel = 3917, certificates?: unknown): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname, ports: { panel }, ...(certificates === undefined ? {} : { certificates }) }, "server");
}

function service(id: string, fields: Record<string, unknown>): ServiceSpec {
  return validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, ...fields }, id);
}

const site = { kind: "static", root: "." };
const panelRoute = (host: string, port: number) => ({ host, pathPrefix: "/", serviceId: "server", upstream: { kind: "address", address: `127.0.0.1:${String(port)}` }, hsts: true });

describe("the box's own route", () => {
  let dir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  const context = (spec: ServerSpec): ActuatorContext => ({ stateDir: dir, store, logger, signal: new AbortController().signal, server: spec });
  const combined = async () => parseJson(ProxyRoutes, await readFile(join(dir, "proxy", "routes.json"), "utf8"), "routes");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "snickers-box-routes-"));
    logger = createLogger({ component: "minion", file: join(dir, "logs", "minion.log") });
    store = await StateStore.open(dir, { author: AUTHOR });
  });
  after(async () => {
    await logger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("sends the box's hostname, every path, to the panel on loopback, with HSTS, owned by no service", () => {
    assert.deepEqual(boxRoutesFor(server()), [panelRoute("box.test", 3917)]);
    // The file's own validation accepts the owner `server`, which no service id may be.
    validate(ProxyRoutes, { schemaVersion: 1, generatedAt: "2026-11-01T00:00:00Z", routes: boxRoutesFor(server()) }, "routes");
    assert.throws(() => validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id: "server", domains: [{ name: "a.example" }] }, "server"), /reserved/);
  });

  it("comes first in the combined routes, and a fragment's route on the box's hostname is left out whatever its path", () => {
    const fragment = (serviceId: string, routes: unknown[]): { fragment: RoutesFragment } => ({ fragment: { schemaVersion: 1, serviceId, hosts: [], routes } });
    const stale = { host: "box.test", pathPrefix: "/.well-known/autoconfig/", serviceId: "old", upstream: { kind: "address", address: "127.0.0.1:9" } };
    const thief = { host: "box.test", pathPrefix: "/", serviceId: "thief", upstream: { kind: "address", address: "127.0.0.1:9" } };
    const shop = { host: "shop.test", pathPrefix: "/", serviceId: "shop", upstream: { kind: "address", address: "127.0.0.1:8" } };
    const all = new Map([["old.json", fragment("old", [stale])], ["thief.json", fragment("thief", [thief])], ["shop.json", fragment("shop", [shop])]]);
    const routes = combineRoutes(all, logger, boxRoutesFor(server()));
    assert.deepEqual(routes, [panelRoute("box.test", 3917), shop]);
  });

  it("is in routes.json from start, with no service at all, and follows a new hostname or panel port", async () => {
    const snickers = createSnickersActuator({ stateDir: dir });
    const first = await snickers.start?.(context(server()));
    try {
      const doc = await waitFor("routes.json", () => combined().catch(() => undefined), { timeoutMs: 10_000 });
      assert.deepEqual(doc.routes, [panelRoute("box.test", 3917)]);
      assert.equal(carriesSettings(doc, proxySettingsFor(server())), true);
      assert.equal(carriesSettings(doc, proxySettingsFor(server("panel.test"))), false, "a new hostname is not carried yet");
      assert.equal(carriesSettings(doc, proxySettingsFor(server("box.test", 4000))), false, "nor a new panel port");
    } finally {
      await first?.stop();
    }
    const second = await snickers.start?.(context(server("panel.test", 4000)));
    try {
      await waitFor("the route of the new hostname", async () => JSON.stringify((await combined()).routes) === JSON.stringify([panelRoute("panel.test", 4000)]), { timeoutMs: 10_000 });
    } finally {
      await second?.stop();
    }
  });

  it("stays first when services' routes are combined", async () => {
    const snickers = createSnickersActuator({ stateDir: dir });
    const spec = server("panel.test", 4000);
    const result = await converge(snickers, { id: "shop", spec: service("shop", { domains: [{ name: "shop.example" }], web: { hostnames: ["shop.example"], backend: site } }) }, context(spec));
    assert.ok(result.changed);
    await snickers.commit?.(context(spec));
    assert.deepEqual((await combined()).routes.map((r) => `${r.host}${r.pathPrefix} ${r.serviceId}`), ["panel.test/ server", "shop.example/ shop"]);
  });

  it("leaves out the mail lookups and file sharing host a service would have on the box's hostname", () => {
    const box = server("autoconfig.shop.example");
    const names = (spec: ServiceSpec) => routesFor(spec, dir, box).map((route) => route.host);
    assert.deepEqual(names(service("mail", { domains: [{ name: "shop.example" }], mail: {} })), []);
    assert.deepEqual(names(service("talk", { domains: [{ name: "shop.example" }], xmpp: { fileSharing: true } })), ["upload.shop.example"]);
    assert.deepEqual(routesFor(service("talk", { domains: [{ name: "shop.example" }], xmpp: { fileSharing: true } }), dir, server("upload.shop.example")), []);
  });

  it("refuses every service that claims the box's hostname, naming it, and writes nothing for it", async () => {
    const refused = async (spec: ServiceSpec, box: ServerSpec, message: RegExp) => {
      await assert.rejects(converge(createSnickersActuator({ stateDir: dir }), { id: spec.id, spec }, context(box)), (error: unknown) => {
        assert.ok(error instanceof ActuatorError);
        assert.equal(error.reason, "HostnameReserved");
        assert.equal(error.terminal, true);
        assert.match(error.message, message);
        return true;
      });
      await assert.rejects(stat(join(dir, "proxy", "routes.d", `${spec.id}.json`)), /ENOENT/, `nothing written for ${spec.id}`);
    };
    await refused(service("web", { domains: [{ name: "box.test" }], web: { hostnames: ["box.test"], backend: site } }), server(), /^web hostname box\.test is the box's own hostname box\.test \(server\.hostname\), where the panel is served/);
    // A site on `*.shop.example` would route the box's name as the domain's autoconfig name.
    await refused(service("wild", { domains: [{ name: "shop.example" }], mail: {}, web: { hostnames: ["*.shop.example"], backend: site } }), server("autoconfig.shop.example"), /^autoconfig name autoconfig\.shop\.example of mail domain shop\.example is the box's own hostname autoconfig\.shop\.example/);
    await refused(service("chat", { domains: [{ name: "box.test" }], xmpp: {} }), server(), /^XMPP domain box\.test is the box's own hostname box\.test .*serve XMPP on another domain$/);
  });
});
