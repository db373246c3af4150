// File sharing routes: for a service with `xmpp.fileSharing`, `upload.<domain>` goes to Prosody's
// loopback HTTP port under `/`, claimed and certified like every routed name; without it, nothing.
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
import { claimsOf } from "./claims.ts";
import { RoutesFragment, hostClaimsOf, routesFor } from "./routes.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const HTTP_PORT = 5391;
const PASSWORD = "{SCRAM-SHA-1}4096,c2FsdHNhbHRzYWx0,2jmj7l5rSw0yVb/vlWAYkK/YBwk=,2jmj7l5rSw0yVb/vlWAYkK/YBwk=";

function server(): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", xmpp: { httpPort: HTTP_PORT } }, "server");
}

function service(id: string, fields: Record<string, unknown>): ServiceSpec {
  return validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, ...fields }, id);
}

const chat = (id: string, domains: { name: string; authoritative?: boolean }[], xmpp: Record<string, unknown> = {}, more: Record<string, unknown> = {}) =>
  service(id, { domains, xmpp: { users: [{ username: "anna", domain: domains[0]?.name, passwordHash: PASSWORD }], ...xmpp }, ...more });
const prosody = { kind: "address", address: `127.0.0.1:${HTTP_PORT}` };
const hostsOf = (spec: ServiceSpec) => routesFor(spec, "/srv/coyote", server()).map((r) => `${r.host}${r.pathPrefix}`);

describe("file sharing routes", () => {
  it("routes upload.<domain> to prosody's loopback HTTP port only when the spec shares files", () => {
    assert.deepEqual(hostsOf(chat("talk", [{ name: "talk.example" }])), [], "no file sharing, no route");
    assert.deepEqual(hostsOf(chat("talk", [{ name: "talk.example" }], { fileSharing: false })), []);
    const sharing = chat("talk", [{ name: "talk.example" }, { name: "talk.test", authoritative: false }], { fileSharing: true, fileSizeLimitMb: 50 });
    const routes = routesFor(sharing, "/srv/coyote", server());
    assert.deepEqual(routes, [
      { host: "upload.talk.example", pathPrefix: "/", serviceId: "talk", upstream: prosody },
      // Outside the box's zones, the owner points the name at the box, as the XMPP domain itself.
      { host: "upload.talk.test", pathPrefix: "/", serviceId: "talk", upstream: prosody },
    ]);
    validate(ProxyRoutes, { schemaVersion: 1, generatedAt: "2026-11-01T00:00:00Z", routes }, "routes");
    assert.deepEqual(hostClaimsOf(sharing, server()), [
      { host: "upload.talk.example", what: "file sharing host upload.talk.example of XMPP domain talk.example" },
      { host: "upload.talk.test", what: "file sharing host upload.talk.test of XMPP domain talk.test" },
    ]);
    assert.deepEqual(claimsOf(sharing, server()).map((c) => `${c.host} ${c.routed ? "routed" : "claimed"}`), [
      "upload.talk.example routed",
      "upload.talk.test routed",
      "talk.example claimed",
      "talk.test claimed",
    ]);
  });

  it("routes no upload name the spec's own records, its site or another of its domains answer, nor the box's hostname", () => {
    const elsewhere = chat("a", [{ name: "a.example", records: [{ type: "CNAME", name: "upload", target: "files.provider.example" }] } as { name: string }], { fileSharing: true });
    assert.deepEqual(hostsOf(elsewhere), [], "its zone points the name elsewhere");
    const site = chat("b", [{ name: "b.example" }], { fileSharing: true }, { web: { hostnames: ["upload.b.example"], backend: { kind: "static", root: "." } } });
    assert.deepEqual(hostsOf(site), ["upload.b.example/"]);
    assert.equal(routesFor(site, "/srv/coyote", server())[0]?.upstream.kind, "static", "the site answers its own web hostname");
    assert.deepEqual(hostsOf(chat("c", [{ name: "c.example" }, { name: "upload.c.example" }], { fileSharing: true })), ["upload.upload.c.example/"], "a domain of its own is no upload name");
    const box = validate(ServerSpec, { ...server(), hostname: "upload.d.example" }, "server");
    assert.deepEqual(routesFor(chat("d", [{ name: "d.example" }], { fileSharing: true }), "/srv/coyote", box), [], "the box's own hostname is never a service's");
  });
});

describe("snickers with a file sharing service", () => {
  let stateDir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  const actuator = () => createSnickersActuator({ stateDir });
  const context = (): ActuatorContext => ({ stateDir, store, logger, signal: new AbortController().signal, server: server() });
  const fragment = async (id: string) => parseJson(RoutesFragment, await readFile(join(stateDir, "proxy", "routes.d", `${id}.json`), "utf8"), id);
  const combined = async () => parseJson(ProxyRoutes, await readFile(join(stateDir, "proxy", "routes.json"), "utf8"), "routes");
  const reconcile = async (target: Target) => {
    const snickers = actuator();
    const result = await converge(snickers, target, context());
    if (result.changed) await commitActuator(snickers, context());
    return result;
  };

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "snickers-upload-"));
    logger = createLogger({ component: "minion", file: join(stateDir, "logs", "minion.log") });
    store = await StateStore.open(stateDir, { author: AUTHOR });
  });
  after(async () => {
    await logger.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("routes and certifies upload.<domain> once the spec shares files, and removes both when it stops", async () => {
    const plain = chat("talk", [{ name: "talk.example" }]);
    await reconcile({ id: "talk", spec: plain });
    assert.deepEqual((await fragment("talk")).hosts, ["talk.example"]);
    await assert.rejects(stat(join(stateDir, "proxy", "certs", "upload.talk.example.pem")), /ENOENT/);

    const sharing = chat("talk", [{ name: "talk.example" }], { fileSharing: true });
    assert.ok((await reconcile({ id: "talk", spec: sharing })).changed);
    const own = await fragment("talk");
    assert.deepEqual(own.hosts, ["upload.talk.example", "talk.example"]);
    assert.deepEqual(own.routes, [{ host: "upload.talk.example", pathPrefix: "/", serviceId: "talk", upstream: prosody }]);
    assert.deepEqual((await combined()).routes.filter((r) => r.serviceId === "talk").map((r) => `${r.host}${r.pathPrefix}`), ["upload.talk.example/"]);
    const leaf = new X509Certificate(await readFile(join(stateDir, "proxy", "certs", "upload.talk.example.pem"), "utf8"));
    assert.ok(leaf.checkHost("upload.talk.example"));
    assert.equal((await converge(actuator(), { id: "talk", spec: sharing }, context())).changed, false, "converged");

    await assert.rejects(converge(actuator(), { id: "thief", spec: service("thief", { domains: [{ name: "upload.talk.example" }], web: { hostnames: ["upload.talk.example"], backend: { kind: "static", root: "." } } }) }, context()), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "HostnameTaken");
      assert.match(error.message, /^web hostname upload\.talk\.example is already served by service talk$/);
      return true;
    });

    const stopped = await reconcile({ id: "talk", spec: plain });
    assert.ok(stopped.plan.describe.includes("remove the certificate of upload.talk.example"), stopped.plan.describe.join("; "));
    assert.deepEqual((await fragment("talk")).hosts, ["talk.example"]);
    assert.ok(!(await combined()).routes.some((r) => r.serviceId === "talk"));
  });
});
