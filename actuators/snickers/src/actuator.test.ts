import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ProxyRoutes, ServerSpec, ServiceSpec, StateStore, certificateFileName, parseJson, proxyRuntimePaths, validate } from "@coyote/spec";
import { AcmeIssuer, ariCertId } from "./acme.ts";
import { CertificateMeta, backoffMs, createSnickersActuator, renewalTime } from "./actuator.ts";
import { LocalCa } from "./local-ca.ts";
import { keyIdentifier } from "./x509.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
const DAY = 86_400_000;

function server(extra: Record<string, unknown> = {}): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", limits: { maxConnections: 500 }, ...extra }, "server");
}

function service(id: string, hostnames: string[], domain = `${id}.test`): ServiceSpec {
  return validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, domains: [{ name: domain }], web: { hostnames, backend: { kind: "static", root: "." } } }, id);
}

describe("snickers", () => {
  let stateDir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  let clock = Date.parse("2026-11-01T00:00:00Z");
  const actuator = () => createSnickersActuator({ stateDir, now: () => clock });
  const context = (spec: ServerSpec): ActuatorContext => ({ stateDir, store, logger, signal: new AbortController().signal, server: spec });
  const meta = async (host: string) => parseJson(CertificateMeta, await readFile(join(stateDir, "proxy", "certs", certificateFileName(host).replace(/\.pem$/, ".json")), "utf8"), host);
  const routes = async () => parseJson(ProxyRoutes, await readFile(join(stateDir, "proxy", "routes.json"), "utf8"), "routes");

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "snickers-"));
    logger = createLogger({ component: "minion", file: join(stateDir, "logs", "minion.log") });
    store = await StateStore.open(stateDir, { author: AUTHOR });
  });
  after(async () => {
    await logger.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("routes a service's hostnames and gives each a certificate from the local CA; a second pass changes nothing", async () => {
    const snickers = actuator();
    const spec = server();
    const target: Target = { id: "shop", spec: service("shop", ["shop.test", "www.shop.test"]) };
    const first = await converge(snickers, target, context(spec));
    assert.ok(first.changed);
    assert.deepEqual(first.plan.steps.map((s) => s.kind), ["write-routes", "issue", "issue", "settings"]);
    await snickers.commit?.(context(spec));
    const doc = await routes();
    assert.deepEqual(doc.routes.map((r) => [r.host, r.pathPrefix, r.serviceId, r.upstream.kind]), [["box.test", "/", "server", "address"], ["shop.test", "/", "shop", "static"], ["www.shop.test", "/", "shop", "static"]]);
    assert.deepEqual(doc.limits, { maxConnections: 500 });
    const pem = await readFile(join(stateDir, "proxy", "certs", "shop.test.pem"), "utf8");
    const leaf = new X509Certificate(pem);
    assert.ok(leaf.checkHost("shop.test"));
    const ca = await LocalCa.open(join(stateDir, "proxy", "ca"), "box.test");
    assert.ok(leaf.verify(new X509Certificate(ca.certificatePem).publicKey), "signed by the box's local CA");
    assert.equal((await stat(join(stateDir, "proxy", "certs", "shop.test.pem"))).mode & 0o777, 0o600);
    assert.equal((await stat(join(stateDir, "proxy", "ca", "ca-key.pem"))).mode & 0o777, 0o600);
    const m = await meta("shop.test");
    assert.equal(m.certificate?.issuer, "local-ca");
    const lifetime = Date.parse(m.certificate.notAfter) - Date.parse(m.certificate.notBefore);
    const renewIn = Date.parse(m.certificate.renewAfter) - Date.parse(m.certificate.notBefore);
    assert.ok(renewIn >= (lifetime * 2) / 3 - 1000 && renewIn <= (lifetime * 2) / 3 + lifetime / 30 + 1000, "renewal two thirds into the lifetime, with jitter");

    const again = await converge(actuator(), target, context(spec));
    assert.equal(again.changed, false, `converged: ${again.plan.describe.join("; ")}`);
  });

  it("plans purely: the same observation gives the same plan", async () => {
    const snickers = actuator();
    const target: Target = { id: "pure", spec: service("pure", ["pure.test"]) };
    const observed = await snickers.observe(target, context(server()));
    assert.deepEqual(snickers.plan(target, observed, server()), snickers.plan(target, observed, server()));
  });

  it("renews a certificate once it is due, and when the issuer changes", async () => {
    const target: Target = { id: "shop", spec: service("shop", ["shop.test", "www.shop.test"]) };
    const before = await readFile(join(stateDir, "proxy", "certs", "shop.test.pem"), "utf8");
    const due = Date.parse((await meta("shop.test")).certificate?.renewAfter ?? "");
    clock = due + 1000;
    const plan = (await converge(actuator(), target, context(server()))).plan;
    assert.ok(plan.describe.includes("issue a certificate for shop.test (due for renewal)"), plan.describe.join("; "));
    assert.notEqual(await readFile(join(stateDir, "proxy", "certs", "shop.test.pem"), "utf8"), before);
    const acmeServer = server({ certificates: { mode: "acme", directoryUrl: "https://127.0.0.1:1/dir", email: "admin@box.test" } });
    const snickers = actuator();
    const switching = snickers.plan(target, await snickers.observe(target, context(acmeServer)), acmeServer);
    assert.ok(switching.describe.some((line) => line.includes("switching from local-ca to acme")), switching.describe.join("; "));
    clock = Date.parse("2026-11-01T00:00:00Z");
  });

  it("passes a service's HSTS choice to its routes, and only when it opted in", async () => {
    const snickers = actuator();
    const spec = server();
    const optedIn = validate(ServiceSpec, { ...service("strict", ["strict.test"]), web: { hostnames: ["strict.test"], backend: { kind: "static", root: "." }, hsts: true } }, "strict");
    await converge(snickers, { id: "strict", spec: optedIn }, context(spec));
    await snickers.commit?.(context(spec));
    const doc = await routes();
    assert.equal(doc.routes.find((r) => r.host === "strict.test")?.hsts, true);
    assert.equal(doc.routes.find((r) => r.host === "shop.test")?.hsts, undefined, "a service that did not opt in sends none");
  });

  it("refuses a hostname another service already routes, as a terminal error", async () => {
    const snickers = actuator();
    const target: Target = { id: "thief", spec: service("thief", ["shop.test"], "shop.test") };
    assert.throws(() => snickers.plan(target, { now: clock, fragmentText: undefined, previousHosts: [], owners: new Map([["shop.test", "shop"]]), certs: {}, routesFile: undefined, ordering: [], asking: [] }, server()), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.terminal, true);
      assert.equal(error.reason, "HostnameTaken");
      assert.match(error.message, /shop\.test is already served by service shop/);
      return true;
    });
    await assert.rejects(converge(snickers, target, context(server())), /already served by service shop/);
  });

  it("backs off on disk after a failed ACME order and says when it tries again", async () => {
    const acmeServer = server({ certificates: { mode: "acme", directoryUrl: "https://127.0.0.1:1/dir", email: "admin@box.test" } });
    const snickers = actuator();
    const target: Target = { id: "acme1", spec: service("acme1", ["acme1.test"]) };
    const first = await converge(snickers, target, context(acmeServer));
    assert.equal(first.requeue?.reason, "CertificatePending", "a pending order asks to be called again; it is no failure");
    await snickers.commit?.(context(acmeServer));
    const failed = await until("the failed order recorded", async () => {
      const found = await meta("acme1.test").catch(() => undefined);
      return found?.attempts.failures === 1 ? found : undefined;
    });
    assert.equal(failed.attempts.failures, 1);
    assert.match(failed.attempts.lastError ?? "", /ordering a certificate for acme1\.test from https:\/\/127\.0\.0\.1:1\/dir/);
    const waitUntil = Date.parse(failed.attempts.nextAttemptAt ?? "");
    assert.ok(waitUntil - clock >= 48_000 && waitUntil - clock <= 72_000, "the first retry waits about a minute");
    const waiting = await converge(actuator(), target, context(acmeServer));
    assert.equal(waiting.requeue?.reason, "CertificateBackoff");
    assert.match(waiting.requeue.message, /next attempt at/);
    assert.equal(waiting.requeue.afterMs, waitUntil - clock, "called again when the backoff ends");
    clock = waitUntil + 1;
    const retry = actuator();
    const plan = retry.plan(target, await retry.observe(target, context(acmeServer)), acmeServer);
    assert.ok(plan.steps.some((s) => s.kind === "issue"), "tries again once the backoff has passed");
    clock = Date.parse("2026-11-01T00:00:00Z");
  });

  it("removes a deleted service's routes and certificates, and only its own", async () => {
    const snickers = actuator();
    await converge(snickers, { id: "gone", spec: service("gone", ["gone.test"]) }, context(server()));
    await snickers.commit?.(context(server()));
    assert.ok((await routes()).routes.some((r) => r.host === "gone.test"));
    const removal = await converge(snickers, { id: "gone", spec: undefined }, context(server()));
    assert.deepEqual(removal.plan.steps.map((s) => s.kind), ["drop-routes", "drop-certificate"]);
    await snickers.commit?.(context(server()));
    assert.ok(!(await routes()).routes.some((r) => r.host === "gone.test"));
    await assert.rejects(stat(join(stateDir, "proxy", "certs", "gone.test.pem")), /ENOENT/);
    await stat(join(stateDir, "proxy", "certs", "shop.test.pem"));
  });

  it("puts the server's connection limit into routes.json when it changes", async () => {
    const snickers = actuator();
    const spec = server({ limits: { maxConnections: 42 } });
    const result = await converge(snickers, { id: "shop", spec: service("shop", ["shop.test", "www.shop.test"]) }, context(spec));
    assert.deepEqual(result.plan.steps.map((s) => s.kind), ["settings"]);
    await snickers.commit?.(context(spec));
    assert.deepEqual((await routes()).limits, { maxConnections: 42 });
  });

  it("puts where the proxy listens into routes.json, and rewrites it when the server spec's ports or public address change", async () => {
    const snickers = actuator();
    const target: Target = { id: "shop", spec: service("shop", ["shop.test", "www.shop.test"]) };
    await converge(snickers, target, context(server()));
    await snickers.commit?.(context(server()));
    assert.deepEqual((await routes()).listen, { host: "127.0.0.1", https: 8443, http: 8080 });
    const ported = server({ ports: { https: 9443, http: 8080 } });
    assert.deepEqual((await converge(snickers, target, context(ported))).plan.steps.map((s) => s.kind), ["settings"]);
    await snickers.commit?.(context(ported));
    assert.deepEqual((await routes()).listen, { host: "127.0.0.1", https: 9443, http: 8080 });
    const moved = server({ ports: { https: 9443, http: 9080 }, publicIPv4: "203.0.113.7" });
    const result = await converge(snickers, target, context(moved));
    assert.deepEqual(result.plan.steps.map((s) => s.kind), ["settings"]);
    await snickers.commit?.(context(moved));
    assert.deepEqual((await routes()).listen, { host: "::", https: 9443, http: 9080 });
    assert.equal((await converge(snickers, target, context(moved))).changed, false);
    // Back to the first spec for the tests that follow.
    await converge(snickers, target, context(server()));
    await snickers.commit?.(context(server()));
  });

  it("writes the proxy's settings when it starts for a new server spec, though no service has web hosting", async () => {
    const bare = await mkdtemp(join(tmpdir(), "snickers-bare-"));
    try {
      const snickers = createSnickersActuator({ stateDir: bare, now: () => clock });
      const spec = server({ ports: { https: 7443, http: 7080 } });
      const handle = await snickers.start?.({ ...context(spec), stateDir: bare });
      const doc = await until("routes.json", async () => readFile(join(bare, "proxy", "routes.json"), "utf8").then((text) => parseJson(ProxyRoutes, text, "routes"), () => undefined));
      await handle?.stop();
      assert.deepEqual(doc.listen, { host: "127.0.0.1", https: 7443, http: 7080 });
      assert.deepEqual(doc.routes, [{ host: "box.test", pathPrefix: "/", serviceId: "server", upstream: { kind: "address", address: "127.0.0.1:3000" }, hsts: true }], "the box's own route alone: its hostname to the panel");
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  it("gives a wildcard hostname a wildcard certificate, stored apart from a host of that name", async () => {
    const snickers = actuator();
    const target: Target = { id: "wild", spec: service("wild", ["*.wild.test"], "wild.test") };
    await converge(snickers, target, context(server()));
    await snickers.commit?.(context(server()));
    const leaf = new X509Certificate(await readFile(join(stateDir, "proxy", "certs", "_.wild.test.pem"), "utf8"));
    assert.equal(leaf.subjectAltName, "DNS:*.wild.test");
    assert.ok(leaf.checkHost("any.wild.test"));
    assert.equal((await meta("*.wild.test")).host, "*.wild.test");
    assert.ok((await routes()).routes.some((r) => r.host === "*.wild.test"));
    assert.equal((await converge(actuator(), target, context(server()))).changed, false);
  });

  it("refuses an ACME wildcard when the DNS is Knot, which DNS-01 is not wired to", () => {
    const knot = server({ certificates: { mode: "acme", directoryUrl: "https://127.0.0.1:1/dir", email: "admin@box.test" }, dns: { backend: "knot", listen: ["127.0.0.1:53"] } });
    const snickers = actuator();
    const target: Target = { id: "wild2", spec: service("wild2", ["*.wild2.test"], "wild2.test") };
    assert.throws(() => snickers.plan(target, { now: clock, fragmentText: undefined, previousHosts: [], owners: new Map(), certs: {}, routesFile: undefined, ordering: [], asking: [] }, knot), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.terminal, true);
      assert.match(error.message, /\*\.wild2\.test needs an ACME DNS-01 challenge.*this server uses knot/);
      return true;
    });
  });

  it("computes renewal times and backoff within their bounds", () => {
    const start = new Date("2026-01-01T00:00:00Z");
    const end = new Date(start.getTime() + 90 * DAY);
    assert.equal(renewalTime(start, end, () => 0).getTime(), start.getTime() + 60 * DAY);
    assert.equal(renewalTime(start, end, (max) => max).getTime(), start.getTime() + 63 * DAY);
    assert.equal(backoffMs(1, () => 0.5), 60_000);
    assert.equal(backoffMs(3, () => 0.5), 240_000);
    assert.equal(backoffMs(30, () => 0.5), 6 * 3_600_000);
  });
});

describe("ACME renewal info (ARI, RFC 9773)", () => {
  it("computes the certificate id from the authority key id and the serial", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ari-"));
    try {
      const ca = await LocalCa.open(dir, "ari");
      const issued = ca.issue(["ari.test"]);
      const leaf = new X509Certificate(issued.chainPem);
      const caKey = new X509Certificate(ca.certificatePem).publicKey;
      let serial = Buffer.from(leaf.serialNumber, "hex");
      if ((serial[0] ?? 0) >= 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
      assert.equal(ariCertId(issued.chainPem), `${keyIdentifier(caKey).toString("base64url")}.${serial.toString("base64url")}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reads the suggested window and Retry-After from a CA that offers ARI, and nothing from one that does not", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ari-"));
    const logger = createLogger({ component: "minion", file: join(dir, "log") });
    const ca = await LocalCa.open(join(dir, "ca"), "ari");
    const tls = ca.issue(["localhost"]);
    const cert = ca.issue(["site.test"]);
    const asked: string[] = [];
    let offerAri = true;
    const https = createServer({ key: tls.keyPem, cert: tls.chainPem }, (req, res) => {
      asked.push(req.url ?? "");
      if (req.url === "/dir") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(offerAri ? { newNonce: "x", renewalInfo: `https://localhost:${port}/ari` } : { newNonce: "x" }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "retry-after": "7200" });
      res.end(JSON.stringify({ suggestedWindow: { start: "2027-01-10T00:00:00Z", end: "2027-01-12T00:00:00Z" } }));
    });
    await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
    const port = (https.address() as AddressInfo).port;
    try {
      const issuer = new AcmeIssuer({ directoryUrl: `https://localhost:${port}/dir`, email: "a@b.test", caBundlePem: ca.certificatePem }, proxyRuntimePaths(dir), logger);
      const now = new Date("2027-01-01T00:00:00Z");
      const advice = await issuer.renewalAdvice(cert.chainPem, now);
      assert.deepEqual(advice, { windowStart: new Date("2027-01-10T00:00:00Z"), windowEnd: new Date("2027-01-12T00:00:00Z"), nextCheckAt: new Date(now.getTime() + 7200_000) });
      assert.equal(asked.at(-1), `/ari/${ariCertId(cert.chainPem)}`);
      offerAri = false;
      const plain = new AcmeIssuer({ directoryUrl: `https://localhost:${port}/dir`, email: "a@b.test", caBundlePem: ca.certificatePem }, proxyRuntimePaths(dir), logger);
      assert.equal(await plain.renewalAdvice(cert.chainPem, now), undefined);
    } finally {
      https.close();
      await logger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a malformed suggested window", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ari-"));
    await writeFile(join(dir, "x"), "");
    const logger = createLogger({ component: "minion", file: join(dir, "log") });
    const ca = await LocalCa.open(join(dir, "ca"), "ari");
    const tls = ca.issue(["localhost"]);
    const https = createServer({ key: tls.keyPem, cert: tls.chainPem }, (req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(req.url === "/dir" ? JSON.stringify({ renewalInfo: `https://localhost:${port}/ari/` }) : JSON.stringify({ suggestedWindow: { start: "2027-01-12T00:00:00Z", end: "2027-01-10T00:00:00Z" } }));
    });
    await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
    const port = (https.address() as AddressInfo).port;
    try {
      const issuer = new AcmeIssuer({ directoryUrl: `https://localhost:${port}/dir`, email: "a@b.test", caBundlePem: ca.certificatePem }, proxyRuntimePaths(dir), logger);
      await assert.rejects(issuer.renewalAdvice(ca.issue(["x.test"]).chainPem), /suggested window is malformed/);
    } finally {
      https.close();
      await logger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
