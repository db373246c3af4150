import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import type { ProxyListen } from "@coyote/spec";
import { freePorts, waitFor as until } from "@coyote/testing";
import { startSnitchProxy } from "./component.ts";
import { startProxy } from "./proxy.ts";
import { readListenSettings } from "./listen-settings.ts";
import { backend, get1, get2, sandbox, session2 } from "./test/support.ts";

/** A plain HTTP GET on loopback: the proxy answers with a redirect to its HTTPS port. */
function redirectOf(port: number, host: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = get({ host: "127.0.0.1", port, path: "/x", headers: { host }, timeout: 5000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    request.once("timeout", () => request.destroy(new Error("timed out")));
    request.once("error", reject);
  });
}

async function writeRoutes(stateDir: string, listen: ProxyListen | undefined, routes: unknown[] = []): Promise<void> {
  await mkdir(join(stateDir, "proxy"), { recursive: true });
  const doc = { schemaVersion: 1, generatedAt: new Date().toISOString(), ...(listen ? { listen } : {}), routes };
  // Renamed into place, as the minion writes it.
  await writeFile(join(stateDir, "proxy", "routes.json.tmp"), JSON.stringify(doc));
  await rename(join(stateDir, "proxy", "routes.json.tmp"), join(stateDir, "proxy", "routes.json"));
}

describe("snitch-proxy component", () => {
  let stateDir: string;
  let logger: CoyoteLogger;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "snitch-component-"));
    logger = createLogger({ component: "snitch-proxy", file: join(stateDir, "logs", "snitch-proxy.log") });
  });
  after(async () => {
    await logger.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("starts with no specs/ folder at all, listens where routes.json says, and moves when the listen block does; open connections finish on the old ports", async () => {
    const box = await sandbox();
    const site = await backend("site");
    try {
      await box.certify("shop.test");
      const route = { host: "shop.test", pathPrefix: "/", serviceId: "shop", upstream: { kind: "address", address: site.address } };
      const [https, http, nextHttps, nextHttp] = await freePorts(4);
      assert.ok(https !== undefined && http !== undefined && nextHttps !== undefined && nextHttp !== undefined);
      await writeRoutes(box.stateDir, { host: "127.0.0.1", https, http }, [route]);
      const running = await startSnitchProxy({ name: "snitch-proxy", stateDir: box.stateDir, logger: box.logger, signal: new AbortController().signal }, { workers: 2, listenCheckMs: 50 });
      let settled = false;
      running.done.then(() => (settled = true), () => (settled = true));
      try {
        assert.deepEqual(await redirectOf(http, "shop.test"), { status: 308, location: `https://shop.test:${String(https)}/x` });
        assert.equal((await get1(https, "shop.test", box.ca.certificatePem)).status, 200);
        await assert.rejects(stat(join(box.stateDir, "specs")), /ENOENT/, "the proxy reads no spec, and makes no specs/ folder");
        const open = await session2(https, "shop.test", box.ca.certificatePem);
        try {
          await writeRoutes(box.stateDir, { host: "127.0.0.1", https: nextHttps, http: nextHttp }, [route]);
          await until("the new ports", async () => redirectOf(nextHttp, "shop.test").then((answer) => answer, () => undefined));
          assert.deepEqual(await redirectOf(nextHttp, "shop.test"), { status: 308, location: `https://shop.test:${String(nextHttps)}/x` }, "redirects name the new HTTPS port");
          // Every worker moved: a run of fresh connections all reach the new port, none the old.
          for (let i = 0; i < 6; i++) assert.equal((await get1(nextHttps, "shop.test", box.ca.certificatePem)).status, 200);
          for (let i = 0; i < 6; i++) await assert.rejects(get1(https, "shop.test", box.ca.certificatePem), /ECONNREFUSED/);
          await assert.rejects(redirectOf(http, "shop.test"), /ECONNREFUSED/);
          assert.equal((await get2(open, "/still")).status, 200, "a connection open on the old port is still served");
          assert.equal(settled, false, "the component runs on");
        } finally {
          open.close();
        }
      } finally {
        await running.stop();
      }
    } finally {
      await site.close();
      await box.cleanup();
    }
  });

  it("stops with an error when it cannot move to the new ports, so that its supervisor starts it again there", async () => {
    const [https, http] = await freePorts(2);
    assert.ok(https !== undefined && http !== undefined);
    // A port another program holds: the move cannot bind it.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const taken = (holder.address() as AddressInfo).port;
    await writeRoutes(stateDir, { host: "127.0.0.1", https, http });
    const running = await startSnitchProxy({ name: "snitch-proxy", stateDir, logger, signal: new AbortController().signal }, { workers: 1, listenCheckMs: 50 });
    try {
      let ended: unknown;
      const ending = running.done.then(() => "resolved", (error: unknown) => (ended = error));
      await writeRoutes(stateDir, { host: "127.0.0.1", https: taken, http });
      await Promise.race([ending, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
      assert.ok(ended instanceof Error, "done rejects when the move fails");
      assert.match(ended.message, new RegExp(`to 127\\.0\\.0\\.1 ports ${String(taken)} \\(https\\).*moving failed`));
      await assert.rejects(redirectOf(http, "shop.test"), /ECONNREFUSED/, "stopped");
    } finally {
      await running.stop();
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("a proxy alone moves only the listener whose address changes, and its redirects name the new HTTPS port", async () => {
    const [https, http, nextHttps] = await freePorts(3);
    assert.ok(https !== undefined && http !== undefined && nextHttps !== undefined);
    const proxy = await startProxy({ stateDir, logger, https: { host: "127.0.0.1", port: https }, http: { host: "127.0.0.1", port: http }, publicHttpsPort: https, writeStats: false, accessLog: false });
    try {
      // Without SO_REUSEPORT a second bind of the plain port would fail: it is kept, not bound again.
      await proxy.move({ host: "127.0.0.1", port: nextHttps }, { host: "127.0.0.1", port: http }, nextHttps);
      assert.equal(proxy.httpsAddress.port, nextHttps);
      assert.deepEqual(await redirectOf(http, "shop.test"), { status: 308, location: `https://shop.test:${String(nextHttps)}/x` });
      // A port that cannot be bound leaves everything where it was.
      await assert.rejects(proxy.move({ host: "127.0.0.1", port: nextHttps }, { host: "127.0.0.1", port: nextHttps }), /EADDRINUSE/);
      assert.equal(proxy.httpAddress?.port, http);
      assert.equal((await redirectOf(http, "shop.test")).status, 308);
    } finally {
      await proxy.stop(500);
    }
  });

  it("listens where the server spec's defaults say until the minion has written a listen block, and never where specs/ says", async () => {
    const bare = await mkdtemp(join(tmpdir(), "snitch-listen-"));
    try {
      const defaults = { host: "127.0.0.1", https: 8443, http: 8080 };
      assert.deepEqual(await readListenSettings(bare), defaults, "no routes file: the defaults");
      await mkdir(join(bare, "specs"), { recursive: true });
      await writeFile(join(bare, "specs", "server.json"), JSON.stringify({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", publicIPv4: "203.0.113.7", ports: { https: 1443, http: 1080 } }));
      assert.deepEqual(await readListenSettings(bare), defaults, "a server spec is not read");
      await writeRoutes(bare, undefined);
      assert.deepEqual(await readListenSettings(bare), defaults, "a routes file without a listen block: the defaults");
      await writeRoutes(bare, { host: "::", https: 2443, http: 2080 });
      assert.deepEqual(await readListenSettings(bare), { host: "::", https: 2443, http: 2080 });
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  it("keeps the last good copy's listen block while routes.json is refused or missing", async () => {
    const bare = await mkdtemp(join(tmpdir(), "snitch-listen-"));
    try {
      const good = { schemaVersion: 1, generatedAt: new Date().toISOString(), listen: { host: "::", https: 3443, http: 3080 }, routes: [] };
      await mkdir(join(bare, "proxy", "last-good"), { recursive: true });
      await writeFile(join(bare, "proxy", "last-good", "routes.json"), JSON.stringify(good));
      assert.deepEqual(await readListenSettings(bare), good.listen, "missing: the last good copy");
      await writeFile(join(bare, "proxy", "routes.json"), JSON.stringify({ ...good, listen: { host: "0.0.0.0", https: 3443, http: 3080 } }));
      assert.deepEqual(await readListenSettings(bare), good.listen, "refused (a bind address the schema does not allow): the last good copy");
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });
});
