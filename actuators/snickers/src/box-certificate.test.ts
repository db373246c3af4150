import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore, certificateFileName, parseJson, validate } from "@coyote/spec";
import { freePort, waitFor } from "@coyote/testing";
import { BOX_OWNER, CertificateMeta, createSnickersActuator } from "./actuator.ts";
import { planCertificates } from "./certificates.ts";
import { LocalCa } from "./local-ca.ts";
import { serveChallenges, startFakeDns, startPebble, startStalledCa } from "./test/support.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const leafOf = (pem: string) => new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)?.[0] ?? "");

function server(hostname: string, extra: Record<string, unknown> = {}): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname, ...extra }, "server");
}

/** A state folder, its logger and store, and the box's certificate files in it. */
async function stateFolder(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const logger = createLogger({ component: "minion", file: join(dir, "logs", "minion.log") });
  const store = await StateStore.open(dir, { author: AUTHOR });
  const certs = join(dir, "proxy", "certs");
  return {
    dir,
    logger,
    context: (spec: ServerSpec): ActuatorContext => ({ stateDir: dir, store, logger, signal: new AbortController().signal, server: spec }),
    pemFile: (host: string) => join(certs, certificateFileName(host)),
    metaFile: (host: string) => join(certs, certificateFileName(host).replace(/\.pem$/, ".json")),
    meta: (host: string) => readFile(join(certs, certificateFileName(host).replace(/\.pem$/, ".json")), "utf8").then((text) => parseJson(CertificateMeta, text, host), () => undefined),
    leaf: (host: string) => readFile(join(certs, certificateFileName(host)), "utf8").then(leafOf, () => undefined),
    close: async () => {
      await logger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("the certificate of the box's own hostname (local CA)", () => {
  let state: Awaited<ReturnType<typeof stateFolder>>;
  let clock = Date.now();
  const actuator = () => createSnickersActuator({ stateDir: state.dir, now: () => clock, boxCheckMs: 20 });

  before(async () => {
    state = await stateFolder("snickers-box-");
  });
  after(async () => {
    await state.close();
  });

  it("is issued with no service at all, for the server's hostname, by the box's CA, 0600", async () => {
    const handle = await actuator().start?.(state.context(server("mail.box.test")));
    try {
      const leaf = await waitFor("the box's certificate", () => state.leaf("mail.box.test"), { timeoutMs: 10_000 });
      assert.ok(leaf.checkHost("mail.box.test"), `for the hostname: ${String(leaf.subjectAltName)}`);
      const ca = await LocalCa.open(join(state.dir, "proxy", "ca"), "mail.box.test");
      assert.ok(leaf.verify(new X509Certificate(ca.certificatePem).publicKey), "signed by the box's local CA");
      const pem = await readFile(state.pemFile("mail.box.test"), "utf8");
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/, "key and chain in one PEM, as Postfix and Dovecot read it");
      assert.equal((await stat(state.pemFile("mail.box.test"))).mode & 0o777, 0o600);
      const meta = await state.meta("mail.box.test");
      assert.equal(meta?.serviceId, BOX_OWNER);
      assert.equal(meta.certificate?.issuer, "local-ca");
    } finally {
      await handle?.stop();
    }
  });

  it("is renewed once due, the one it replaces revoked", async () => {
    const before = await state.leaf("mail.box.test");
    const due = Date.parse((await state.meta("mail.box.test"))?.certificate?.renewAfter ?? "");
    assert.ok(before && Number.isFinite(due));
    const handle = await actuator().start?.(state.context(server("mail.box.test")));
    try {
      // Not due yet: the same certificate stays.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal((await state.leaf("mail.box.test"))?.serialNumber, before.serialNumber, "not renewed before it is due");
      clock = due + 1000;
      const renewed = await waitFor("the renewed certificate", async () => {
        const leaf = await state.leaf("mail.box.test");
        return leaf !== undefined && leaf.serialNumber !== before.serialNumber ? leaf : undefined;
      }, { timeoutMs: 10_000 });
      assert.ok(renewed.checkHost("mail.box.test"));
      const record = await readFile(join(state.dir, "proxy", "ca", "revocations.json"), "utf8");
      assert.ok(record.toUpperCase().includes(before.serialNumber.toUpperCase()), "the certificate replaced is revoked");
    } finally {
      await handle?.stop();
    }
  });

  it("follows a new server hostname: a certificate for it, the former one revoked and removed", async () => {
    const former = await state.leaf("mail.box.test");
    assert.ok(former);
    const handle = await actuator().start?.(state.context(server("box2.test")));
    try {
      const leaf = await waitFor("the certificate of the new hostname", () => state.leaf("box2.test"), { timeoutMs: 10_000 });
      assert.ok(leaf.checkHost("box2.test"));
      const gone = (file: string) => stat(file).then(() => undefined, (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT");
      await waitFor("the former certificate and its meta gone", async () => (await gone(state.pemFile("mail.box.test"))) && (await gone(state.metaFile("mail.box.test"))), { timeoutMs: 10_000 });
      const record = await readFile(join(state.dir, "proxy", "ca", "revocations.json"), "utf8");
      assert.ok(record.toUpperCase().includes(former.serialNumber.toUpperCase()), "the former certificate is revoked");
    } finally {
      await handle?.stop();
    }
  });

  it("refuses a service whose web hostname is the box's own, as a terminal error, and keeps the box's certificate", async () => {
    const snickers = actuator();
    const spec = server("box2.test");
    const target: Target = { id: "thief", spec: validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id: "thief", domains: [{ name: "box2.test" }], web: { hostnames: ["box2.test"], backend: { kind: "static", root: "." } } }, "thief") };
    await assert.rejects(converge(snickers, target, state.context(spec)), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.terminal, true);
      assert.equal(error.reason, "HostnameReserved");
      assert.match(error.message, /web hostname box2\.test is the box's own hostname/);
      return true;
    });
    assert.equal((await state.meta("box2.test"))?.serviceId, BOX_OWNER);
  });
});

describe("the box's own hostname in the certificates' plan", () => {
  const now = Date.parse("2026-11-01T00:00:00Z");
  const cert = (serviceId: string): CertificateMeta => ({
    schemaVersion: 1,
    host: "box.test",
    serviceId,
    certificate: { issuer: "local-ca", notBefore: new Date(now - 1000).toISOString(), notAfter: new Date(now + 90 * 86_400_000).toISOString(), renewAfter: new Date(now + 60 * 86_400_000).toISOString() },
    attempts: { failures: 0 },
  });

  it("takes over a certificate a service made for the hostname the box now has", () => {
    const plan = planCertificates(BOX_OWNER, ["box.test"], { now, certs: { "box.test": { pem: true, meta: cert("shop") } }, ordering: [], asking: [], previousHosts: [] }, server("box.test"));
    assert.deepEqual(plan.describe, ["issue a certificate for box.test (made for service shop)"]);
    const mine = planCertificates(BOX_OWNER, ["box.test"], { now, certs: { "box.test": { pem: true, meta: cert(BOX_OWNER) } }, ordering: [], asking: [], previousHosts: [] }, server("box.test"));
    assert.deepEqual(mine.steps, [], "its own certificate stays");
  });

  it("never lets a service remove the certificate of the box's own hostname", () => {
    const view = { now, certs: { "box.test": { pem: true, meta: cert("shop") } }, ordering: [], asking: [], previousHosts: ["box.test"] };
    assert.deepEqual(planCertificates("shop", [], view, server("box.test")).steps, []);
    assert.deepEqual(planCertificates("shop", [], view, server("other.test")).steps.map((s) => s.kind), ["drop-certificate"], "once the box has another name, it is the service's to remove");
  });
});

describe("the certificate of the box's own hostname (ACME)", () => {
  it("stands in with the local CA's while the CA cannot be reached, keeping the backoff", async () => {
    const state = await stateFolder("snickers-box-acme-");
    const snickers = createSnickersActuator({ stateDir: state.dir, boxCheckMs: 20, orderPollMs: 20 });
    const handle = await snickers.start?.(state.context(server("box.test", { certificates: { mode: "acme", directoryUrl: "https://127.0.0.1:1/dir", email: "admin@box.test" } })));
    try {
      const failed = await waitFor("the failed order recorded", async () => {
        const meta = await state.meta("box.test");
        return meta?.attempts.failures === 1 ? meta : undefined;
      }, { timeoutMs: 20_000 });
      assert.equal(failed.certificate?.issuer, "local-ca", "the mail daemons have a certificate meanwhile");
      assert.match(failed.attempts.lastError ?? "", /ordering a certificate for box\.test from https:\/\/127\.0\.0\.1:1\/dir/);
      assert.ok((await state.leaf("box.test"))?.checkHost("box.test"));
      // The backoff stands: no second order before it ends.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await state.meta("box.test"))?.attempts.failures, 1);
    } finally {
      await handle?.stop();
      await state.close();
    }
  });

  it("starts no service's order before the commit, though it orders its own at once", async () => {
    const state = await stateFolder("snickers-box-commit-");
    const spec = server("box.test", { certificates: { mode: "acme", directoryUrl: "https://127.0.0.1:1/dir", email: "admin@box.test" } });
    const snickers = createSnickersActuator({ stateDir: state.dir, boxCheckMs: 20, orderPollMs: 20 });
    const handle = await snickers.start?.(state.context(spec));
    try {
      const target: Target = { id: "shop", spec: validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.test" }], web: { hostnames: ["shop.test"], backend: { kind: "static", root: "." } } }, "shop") };
      const applied = await converge(snickers, target, state.context(spec));
      assert.equal(applied.requeue?.reason, "CertificatePending");
      await waitFor("the box's own order to fail", async () => (await state.meta("box.test"))?.attempts.failures === 1, { timeoutMs: 20_000 });
      // The box's looks go on meanwhile; the service's order waits for the commit (after dnsconf's).
      await new Promise((resolve) => setTimeout(resolve, 300));
      const observed = await snickers.observe(target, state.context(spec));
      assert.deepEqual(observed.ordering, [], "no order for shop.test before the commit");
      assert.equal(await state.meta("shop.test"), undefined);
      await snickers.commit?.(state.context(spec));
      await waitFor("the service's order, started by the commit", async () => (await state.meta("shop.test"))?.attempts.failures === 1, { timeoutMs: 20_000 });
    } finally {
      await handle?.stop();
      await state.close();
    }
  });

  it("asks the CA's renewal advice in the background, looking again at the order pace meanwhile, not at once", async () => {
    const state = await stateFolder("snickers-box-ari-");
    const ca = await startStalledCa(join(state.dir, "stalled"));
    const issued = (await LocalCa.open(join(state.dir, "leaf-ca"), "leaf-ca")).issue(["box.test"]);
    await mkdir(join(state.dir, "proxy", "certs"), { recursive: true });
    await writeFile(state.pemFile("box.test"), issued.keyPem + issued.chainPem, { mode: 0o600 });
    const asked = new Date(Date.now() - 1000).toISOString();
    const meta: CertificateMeta = {
      schemaVersion: 1, host: "box.test", serviceId: BOX_OWNER, attempts: { failures: 0 },
      certificate: { issuer: "acme", directoryUrl: ca.directoryUrl, notBefore: issued.notBefore.toISOString(), notAfter: issued.notAfter.toISOString(), renewAfter: issued.notAfter.toISOString(), ariNextCheckAt: asked },
    };
    await writeFile(state.metaFile("box.test"), JSON.stringify(meta));
    let looks = 0;
    const snickers = createSnickersActuator({ stateDir: state.dir, now: () => (looks++, Date.now()), acmeCallTimeoutMs: 2500, boxCheckMs: 200, orderPollMs: 100 });
    const handle = await snickers.start?.(state.context(server("box.test", { certificates: { mode: "acme", directoryUrl: ca.directoryUrl, email: "admin@box.test", caBundleFile: ca.caFile } })));
    try {
      await waitFor("the question at the CA", () => ca.openConnections() > 0, { timeoutMs: 5000 });
      const before = looks;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok(looks - before < 40, `looked ${looks - before} times in a second while the question was under way`);
      const answered = await waitFor("the question to give up", async () => {
        const found = await state.meta("box.test");
        return found?.certificate?.ariNextCheckAt !== asked ? found : undefined;
      }, { timeoutMs: 10_000 });
      assert.ok(Date.parse(answered.certificate?.ariNextCheckAt ?? "") > Date.now() + 5 * 3_600_000, "asked again in 6 hours");
      assert.equal(answered.certificate?.issuer, "acme", "the certificate stands");
    } finally {
      await handle?.stop();
      await ca.stop();
      await state.close();
    }
  });

  it("is ordered from Pebble over HTTP-01, the answer served from the proxy's challenge folder though no route names the hostname", { timeout: 60_000 }, async () => {
    const state = await stateFolder("snickers-box-pebble-");
    const dns = await startFakeDns(join(state.dir, "dns"));
    const httpPort = await freePort();
    const challenges = await serveChallenges(join(state.dir, "proxy", "challenges"), httpPort);
    const pebble = await startPebble(join(state.dir, "pebble"), { httpPort, dnsServer: dns.address });
    const snickers = createSnickersActuator({ stateDir: state.dir, boxCheckMs: 50, orderPollMs: 50 });
    const spec = server("box.test", { certificates: { mode: "acme", directoryUrl: pebble.directoryUrl, email: "admin@box.test", caBundleFile: pebble.tlsCaFile } });
    const handle = await snickers.start?.(state.context(spec));
    try {
      const meta = await waitFor("the certificate from Pebble", async () => {
        const found = await state.meta("box.test");
        return found?.certificate?.issuer === "acme" ? found : undefined;
      }, { timeoutMs: 45_000 });
      assert.equal(meta.serviceId, BOX_OWNER);
      assert.equal(meta.certificate?.directoryUrl, pebble.directoryUrl);
      const leaf = await state.leaf("box.test");
      assert.ok(leaf);
      assert.ok(leaf.checkHost("box.test"), "for the hostname");
      assert.match(leaf.issuer, /Pebble/i, "issued by Pebble, not the local CA");
      assert.ok(challenges.hosts.some((host) => host.startsWith("box.test")), `Pebble asked for the challenge of box.test: ${challenges.hosts.join(", ")}`);
      assert.equal((await stat(state.pemFile("box.test"))).mode & 0o777, 0o600);
    } finally {
      await handle?.stop();
      await pebble.stop();
      await challenges.close();
      await dns.stop();
      await state.close();
    }
  });
});
