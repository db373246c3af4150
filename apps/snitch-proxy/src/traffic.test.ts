import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket, WebSocketServer } from "ws";
import { ACTIVATOR_SOCKET, type ActivityReport } from "@coyote/spec";
import { startProxy, type RunningProxy } from "./proxy.ts";
import { backend, get1, get2, peerCertificate, sandbox, session2, type Backend, type Sandbox } from "./test/support.ts";

describe("snitch-proxy under traffic", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let a: Backend;
  let b: Backend;
  let port: number;

  before(async () => {
    box = await sandbox();
    a = await backend("alpha");
    b = await backend("beta");
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, activityIntervalMs: 100, wakeTimeoutMs: 2000 });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(1000);
    await a.close();
    await b.close();
    await box.cleanup();
  });

  it("serves 100 hosts each its own certificate and its own route", async () => {
    const hosts = Array.from({ length: 100 }, (_, i) => `site${String(i)}.example.test`);
    for (const host of hosts) await box.certify(host);
    await box.routes(hosts.map((host, i) => ({ host, pathPrefix: "/", serviceId: `site${String(i)}`, upstream: { kind: "address", address: i % 2 === 0 ? a.address : b.address } })));
    await proxy.reloadRoutes();
    for (let i = 0; i < hosts.length; i += 10) {
      await Promise.all(hosts.slice(i, i + 10).map(async (host, j) => {
        const cert = await peerCertificate(port, host, box.ca.certificatePem);
        assert.equal(cert.subject.CN, host);
        const answer = await get1(port, host, box.ca.certificatePem, `/${host}`);
        assert.equal(answer.body, `${(i + j) % 2 === 0 ? "alpha" : "beta"} GET /${host} `);
      }));
    }
  });

  it("reloads routes under load without a single failed request", async () => {
    await box.certify("load.test");
    const route = (address: string, extra: number) => [
      { host: "load.test", pathPrefix: "/", serviceId: "load", upstream: { kind: "address", address } },
      ...Array.from({ length: extra }, (_, i) => ({ host: `extra${String(i)}.test`, pathPrefix: "/", serviceId: "extra", upstream: { kind: "address", address: b.address } })),
    ];
    await box.routes(route(a.address, 0));
    await proxy.reloadRoutes();
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 16, ca: box.ca.certificatePem, servername: "load.test" });
    const session = await session2(port, "load.test", box.ca.certificatePem);
    const results = { ok: 0, failed: [] as string[], bodies: new Set<string>() };
    let stop = false;
    const worker = async (h2: boolean) => {
      for (let n = 0; n < 400 && !stop; n++) {
        try {
          const answer = h2 ? await get2(session, "/x") : await get1(port, "load.test", box.ca.certificatePem, "/x", { agent: agent as unknown as false });
          if (answer.status === 200) {
            results.ok++;
            results.bodies.add(answer.body.split(" ")[0] ?? "");
          } else results.failed.push(`status ${String(answer.status)}`);
        } catch (error) {
          results.failed.push(String(error));
        }
      }
    };
    const load = Promise.all([...Array.from({ length: 12 }, () => worker(false)), ...Array.from({ length: 4 }, () => worker(true))]);
    for (let i = 0; i < 30; i++) {
      await sleep(40);
      await box.routes(route(i % 2 === 0 ? b.address : a.address, i % 7));
    }
    stop = true;
    await load;
    agent.destroy();
    session.close();
    assert.deepEqual(results.failed, [], "no request failed");
    assert.ok(results.ok > 300, `requests served: ${String(results.ok)}`);
    assert.deepEqual([...results.bodies].sort(), ["alpha", "beta"], "both upstreams served while the routes changed");
  });

  it("serves static sites: index files, 304s, HEAD, no way out of the root", async () => {
    const root = join(box.stateDir, "sites", "static");
    await mkdir(join(root, "docs"), { recursive: true });
    await writeFile(join(root, "index.html"), "<p>home</p>");
    await writeFile(join(root, "docs", "index.html"), "<p>docs</p>");
    await writeFile(join(root, "style.css"), "p{}");
    await writeFile(join(box.stateDir, "secret.txt"), "secret");
    await symlink(join(box.stateDir, "secret.txt"), join(root, "escape.txt"));
    await box.certify("static.test");
    await box.routes([{ host: "static.test", pathPrefix: "/", serviceId: "static", upstream: { kind: "static", root } }]);
    await proxy.reloadRoutes();
    const ca = box.ca.certificatePem;
    const home = await get1(port, "static.test", ca, "/");
    assert.deepEqual([home.status, home.body, home.headers["content-type"]], [200, "<p>home</p>", "text/html; charset=utf-8"]);
    assert.equal((await get1(port, "static.test", ca, "/style.css")).headers["content-type"], "text/css; charset=utf-8");
    const folder = await get1(port, "static.test", ca, "/docs");
    assert.deepEqual([folder.status, folder.headers.location], [301, "/docs/"]);
    assert.equal((await get1(port, "static.test", ca, "/docs/")).body, "<p>docs</p>");
    const etag = String(home.headers.etag);
    assert.equal((await get1(port, "static.test", ca, "/", { headers: { "if-none-match": etag } })).status, 304);
    const head = await get1(port, "static.test", ca, "/", { method: "HEAD" });
    assert.deepEqual([head.status, head.body, head.headers["content-length"]], [200, "", "11"]);
    assert.equal((await get1(port, "static.test", ca, "/", { method: "POST", body: "x" })).status, 405);
    for (const path of ["/../secret.txt", "/%2e%2e/secret.txt", "/escape.txt", "/docs/..%2f..%2fsecret.txt", "/missing.html", "/%E0%A4%A"]) {
      const answer = await get1(port, "static.test", ca, path);
      assert.equal(answer.status, 404, `${path} → ${String(answer.status)}`);
      assert.ok(!answer.body.includes("secret"), path);
    }
  });

  it("serves nothing from a site root that leads out of the service's own site folder through a symbolic link", async () => {
    // The customer controls what is in sites/<id>; a link there to / would otherwise publish secrets/.
    await mkdir(join(box.stateDir, "sites", "linked"), { recursive: true });
    await writeFile(join(box.stateDir, "outside.txt"), "outside");
    await symlink(box.stateDir, join(box.stateDir, "sites", "linked", "public"));
    await box.certify("linked.test");
    await box.routes([{ host: "linked.test", pathPrefix: "/", serviceId: "linked", upstream: { kind: "static", root: join(box.stateDir, "sites", "linked", "public") } }]);
    await proxy.reloadRoutes();
    const answer = await get1(port, "linked.test", box.ca.certificatePem, "/outside.txt");
    assert.equal(answer.status, 404);
    assert.ok(!answer.body.includes("outside"));
  });
});

describe("wake-on-request", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let activator: Server;
  let port: number;
  /** What the test activator does for the next wakes. */
  let mode: "start" | "fail" | "hang" = "start";
  let unitBackend: Backend | undefined;
  const wakes: string[] = [];
  const reports: ActivityReport[] = [];

  before(async () => {
    box = await sandbox();
    await mkdir(join(box.stateDir, "run"), { recursive: true });
    // A local server speaking docker-activator's documented wake API (packages/spec runtime.ts):
    // enough to drive the proxy's side of the contract, including the failure answers.
    activator = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { unit?: string; units?: ActivityReport["units"] };
        if (req.url === "/activity") {
          reports.push({ units: body.units ?? {} });
          res.writeHead(204).end();
          return;
        }
        wakes.push(body.unit ?? "");
        if (body.unit !== "app") {
          res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "UNIT_UNKNOWN", message: `no unit ${String(body.unit)}` } }));
          return;
        }
        if (mode === "fail") {
          res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "WAKE_FAILED", message: "unit app: the image is missing" } }));
          return;
        }
        if (mode === "hang") return;
        void (async () => {
          await sleep(150);
          unitBackend ??= await backend("app");
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ unit: "app", address: unitBackend.address, started: true, waitedMs: 150 }));
        })();
      });
    });
    await new Promise<void>((resolve) => activator.listen(join(box.stateDir, ACTIVATOR_SOCKET), resolve));
    await box.certify("app.test");
    await box.certify("ghost.test");
    await box.routes([
      { host: "app.test", pathPrefix: "/", serviceId: "app", upstream: { kind: "unit", unit: "app" } },
      { host: "ghost.test", pathPrefix: "/", serviceId: "ghost", upstream: { kind: "unit", unit: "ghost" } },
    ]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, activityIntervalMs: 100, wakeTimeoutMs: 1000 });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(500);
    activator.closeAllConnections();
    await new Promise((resolve) => activator.close(resolve));
    await unitBackend?.close();
    await box.cleanup();
  });

  it("holds concurrent first requests while the unit wakes, waking it once", async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get1(port, "app.test", box.ca.certificatePem, `/r${String(i)}`)));
    assert.deepEqual(answers.map((x) => x.status), Array.from({ length: 20 }, () => 200));
    assert.equal(answers[7]?.body, "app GET /r7 ");
    assert.deepEqual(wakes, ["app"], "one wake for twenty requests");
    // Later requests go straight to the remembered address.
    assert.equal((await get1(port, "app.test", box.ca.certificatePem)).status, 200);
    assert.equal(wakes.length, 1);
  });

  it("reports activity, and an open websocket counts as activity while it is quiet", async () => {
    const wss = new WebSocketServer({ noServer: true });
    unitBackend?.server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (m: Buffer) => ws.send(m))));
    const tlsOptions = { ca: box.ca.certificatePem, servername: "app.test", headers: { host: "app.test" } };
    const client = new WebSocket(`wss://127.0.0.1:${String(port)}/ws`, tlsOptions);
    try {
      await new Promise<void>((resolve, reject) => client.once("open", resolve).once("error", reject));
      reports.length = 0;
      await sleep(450);
      const open = reports.filter((r) => (r.units.app?.openConnections ?? 0) >= 1);
      assert.ok(open.length >= 2, `quiet but open: reported ${JSON.stringify(reports)}`);
    } finally {
      client.terminate();
      wss.close();
    }
  });

  it("wakes the unit again when its remembered address refuses connections (it was stopped)", async () => {
    await unitBackend?.close();
    unitBackend = undefined;
    wakes.length = 0;
    const answer = await get1(port, "app.test", box.ca.certificatePem, "/again");
    assert.deepEqual([answer.status, answer.body], [200, "app GET /again "]);
    assert.deepEqual(wakes, ["app"]);
  });

  it("answers 503 when the unit cannot start, 504 when it does not wake in time, and 503 for an unknown unit", async () => {
    await unitBackend?.close();
    unitBackend = undefined;
    mode = "fail";
    const failed = await get1(port, "app.test", box.ca.certificatePem);
    assert.equal(failed.status, 503);
    assert.match(failed.body, /could not be started/);
    assert.ok(!failed.body.includes("image is missing"), "the activator's reason is logged, not shown to visitors");
    mode = "hang";
    const started = Date.now();
    const slow = await get1(port, "app.test", box.ca.certificatePem);
    assert.equal(slow.status, 504);
    assert.ok(Date.now() - started < 3000);
    assert.equal((await get1(port, "ghost.test", box.ca.certificatePem)).status, 503);
    mode = "start";
  });
});
