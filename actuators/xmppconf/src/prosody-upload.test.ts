// File sharing (XEP-0363) on a real Prosody 0.12 as the box runs it: TLS required with the
// certificates issued for its VirtualHosts, its HTTP server on a loopback port, which the box's
// proxy would reach with the upload name as Host. Started here on loopback ports; stopped by its pid.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { after, before, describe, it } from "node:test";
import { commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { grantPassage } from "@coyote/component";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { certificateFileName, proxyRuntimePaths, ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { xml, type Client } from "@xmpp/client";
import { CONSOLE_LOG, createXmppActuator, prosodyFileOwner, scramSha1Credentials, type XmppActuator, type XmppActuatorOptions } from "./index.ts";
import { makeTestCa } from "./test/ca.ts";
import { freePort, login, startProsody, type RunningProsody } from "./test/prosody.ts";

const hasProsody = spawnSync("sh", ["-c", "command -v prosody && command -v prosodyctl && command -v openssl"]).status === 0;
const NS = "urn:xmpp:http:upload:0";

/** One HTTP exchange with Prosody's loopback port, as the proxy makes it: a deadline and a size cap. */
async function http(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > 4 * 1024 * 1024) req.destroy(new Error("answer over 4 MB"));
        else chunks.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

interface Slot {
  readonly put: string;
  readonly get: string;
  readonly headers: Record<string, string>;
}

/** Asks the upload service for a slot; the error condition when it refuses. */
async function requestSlot(client: Client, to: string, filename: string, size: number): Promise<Slot | string> {
  try {
    const answer = await client.iqCaller.request(xml("iq", { type: "get", to }, xml("request", { xmlns: NS, filename, size: String(size), "content-type": "text/plain" })), 10_000);
    const slot = answer.getChild("slot", NS) ?? answer;
    const put = slot.getChild("put");
    const get = slot.getChild("get");
    const headers: Record<string, string> = {};
    for (const header of put?.getChildren("header") ?? []) headers[header.attrs.name ?? ""] = header.text();
    return { put: put?.attrs.url ?? "", get: get?.attrs.url ?? "", headers };
  } catch (error) {
    const condition = (error as { condition?: unknown }).condition;
    return typeof condition === "string" ? condition : String(error);
  }
}

describe("prosody sharing files over HTTP upload, as the box runs it", { skip: !hasProsody && process.env.CI !== "true" ? "prosody or openssl is not installed (SKIPPED LOUDLY: install the Debian packages prosody and openssl)" : false }, () => {
  let root: string;
  let stateDir: string;
  let actuator: XmppActuator;
  let options: XmppActuatorOptions;
  let context: ActuatorContext;
  let logger: CoyoteLogger;
  let prosody: RunningProsody | undefined;
  let c2sPort: number;
  let httpPort: number;
  const owner = prosodyFileOwner();
  const clients: Client[] = [];
  const password = "alice-secret";
  const users = [{ username: "alice", domain: "example.org", passwordHash: scramSha1Credentials(password) }];
  const plain: Target = { id: "alpha", spec: ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "alpha", domains: [{ name: "example.org" }], xmpp: { users } }) };
  const sharing: Target = { id: "alpha", spec: ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "alpha", domains: [{ name: "example.org" }], xmpp: { users, fileSharing: true, fileSizeLimitMb: 1 } }) };

  before(async () => {
    if (!hasProsody) throw new Error("prosody, prosodyctl and openssl are required with CI=true (tooling/system-deps.json)");
    root = await mkdtemp(join(tmpdir(), "coyote-xmpp-upload-"));
    await chmod(root, 0o755);
    stateDir = join(root, "state");
    c2sPort = await freePort();
    httpPort = await freePort();
    const xmppDir = join(stateDir, "xmpp");
    options = {
      stateDir,
      configDir: join(xmppDir, "prosody"),
      dataDir: join(xmppDir, "data"),
      c2sPorts: [c2sPort],
      s2sPorts: [await freePort()],
      interfaces: ["127.0.0.1"],
      httpPort,
      pidFile: join(xmppDir, "data", "prosody.pid"),
      logFile: CONSOLE_LOG,
      logLevel: "debug",
      verifyProsody: true,
      ...(owner === undefined ? {} : { fileOwner: owner }),
    };
    actuator = createXmppActuator(options);
    logger = createLogger({ component: "xmppconf-test", file: join(root, "coyote.log") });
    const store = await StateStore.open(stateDir);
    if (owner !== undefined) await grantPassage(stateDir, ["prosody"]);
    const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.net" });
    context = { stateDir, store, logger, signal: new AbortController().signal, server };
    const ca = await makeTestCa(join(root, "ca"));
    await ca.issue("example.org", join(proxyRuntimePaths(stateDir).certs, certificateFileName("example.org")));
    setDefaultCACertificates([...getCACertificates("default"), ca.certificate]);
    await converge(actuator, plain, context);
    await commitActuator(actuator, context);
    const output = join(root, "prosody.out");
    prosody = await startProsody({ configFile: actuator.configFile, outputFile: output, logFile: output, c2sPort, adminSocket: join(options.dataDir, "prosody.sock"), ...(owner === undefined ? {} : { user: owner }) });
  });

  after(async () => {
    for (const c of clients) await c.stop().catch(() => undefined);
    await prosody?.stop();
    setDefaultCACertificates(getCACertificates("bundled"));
    await logger.close();
    await rm(root, { recursive: true, force: true });
  });

  async function alice(): Promise<Client> {
    const result = await login(c2sPort, "example.org", "alice", password);
    assert.ok(result.ok, `alice logs in: ${result.ok ? "" : result.error}`);
    clients.push(result.client);
    return result.client;
  }

  it("opens no HTTP port and offers no upload service while no service shares files", async () => {
    const { requeue } = await converge(actuator, plain, context);
    assert.equal(requeue, undefined, requeue?.message);
    assert.equal(await accepts(httpPort), false, "prosody's HTTP port stays closed");
    const slot = await requestSlot(await alice(), "upload.example.org", "a.txt", 5);
    assert.equal(typeof slot, "string", "no slot without file sharing");
  });

  it("serves file sharing once the spec asks, and XmppReady waits for the upload service", async () => {
    const first = await converge(actuator, sharing, context);
    assert.ok(first.plan.describe.some((line) => line.includes("rewrite VirtualHost example.org")), first.plan.describe.join("; "));
    await commitActuator(actuator, context);
    const { requeue, changed } = await converge(actuator, sharing, context);
    assert.equal(requeue, undefined, requeue?.message);
    assert.equal(changed, false);
    assert.equal(await accepts(httpPort), true, "prosody's HTTP port opens on loopback");
  });

  it("gives a slot whose PUT stores the file and whose GET returns it, through the upload name", async () => {
    const client = await alice();
    const slot = await requestSlot(client, "upload.example.org", "hello.txt", 11);
    assert.ok(typeof slot !== "string", `a slot is given: ${typeof slot === "string" ? slot : ""}`);
    // The address names snitch-proxy's HTTPS port (the server spec's ports.https, 8443 by default).
    assert.match(slot.put, /^https:\/\/upload\.example\.org:8443\/file_share\/[^/]+\/hello\.txt$/);
    assert.equal(slot.get, slot.put);
    const path = new URL(slot.put).pathname;
    const body = Buffer.from("hello world");
    // As snitch-proxy passes it on: the Host the client sent, port included.
    const host = { Host: "upload.example.org:8443" };
    const put = await http(httpPort, "PUT", path, { ...host, ...slot.headers, "Content-Type": "text/plain", "Content-Length": String(body.length) }, body);
    assert.equal(put.status, 201, put.body.toString());
    const get = await http(httpPort, "GET", new URL(slot.get).pathname, host);
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, body);
    const forged = await http(httpPort, "PUT", path.replace("hello.txt", "other.txt"), { ...host, "Content-Type": "text/plain", "Content-Length": "5" }, Buffer.from("other"));
    assert.ok(forged.status >= 400, `a PUT without the slot's authorization is refused (${forged.status})`);
  });

  it("refuses a slot for a file over the size limit", async () => {
    const client = await alice();
    const over = await requestSlot(client, "upload.example.org", "big.bin", 1024 * 1024 + 1);
    assert.equal(over, "not-acceptable", "over the 1 MB limit");
    const at = await requestSlot(client, "upload.example.org", "fits.bin", 1024 * 1024);
    assert.equal(typeof at, "object", "a file of exactly the limit fits");
  });
});
