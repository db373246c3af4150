import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore, validate } from "@coyote/spec";
import { createSnickersActuator } from "./actuator.ts";
import { CRL_VALIDITY_MS, LocalCa } from "./local-ca.ts";

const DAY = 86_400_000;
const AUTHOR = { name: "Test", email: "test@example.org" };

/** Runs openssl with a deadline; its status, output and errors. */
function openssl(args: string[]): { status: number | null; out: string } {
  const run = spawnSync("openssl", args, { encoding: "utf8", timeout: 10_000 });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

/** The first certificate of a key-and-chain PEM file, as PEM. */
const leafOf = (pem: string) => /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)?.[0] ?? "";

describe("the local CA's revocation", () => {
  let dir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  let clock = Date.now();
  const caDir = () => join(dir, "proxy", "ca");
  const spec = validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test" }, "server");
  const context = (): ActuatorContext => ({ stateDir: dir, store, logger, signal: new AbortController().signal, server: spec });
  const service = (id: string, hostnames: string[]): Target => ({ id, spec: validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.test` }], web: { hostnames, backend: { kind: "static", root: "." } } }, id) });
  const certFile = (host: string) => join(dir, "proxy", "certs", `${host}.pem`);
  const crlText = () => openssl(["crl", "-inform", "DER", "-in", join(caDir(), "ca.crl"), "-noout", "-text"]);
  const serialOf = async (host: string) => new X509Certificate(leafOf(await readFile(certFile(host), "utf8"))).serialNumber.toUpperCase();
  /** `openssl verify -crl_check` of a host's certificate against the CA and its CRL. */
  const verify = async (host: string) => {
    const leaf = join(dir, `${host}.leaf.pem`);
    await writeFile(leaf, leafOf(await readFile(certFile(host), "utf8")));
    const crlPem = join(dir, "crl.pem");
    execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(caDir(), "ca.crl"), "-out", crlPem], { timeout: 10_000 });
    return openssl(["verify", "-crl_check", "-CAfile", join(caDir(), "ca.pem"), "-CRLfile", crlPem, leaf]);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "snickers-crl-"));
    logger = createLogger({ component: "minion", file: join(dir, "logs", "minion.log") });
    store = await StateStore.open(dir, { author: AUTHOR });
  });
  after(async () => {
    await logger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("publishes a v2 CRL signed by the CA, with its dates, number and key id, and a CRL URL in every leaf", async () => {
    const snickers = createSnickersActuator({ stateDir: dir, now: () => clock });
    await converge(snickers, service("shop", ["shop.test", "www.shop.test"]), context());
    const text = crlText();
    assert.equal(text.status, 0, text.out);
    assert.match(text.out, /Version 2 \(0x1\)/);
    assert.match(text.out, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text.out, /Issuer: O = Coyote, CN = Coyote local CA \(box\.test\)/);
    assert.match(text.out, /Next Update: /);
    assert.match(text.out, /X509v3 CRL Number:/);
    assert.match(text.out, /X509v3 Authority Key Identifier:/);
    assert.match(text.out, /No Revoked Certificates/);
    const signed = openssl(["crl", "-inform", "DER", "-in", join(caDir(), "ca.crl"), "-noout", "-CAfile", join(caDir(), "ca.pem")]);
    assert.match(signed.out, /verify OK/);
    await writeFile(join(dir, "shop.leaf.pem"), leafOf(await readFile(certFile("shop.test"), "utf8")));
    const dp = openssl(["x509", "-in", join(dir, "shop.leaf.pem"), "-noout", "-ext", "crlDistributionPoints"]);
    assert.match(dp.out, /URI:http:\/\/box\.test\/\.well-known\/coyote\/ca\.crl/);
    assert.equal((await verify("shop.test")).status, 0, "a certificate nobody revoked verifies with the CRL checked");
    assert.equal((await stat(join(caDir(), "ca.crl"))).mode & 0o777, 0o644, "the CRL is public");
  });

  it("revokes a certificate when its hostname is dropped, and the one it replaces on renewal", async () => {
    const snickers = createSnickersActuator({ stateDir: dir, now: () => clock });
    const dropped = await serialOf("www.shop.test");
    const kept = await serialOf("shop.test");
    await converge(snickers, service("shop", ["shop.test"]), context());
    let text = crlText().out;
    assert.match(text, new RegExp(`Serial Number: ${dropped}\\s+Revocation Date: .*\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code:\\s+Cessation Of Operation`));
    assert.doesNotMatch(text, new RegExp(kept));
    assert.equal((await verify("shop.test")).status, 0);

    // Renewal: the certificate replaced is revoked as superseded; its successor verifies.
    const meta = JSON.parse(await readFile(join(dir, "proxy", "certs", "shop.test.json"), "utf8")) as { certificate: { renewAfter: string } };
    const old = await readFile(certFile("shop.test"), "utf8");
    clock = Date.parse(meta.certificate.renewAfter) + 1000;
    await converge(createSnickersActuator({ stateDir: dir, now: () => clock }), service("shop", ["shop.test"]), context());
    // Back to the present: a CRL dated in the future (the clock went back) is reissued at once.
    clock = Date.now();
    await LocalCa.open(caDir(), "box.test", clock);
    text = crlText().out;
    assert.match(text, new RegExp(`Serial Number: ${kept}[\\s\\S]+?Superseded`));
    await writeFile(join(dir, "old.leaf.pem"), leafOf(old));
    execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(caDir(), "ca.crl"), "-out", join(dir, "crl.pem")], { timeout: 10_000 });
    const refused = openssl(["verify", "-crl_check", "-CAfile", join(caDir(), "ca.pem"), "-CRLfile", join(dir, "crl.pem"), join(dir, "old.leaf.pem")]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.out, /certificate revoked/);
    assert.equal((await verify("shop.test")).status, 0, "the new certificate is not revoked");
  });

  it("revokes a removed service's certificates and leaves another issuer's alone", async () => {
    const snickers = createSnickersActuator({ stateDir: dir, now: () => clock });
    await converge(snickers, service("gone", ["gone.test"]), context());
    const serial = await serialOf("gone.test");
    // A certificate of another CA where a local one would be: not the local CA's to list.
    const other = await LocalCa.open(join(dir, "other-ca"), "other.test");
    const foreign = other.issue(["foreign.test"]);
    await converge(snickers, service("foreign", ["foreign.test"]), context());
    await writeFile(certFile("foreign.test"), foreign.keyPem + foreign.chainPem);
    const foreignSerial = new X509Certificate(leafOf(foreign.chainPem)).serialNumber.toUpperCase();
    await converge(snickers, { id: "gone", spec: undefined }, context());
    await converge(snickers, { id: "foreign", spec: undefined }, context());
    const text = crlText().out;
    assert.match(text, new RegExp(`Serial Number: ${serial}`));
    assert.doesNotMatch(text, new RegExp(foreignSerial));
  });

  it("drops entries once their certificate has expired, and reissues the CRL halfway to nextUpdate", async () => {
    const record = JSON.parse(await readFile(join(caDir(), "revocations.json"), "utf8")) as { crlNumber: number; crlThisUpdate: string; revoked: { serial: string; notAfter: string }[] };
    assert.ok(record.revoked.length >= 3);
    const ca = await LocalCa.open(caDir(), "box.test", clock);
    const issuedAt = Date.parse(record.crlThisUpdate);
    assert.equal(await ca.refreshCrl(issuedAt + CRL_VALIDITY_MS / 2 - 60_000), false, "still fresh");
    assert.equal(await ca.refreshCrl(issuedAt + CRL_VALIDITY_MS / 2 + 60_000), true, "halfway: a new CRL");
    const number = (t: string) => Number(/X509v3 CRL Number:\s+(\d+)/.exec(t)?.[1]);
    const later = crlText().out;
    assert.ok(number(later) > record.crlNumber, "the CRL number grows");
    for (const entry of record.revoked) assert.match(later, new RegExp(entry.serial), "nothing expired yet");

    const afterExpiry = Math.max(...record.revoked.map((e) => Date.parse(e.notAfter))) + DAY;
    assert.equal(await ca.refreshCrl(afterExpiry), true);
    const emptied = crlText().out;
    for (const entry of record.revoked) assert.doesNotMatch(emptied, new RegExp(entry.serial));
    assert.match(emptied, /No Revoked Certificates/);
    const kept = JSON.parse(await readFile(join(caDir(), "revocations.json"), "utf8")) as { revoked: unknown[] };
    assert.equal(kept.revoked.length, 0, "the record is bounded too");
  });

  it("refuses a damaged revocation record with a clear error, keeping the CA and the certificate", async () => {
    const key = await readFile(join(caDir(), "ca-key.pem"), "utf8");
    const damaged = '{"schemaVersion":1,"crlNumber":-4,"revoked":[]}\n';
    await writeFile(join(caDir(), "revocations.json"), damaged);
    await assert.rejects(LocalCa.open(caDir(), "box.test"), /revocations\.json[\s\S]*crlNumber|crlNumber[\s\S]*revocations\.json/);
    const snickers = createSnickersActuator({ stateDir: dir, now: () => clock });
    await assert.rejects(converge(snickers, service("shop", ["other.shop.test"]), context()), /revocations\.json/);
    await stat(certFile("shop.test"));
    assert.equal(await readFile(join(caDir(), "ca-key.pem"), "utf8"), key, "the CA's key is untouched");
    assert.equal(await readFile(join(caDir(), "revocations.json"), "utf8"), damaged, "the damaged record is left for a person to mend");
  });
});

describe("the local CA's files", () => {
  it("makes no new CA over a certificate whose key is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "snickers-ca-"));
    try {
      const ca = await LocalCa.open(dir, "keep.test");
      await rm(join(dir, "ca-key.pem"));
      await assert.rejects(LocalCa.open(dir, "keep.test"), /ca-key\.pem is missing/);
      assert.equal(await readFile(join(dir, "ca.pem"), "utf8"), ca.certificatePem, "the trusted certificate stays");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("CRL encoding", () => {
  it("writes serials as minimal positive INTEGERs, which OpenSSL requires", async () => {
    const dir = await mkdtemp(join(tmpdir(), "snickers-der-"));
    try {
      const { createCrl } = await import("./crl.ts");
      const { createPrivateKey, createPublicKey } = await import("node:crypto");
      const ca = await LocalCa.open(dir, "der.test");
      const privateKey = createPrivateKey(await readFile(join(dir, "ca-key.pem"), "utf8"));
      const der = createCrl({
        caCertificateDer: new X509Certificate(ca.certificatePem).raw,
        privateKey,
        publicKey: createPublicKey(privateKey),
        number: 7,
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + DAY),
        revoked: [{ serial: "0000AB", revokedAt: new Date(), reason: "superseded" }, { serial: "80FF", revokedAt: new Date(), reason: "cessationOfOperation" }],
      });
      await writeFile(join(dir, "test.crl"), der);
      const text = openssl(["crl", "-inform", "DER", "-in", join(dir, "test.crl"), "-noout", "-text"]);
      assert.equal(text.status, 0, text.out);
      assert.match(text.out, /Serial Number: AB\n/);
      assert.match(text.out, /Serial Number: 80FF\n/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
