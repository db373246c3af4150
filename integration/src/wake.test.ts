import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocket } from "ws";
import { freePort } from "@coyote/testing";
import { PROCESSES_FILE, startActivator, type RunningActivator } from "@coyote/docker-activator";
import { BUSYBOX, TEST_IMAGE, importBusyboxImage, missingTools, startDockerd, type Dockerd } from "@coyote/docker-activator/testing";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { StateStore, writeFileAtomic } from "@coyote/spec";
import { startProxy, type RunningProxy } from "@coyote/snitch-proxy";
import { get1, sandbox, type Sandbox } from "@coyote/snitch-proxy/testing";

// The unit: a small HTTP and websocket echo server that notes every start in a file, so the test
// can count starts. It runs on the activator's `process` runtime (the embedded default).
const APP = `
const http = require("node:http");
const fs = require("node:fs");
fs.appendFileSync(process.env.STARTS_FILE, "start\\n");
const server = http.createServer((req, res) => res.end("app " + req.url));
server.on("upgrade", (req, socket) => {
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: " +
    require("node:crypto").createHash("sha1").update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64") + "\\r\\n\\r\\n");
  socket.on("data", () => undefined);
});
server.listen(Number(process.env.PORT), process.env.HOST);
process.on("SIGTERM", () => process.exit(0));
`;

describe("wake-on-request with the real docker-activator (process runtime)", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let activator: RunningActivator;
  let activatorLogger: CoyoteLogger;
  let port: number;
  let startsFile: string;
  let appDir: string;

  before(async () => {
    box = await sandbox();
    // The unit runs as an unprivileged user with no access to the state folder: its program and
    // the file it notes its starts in live in a folder of their own.
    appDir = await mkdtemp(join(tmpdir(), "wake-app-"));
    await chmod(appDir, 0o755);
    startsFile = join(appDir, "starts");
    await writeFile(startsFile, "");
    await chmod(startsFile, 0o666);
    await writeFile(join(appDir, "app.cjs"), APP, { mode: 0o644 });
    const appPort = await freePort();
    await mkdir(join(box.stateDir, "activator"), { recursive: true });
    await writeFileAtomic(join(box.stateDir, "activator", "units.json"), JSON.stringify({
      schemaVersion: 1,
      generatedAt: new Date().toISOString(),
      units: [{
        id: "app", serviceId: "app", runtime: "process", command: [process.execPath, join(appDir, "app.cjs")],
        port: appPort, env: { STARTS_FILE: startsFile, PORT: String(appPort) }, memoryMb: 64, idleTimeoutSeconds: 1,
        dumpTimeoutSeconds: 5, readiness: { kind: "http", path: "/" }, readinessTimeoutSeconds: 10,
      }],
    }));
    const store = await StateStore.open(box.stateDir, { author: { name: "Test", email: "test@example.org" } });
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", runtime: "process" }, { author: { name: "Test", email: "test@example.org" } });
    activatorLogger = createLogger({ component: "docker-activator", file: logFileFor(box.stateDir, "docker-activator") });
    activator = await startActivator({ name: "docker-activator", stateDir: box.stateDir, logger: activatorLogger, signal: new AbortController().signal }, { dockerSocket: join(box.stateDir, "no-docker.sock"), tickMs: 100, pollMs: 100, activityStaleMs: 1500 });
    await box.certify("app.test");
    await box.routes([{ host: "app.test", pathPrefix: "/", serviceId: "app", upstream: { kind: "unit", unit: "app" } }]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, activityIntervalMs: 200, accessLog: false });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(500);
    await activator.stop();
    // Process units outlive the activator (a restarted one adopts them): the test stops its own,
    // by the process groups the runtime recorded.
    const recorded = await readFile(join(box.stateDir, PROCESSES_FILE), "utf8").catch(() => "");
    if (recorded !== "") {
      for (const { pid } of Object.values((JSON.parse(recorded) as { processes: Record<string, { pid: number }> }).processes)) {
        try {
          process.kill(-pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    }
    await activatorLogger.close();
    await box.cleanup();
    await rm(appDir, { recursive: true, force: true });
  });

  const starts = async () => (await readFile(startsFile, "utf8")).split("\n").filter(Boolean).length;

  it("answers 50 concurrent first requests to a sleeping unit after one start", async () => {
    assert.equal(await starts(), 0, "the unit sleeps until asked");
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => get1(port, "app.test", box.ca.certificatePem, `/n${String(i)}`)));
    assert.deepEqual(answers.map((a) => a.status), Array.from({ length: 50 }, () => 200));
    assert.equal(answers[42]?.body, "app /n42");
    assert.equal(await starts(), 1, "one start for fifty first requests");
  });

  it("keeps a unit awake while a websocket is open through the proxy, and lets it sleep after", async () => {
    const tlsOptions = { ca: box.ca.certificatePem, servername: "app.test", headers: { host: "app.test" } };
    const client = new WebSocket(`wss://127.0.0.1:${String(port)}/ws`, tlsOptions);
    await new Promise<void>((resolve, reject) => client.once("open", resolve).once("error", reject));
    const before = await starts();
    // Quiet for three times the idle timeout: only the open connection says the unit is in use.
    await sleep(3000);
    assert.equal(client.readyState, WebSocket.OPEN, "the websocket survived");
    client.terminate();
    // Closed: the unit goes to sleep within its idle timeout (plus the report and check intervals).
    let asleep = false;
    for (let i = 0; i < 60 && !asleep; i++) {
      await sleep(100);
      asleep = activator.activator.stats().app?.state === "stopped";
    }
    assert.ok(asleep, "stopped once idle");
    const again = await get1(port, "app.test", box.ca.certificatePem, "/back");
    assert.equal(again.body, "app /back");
    assert.equal(await starts(), before + 1, "woken again by the next request");
  });
});

describe("wake-on-request with the real docker-activator (Docker engine)", () => {
  let box: Sandbox;
  let proxy: RunningProxy;
  let activator: RunningActivator;
  let activatorLogger: CoyoteLogger;
  let dockerd: Dockerd;
  let port: number;

  before(async () => {
    const missing = missingTools(["/usr/sbin/dockerd", BUSYBOX]);
    if (missing !== undefined) throw new Error(`wake through the proxy on Docker: ${missing}`);
    box = await sandbox();
    dockerd = await startDockerd("proxy");
    await importBusyboxImage(dockerd);
    const appPort = await freePort();
    const store = await StateStore.open(box.stateDir, { author: { name: "Test", email: "test@example.org" } });
    await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", runtime: "docker" }, { author: { name: "Test", email: "test@example.org" } });
    await mkdir(join(box.stateDir, "activator"), { recursive: true });
    await writeFileAtomic(join(box.stateDir, "activator", "units.json"), JSON.stringify({
      schemaVersion: 1,
      generatedAt: new Date().toISOString(),
      units: [{
        id: "web", serviceId: "web", runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${String(appPort)}`, "-h", "/www"],
        port: appPort, memoryMb: 64, idleTimeoutSeconds: 60, dumpTimeoutSeconds: 5, readiness: { kind: "http", path: "/" }, readinessTimeoutSeconds: 30,
      }],
    }));
    activatorLogger = createLogger({ component: "docker-activator", file: logFileFor(box.stateDir, "docker-activator") });
    activator = await startActivator({ name: "docker-activator", stateDir: box.stateDir, logger: activatorLogger, signal: new AbortController().signal }, { dockerSocket: dockerd.socketPath, tickMs: 100, pollMs: 100 });
    await box.certify("web.test");
    await box.routes([{ host: "web.test", pathPrefix: "/", serviceId: "web", upstream: { kind: "unit", unit: "web" } }]);
    proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, accessLog: false });
    port = proxy.httpsAddress.port;
  });

  after(async () => {
    await proxy.stop(500);
    await activator.stop();
    await activatorLogger.close();
    await dockerd.stop();
    await box.cleanup();
  });

  it("answers 50 concurrent first requests to a stopped container after one start", async () => {
    // The activator makes the unit's container, stopped, once it has read units.json.
    let states: string[] = [];
    for (let i = 0; i < 300 && states.length === 0; i++) {
      states = (await dockerd.docker.listContainers({ all: true, filters: { label: ["coyote.unit=web"] } })).map((c) => c.State);
      if (states.length === 0) await sleep(100);
    }
    assert.deepEqual(states, ["created"], "the container was made, stopped");
    const answers = await Promise.all(Array.from({ length: 50 }, () => get1(port, "web.test", box.ca.certificatePem, "/")));
    assert.deepEqual(answers.map((a) => a.status), Array.from({ length: 50 }, () => 200));
    assert.equal(answers[0]?.body, "hello from a coyote unit\n");
    assert.equal(activator.activator.stats().web?.wakeCount, 1, "one start for fifty first requests");
  });
});
