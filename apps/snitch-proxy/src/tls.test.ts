// What the TLS side offers and promises: AEAD suites only on TLS 1.2, nothing older than 1.2,
// Strict-Transport-Security for routes that opt in, and unknown SNI names remembered for a moment
// (a flood of one unknown name is not a flood of disk reads) until routes or certificates change.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { CertificateStore, certificateFile } from "./certs.ts";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { backend, get1, get2, peerCertificate, sandbox, session2, type Backend, type Sandbox } from "./test/support.ts";

const H = "secure.tls.test";
const PLAIN = "plain.tls.test";
const STATIC = "static.tls.test";

/** Whether a handshake with these client options succeeds; the negotiated suite when it does. */
function handshake(port: number, options: ConnectionOptions): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: H, ALPNProtocols: ["http/1.1"], ...options }, () => {
      const name = socket.getCipher().name;
      socket.destroy();
      resolve(name);
    });
    socket.setTimeout(5000, () => socket.destroy());
    socket.on("error", () => resolve(undefined));
    socket.on("close", () => resolve(undefined));
  });
}

describe("snitch-proxy TLS", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let port: number;
  let site: Backend;

  before(async () => {
    box = await sandbox();
    site = await backend("site");
    const root = join(box.stateDir, "sites", "static");
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "index.html"), "hello");
    for (const name of [H, PLAIN, STATIC]) await box.certify(name);
    await box.routes([
      { host: H, pathPrefix: "/", serviceId: "secure", upstream: { kind: "address", address: site.address }, hsts: true },
      { host: PLAIN, pathPrefix: "/", serviceId: "plain", upstream: { kind: "address", address: site.address } },
      { host: STATIC, pathPrefix: "/", serviceId: "static", upstream: { kind: "static", root }, hsts: true },
    ]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(200);
    await site.close();
    await box.cleanup();
  });

  it("offers TLS 1.2 with AEAD suites only", async () => {
    const ca = box.ca.certificatePem;
    const tls12 = { ca, maxVersion: "TLSv1.2" as const };
    assert.equal(await handshake(port, { ...tls12, ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384" }), undefined, "a CBC suite was accepted");
    assert.equal(await handshake(port, { ...tls12, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" }), "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert.equal(await handshake(port, { ...tls12, ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305" }), "ECDHE-ECDSA-CHACHA20-POLY1305");
    assert.ok((await handshake(port, { ca })) !== undefined, "TLS 1.3 with the defaults");
  });

  it("refuses anything older than TLS 1.2", async () => {
    // The client must be allowed to go that low for the question to be asked at all.
    const old = await handshake(port, { ca: box.ca.certificatePem, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" });
    assert.equal(old, undefined);
  });

  it("sends Strict-Transport-Security for a route that opts in, over both protocols", async () => {
    const ca = box.ca.certificatePem;
    const one = await get1(port, H, ca, "/");
    assert.equal(one.status, 200);
    assert.match(String(one.headers["strict-transport-security"]), /^max-age=\d{7,}/);
    const session = await session2(port, H, ca);
    try {
      const two = await get2(session, "/");
      assert.match(String(two.headers["strict-transport-security"]), /^max-age=\d{7,}/);
    } finally {
      session.close();
    }
    const fromStatic = await get1(port, STATIC, ca, "/index.html");
    assert.equal(fromStatic.body, "hello");
    assert.match(String(fromStatic.headers["strict-transport-security"]), /^max-age=\d{7,}/);
    const plain = await get1(port, PLAIN, ca, "/");
    assert.equal(plain.status, 200);
    assert.equal(plain.headers["strict-transport-security"], undefined, "a route that did not opt in");
  });

  it("remembers an unknown SNI name for a moment, and forgets when the routes change", async () => {
    const ca = box.ca.certificatePem;
    const name = "late.tls.test";
    await assert.rejects(peerCertificate(port, name, ca));
    await box.certify(name);
    // Within the negative cache's lifetime the file is not looked at again.
    await assert.rejects(peerCertificate(port, name, ca));
    // The routes change (as when the site is added with its certificate): the miss is forgotten.
    await box.routes([
      { host: H, pathPrefix: "/", serviceId: "secure", upstream: { kind: "address", address: site.address }, hsts: true },
      { host: name, pathPrefix: "/", serviceId: "late", upstream: { kind: "address", address: site.address } },
    ]);
    await proxy.reloadRoutes();
    const cert = await peerCertificate(port, name, ca);
    assert.match(String(cert.subjectaltname), /late\.tls\.test/);
  });
});

describe("CertificateStore's negative cache", () => {
  it("answers a name without a certificate from memory, for missMs, within a bounded table", async () => {
    const box = await sandbox();
    try {
      const dir = join(box.stateDir, "proxy", "certs");
      const store = new CertificateStore(dir, { missMs: 300, maxMisses: 2 });
      assert.equal(await store.find("a.miss.test"), undefined);
      await box.certify("a.miss.test");
      assert.equal(await store.find("a.miss.test"), undefined, "remembered as missing");
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal((await store.find("a.miss.test"))?.name, "a.miss.test", "found once the miss expired");
      // Bounded: past maxMisses the oldest miss is forgotten (and looked up again).
      assert.equal(await store.find("b.miss.test"), undefined);
      assert.equal(await store.find("c.miss.test"), undefined);
      assert.equal(await store.find("d.miss.test"), undefined);
      await box.certify("b.miss.test");
      assert.equal((await store.find("b.miss.test"))?.name, "b.miss.test", "the oldest miss was dropped");
      assert.ok(certificateFile(dir, "b.miss.test").startsWith(dir));
    } finally {
      await box.cleanup();
    }
  });
});
