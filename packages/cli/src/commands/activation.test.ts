// `coyote activation`: the URL of the panel on the box's hostname, the one-time token until the box
// is activated, and the fingerprint of the box's own CA as openssl (and browsers) show it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { StateStore } from "@coyote/spec";
import { tempDirs } from "@coyote/testing";
import { EXIT } from "../errors.ts";
import { cli } from "../test/support.ts";
import { activationLines, activationUrl } from "./activation.ts";

const tempDir = tempDirs("coyote-activation-");
const AUTHOR = { name: "Test", email: "test@example.org" };
const TOKEN = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$/;

/** A state folder with a server spec. */
async function box(server: Record<string, unknown> = {}): Promise<{ dir: string; store: StateStore }> {
  const dir = tempDir();
  const store = await StateStore.open(dir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", ports: { https: 8443 }, ...server }, { author: AUTHOR });
  return { dir, store };
}

/** A CA certificate made by openssl in `proxy/ca/ca.pem`, and its fingerprint as openssl prints it. */
function makeCa(dir: string): { caFile: string; keyFile: string; fingerprint: string } {
  const caDir = join(dir, "proxy", "ca");
  mkdirSync(caDir, { recursive: true });
  const caFile = join(caDir, "ca.pem");
  const keyFile = join(dir, "ca-key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", caFile, "-days", "30", "-subj", "/CN=Test local CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], { stdio: "ignore" });
  const printed = execFileSync("openssl", ["x509", "-in", caFile, "-noout", "-fingerprint", "-sha256"], { encoding: "utf8" });
  const fingerprint = /Fingerprint=([0-9A-F:]+)/.exec(printed)?.[1];
  assert.ok(fingerprint !== undefined, printed);
  return { caFile, keyFile, fingerprint };
}

/** A certificate for `host` in `proxy/certs/<host>.pem`, key first as snickers writes it, signed by the CA or by itself. */
function makeHostCertificate(dir: string, host: string, ca?: { caFile: string; keyFile: string }): void {
  const certs = join(dir, "proxy", "certs");
  mkdirSync(certs, { recursive: true });
  const key = join(dir, `${host}-key.pem`);
  const cert = join(dir, `${host}.crt`);
  const subject = ["-subj", `/CN=${host}`, "-addext", `subjectAltName=DNS:${host}`];
  if (ca === undefined) {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "30", ...subject, "-addext", "basicConstraints=critical,CA:FALSE"], { stdio: "ignore" });
  } else {
    const csr = join(dir, `${host}.csr`);
    execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, ...subject], { stdio: "ignore" });
    execFileSync("openssl", ["x509", "-req", "-in", csr, "-CA", ca.caFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-out", cert, "-days", "30", "-copy_extensions", "copy"], { stdio: "ignore" });
  }
  execFileSync("sh", ["-c", 'cat "$1" "$2" > "$3"', "sh", key, cert, join(certs, `${host}.pem`)]);
}

interface Printed {
  url: string;
  token: string | null;
  caFingerprint: string | null;
  certificateMode: string;
}

async function json(dir: string): Promise<Printed> {
  const result = await cli(dir, "activation", "--json");
  assert.equal(result.code, EXIT.OK, result.err);
  return JSON.parse(result.out) as Printed;
}

describe("coyote activation", () => {
  test("the URL names the HTTPS port unless it is 443", () => {
    assert.equal(activationUrl({ hostname: "box.example", ports: { https: 443, http: 80, panel: 3000 } }), "https://box.example/");
    assert.equal(activationUrl({ hostname: "box.example", ports: { https: 8443, http: 80, panel: 3000 } }), "https://box.example:8443/");
  });

  test("prints the URL, the token and the local CA's fingerprint as openssl shows it; the same in one JSON object", async () => {
    const { dir, store } = await box();
    const ca = makeCa(dir);
    const text = await cli(dir, "activation");
    assert.equal(text.code, EXIT.OK, text.err);
    const printed = await json(dir);
    assert.equal(printed.url, "https://box.test:8443/");
    assert.match(printed.token ?? "", TOKEN);
    assert.equal(printed.caFingerprint, ca.fingerprint);
    assert.equal(printed.certificateMode, "local-ca");
    assert.deepEqual(Object.keys(printed).sort(), ["caFingerprint", "certificateMode", "token", "url"]);
    assert.match(text.out, /^activation: open https:\/\/box\.test:8443\/ and enter the token below$/m);
    assert.ok(text.out.includes(`activation token: ${printed.token ?? "?"} `), text.out);
    assert.ok(text.out.includes(ca.fingerprint), text.out);
    assert.ok(text.out.includes(ca.caFile), "names the CA file to trust");
    // The token is the one `coyote up` prints: made once, kept until activation.
    assert.equal((await store.readSecret("activation-token"))?.toString("utf8").trim(), printed.token);
    assert.deepEqual(await activationLines({ stateDir: dir }), text.out.split("\n"), "coyote up prints the same lines");
  });

  test("prints no token once the box is activated, and no port on 443", async () => {
    const { dir } = await box({ activated: true, ports: { https: 443 } });
    makeCa(dir);
    const printed = await json(dir);
    assert.equal(printed.token, null);
    assert.equal(printed.url, "https://box.test/");
    const text = await cli(dir, "activation");
    assert.doesNotMatch(text.out, /activation token/);
    assert.match(text.out, /^panel: https:\/\/box\.test\/$/m);
    assert.match(text.out, /^activation: done/m);
  });

  test("says the local CA is not made yet, or unusable, rather than print a fingerprint it cannot vouch for", async () => {
    const { dir } = await box();
    assert.equal((await json(dir)).caFingerprint, null);
    assert.match((await cli(dir, "activation")).out, /ca\.pem is not made yet/);
    mkdirSync(join(dir, "proxy", "ca"), { recursive: true });
    writeFileSync(join(dir, "proxy", "ca", "ca.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    assert.equal((await json(dir)).caFingerprint, null);
    assert.match((await cli(dir, "activation")).out, /ca\.pem is unusable: no certificate in it/);
    writeFileSync(join(dir, "proxy", "ca", "ca.pem"), Buffer.alloc(2 * 1024 * 1024, 65));
    assert.match((await cli(dir, "activation")).out, /ca\.pem is unusable: 2097152 bytes, more than/);
    // A certificate that is not a CA's is no CA to trust.
    makeHostCertificate(dir, "other.test");
    execFileSync("sh", ["-c", 'cp "$1" "$2"', "sh", join(dir, "proxy", "certs", "other.test.pem"), join(dir, "proxy", "ca", "ca.pem")]);
    assert.match((await cli(dir, "activation")).out, /ca\.pem is unusable: its certificate is not a CA's/);
  });

  test("with ACME, prints the local CA's fingerprint only while the hostname's certificate is its stand-in", async () => {
    const { dir } = await box({ certificates: { mode: "acme", directoryUrl: "https://acme.example/directory", email: "ops@box.test" } });
    const ca = makeCa(dir);
    let printed = await json(dir);
    assert.equal(printed.certificateMode, "acme");
    assert.equal(printed.caFingerprint, null, "no certificate yet: the ACME one is coming");
    makeHostCertificate(dir, "box.test", ca);
    printed = await json(dir);
    assert.equal(printed.caFingerprint, ca.fingerprint, "the stand-in of the local CA");
    assert.match((await cli(dir, "activation")).out, /^certificate: from the box's own CA until the ACME order succeeds/m);
    makeHostCertificate(dir, "box.test");
    assert.equal((await json(dir)).caFingerprint, null, "a certificate of another CA");
    assert.match((await cli(dir, "activation")).out, /^certificate: from the ACME CA/m);
  });
});
