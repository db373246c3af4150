import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import type { ProxyListen } from "@coyote/spec";
import { startSnitchProxy } from "./component.ts";
import { readListenSettings } from "./listen-settings.ts";

/** Ports free on loopback now (held together, so that they differ). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  })));
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

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

async function writeRoutes(stateDir: string, listen: ProxyListen | undefined): Promise<void> {
  await mkdir(join(stateDir, "proxy"), { recursive: true });
  const doc = { schemaVersion: 1, generatedAt: new Date().toISOString(), ...(listen ? { listen } : {}), routes: [] };
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

  it("starts with no specs/ folder at all, listens where routes.json says, and ends when the listen block moves", async () => {
    const [https, http, nextHttps, nextHttp] = await freePorts(4);
    assert.ok(https !== undefined && http !== undefined && nextHttps !== undefined && nextHttp !== undefined);
    await writeRoutes(stateDir, { host: "127.0.0.1", https, http });
    const controller = new AbortController();
    const running = await startSnitchProxy({ name: "snitch-proxy", stateDir, logger, signal: controller.signal }, { workers: 1, listenCheckMs: 50 });
    let ended: unknown;
    const ending = running.done.then(() => "resolved", (error: unknown) => (ended = error));
    try {
      assert.deepEqual(await redirectOf(http, "shop.test"), { status: 308, location: `https://shop.test:${String(https)}/x` });
      await assert.rejects(stat(join(stateDir, "specs")), /ENOENT/, "the proxy reads no spec, and makes no specs/ folder");
      // The minion moves it: the component stops and ends with an error, so that its supervisor
      // starts it again, and the new start listens on the new ports.
      await writeRoutes(stateDir, { host: "127.0.0.1", https: nextHttps, http: nextHttp });
      await Promise.race([ending, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
      assert.ok(ended instanceof Error, "done rejects when the listen block moves");
      assert.match(ended.message, new RegExp(`to 127\\.0\\.0\\.1 ports ${String(nextHttps)} \\(https\\) and ${String(nextHttp)} \\(http\\)`));
      await assert.rejects(redirectOf(http, "shop.test"), /ECONNREFUSED/);
    } finally {
      await running.stop();
    }
    const again = await startSnitchProxy({ name: "snitch-proxy", stateDir, logger, signal: controller.signal }, { workers: 1 });
    try {
      assert.deepEqual(await redirectOf(nextHttp, "shop.test"), { status: 308, location: `https://shop.test:${String(nextHttps)}/x` });
    } finally {
      await again.stop();
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
