import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readFile, rm, symlink, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { LOCAL_CA_FILE_MAX_BYTES } from "@coyote/spec";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { get1, get2, sandbox, session2, type Sandbox } from "./test/support.ts";

/** One plain HTTP request to the proxy's :80 listener, with a deadline; the body as bytes. */
function plain(port: number, path: string, options: { host?: string; method?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: { host: options.host ?? "anything.example" }, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("test client timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe("snitch-proxy serves the local CA's certificate and CRL", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let httpPort: number;
  const caDir = () => join(box.stateDir, "proxy", "ca");

  before(async () => {
    box = await sandbox();
    await box.certify("site.test");
    await box.routes([]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: 0 }, writeStats: false });
    httpPort = proxy.httpAddress?.port ?? 0;
  });
  after(async () => {
    await proxy.stop(1000);
    await box.cleanup();
  });

  it("answers ca.crl and ca.pem over plain HTTP for any Host, with their media types", async () => {
    const crl = await plain(httpPort, "/.well-known/coyote/ca.crl", { host: "whatever.invalid" });
    assert.equal(crl.status, 200);
    assert.equal(crl.headers["content-type"], "application/pkix-crl");
    assert.deepEqual(crl.body, await readFile(join(caDir(), "ca.crl")));
    const pem = await plain(httpPort, "/.well-known/coyote/ca.pem?download=1");
    assert.equal(pem.status, 200);
    assert.equal(pem.headers["content-type"], "application/x-pem-file");
    assert.equal(pem.body.toString("utf8"), box.ca.certificatePem);
    const head = await plain(httpPort, "/.well-known/coyote/ca.pem", { method: "HEAD" });
    assert.deepEqual([head.status, head.headers["content-length"], head.body.length], [200, String(Buffer.byteLength(box.ca.certificatePem)), 0]);
    assert.equal((await plain(httpPort, "/.well-known/coyote/ca.pem", { method: "POST" })).status, 405);
  });

  it("answers them over HTTPS too, on HTTP/1.1 and HTTP/2, though no route names the host", async () => {
    const pem = await get1(proxy.httpsAddress.port, "site.test", box.ca.certificatePem, "/.well-known/coyote/ca.pem");
    assert.deepEqual([pem.status, pem.headers["content-type"], pem.body], [200, "application/x-pem-file", box.ca.certificatePem]);
    const head = await get1(proxy.httpsAddress.port, "site.test", box.ca.certificatePem, "/.well-known/coyote/ca.pem", { method: "HEAD" });
    assert.deepEqual([head.status, head.headers["content-length"], head.body], [200, String(Buffer.byteLength(box.ca.certificatePem)), ""]);
    const session = await session2(proxy.httpsAddress.port, "site.test", box.ca.certificatePem);
    try {
      const crl = await get2(session, "/.well-known/coyote/ca.crl");
      assert.equal(crl.status, 200);
      assert.equal(crl.headers["content-type"], "application/pkix-crl");
    } finally {
      session.close();
    }
  });

  it("refuses every other path under /.well-known/coyote/ with 404: nothing is looked up by the request's path", async () => {
    for (const path of ["/.well-known/coyote/ca-key.pem", "/.well-known/coyote/revocations.json", "/.well-known/coyote/../ca/ca-key.pem", "/.well-known/coyote/%2e%2e/ca/ca-key.pem", "/.well-known/coyote/", "/.well-known/coyote/ca.crl/", "/.well-known/coyote/CA.CRL"]) {
      const answer = await plain(httpPort, path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body.toString("utf8"), /PRIVATE KEY/, path);
    }
    assert.equal((await get1(proxy.httpsAddress.port, "site.test", box.ca.certificatePem, "/.well-known/coyote/ca-key.pem")).status, 404);
  });

  it("sends no file larger than the cap, and follows no symbolic link", async () => {
    const crlFile = join(caDir(), "ca.crl");
    const good = await readFile(crlFile);
    try {
      await writeFile(crlFile, Buffer.alloc(LOCAL_CA_FILE_MAX_BYTES + 1));
      assert.equal((await plain(httpPort, "/.well-known/coyote/ca.crl")).status, 404, "too large");
      await rm(crlFile);
      await symlink(join(caDir(), "ca-key.pem"), crlFile);
      const linked = await plain(httpPort, "/.well-known/coyote/ca.crl");
      assert.equal(linked.status, 404, "a link is not followed");
      assert.doesNotMatch(linked.body.toString("utf8"), /PRIVATE KEY/);
    } finally {
      await rm(crlFile, { force: true });
      await writeFile(crlFile, good);
    }
    assert.equal((await plain(httpPort, "/.well-known/coyote/ca.crl")).status, 200);
  });
});
