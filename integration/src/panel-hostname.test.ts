// The panel on the box's own name: the real minion's snickers routes the server spec's hostname to
// the panel and keeps its certificate from the local CA; snitch-proxy serves it over HTTPS with
// that certificate (a client trusting only the box's CA reaches the activation page), sends plain
// HTTP there, and no service can take the name. `coyote activation` prints the URL, the token and
// the CA's fingerprint a browser shows. The panel itself listens on loopback only.
import assert from "node:assert/strict";
import { execFile, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { Minion, bundledActuators } from "@coyote/minion";
import { ProxyRoutes, StateStore, parseJson } from "@coyote/spec";
import { startProxy, type RunningProxy } from "@coyote/snitch-proxy";
import { get1, get2, peerCertificate, session2 } from "@coyote/snitch-proxy/testing";
import { freePorts, stopChild, waitFor } from "@coyote/testing";
import { startPanel } from "./support/panel.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const BOX = "box.panel.test";
const REPO = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
let root = "";
let stateDir = "";
let store: StateStore;
let proxy: RunningProxy;
let minion: Minion;
let logger: CoyoteLogger;
let proxyLogger: CoyoteLogger;
let crm: ChildProcess | undefined;
let ports = { https: 0, http: 0, panel: 0 };
let caPem = "";

const serverSpec = (activated: boolean) => ({
  schemaVersion: 1, kind: "Server", name: "box", hostname: BOX, activated, runtime: "process", ports,
});

/** A plain HTTP request to the proxy's HTTP port with `host`. */
function plainGet(host: string, path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: ports.http, path, headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** `coyote activation` on the state folder, as the admin runs it: its output. */
async function activationText(...args: string[]): Promise<string> {
  const env: Record<string, string | undefined> = { ...process.env, COYOTE_STATE: stateDir };
  delete env.NODE_OPTIONS;
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO, "packages", "cli", "src", "main.ts"), "activation", ...args], { cwd: REPO, env, timeout: 60_000, maxBuffer: 1024 * 1024 });
  return stdout;
}

/** `coyote activation --json`. */
async function activation(): Promise<{ url: string; token: string | null; caFingerprint: string | null; certificateMode: string }> {
  return JSON.parse(await activationText("--json")) as { url: string; token: string | null; caFingerprint: string | null; certificateMode: string };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-panel-hostname-"));
  stateDir = join(root, "state");
  const [https = 0, http = 0, panel = 0] = await freePorts(3);
  ports = { https, http, panel };
  store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec(serverSpec(false), { author: AUTHOR });
  proxyLogger = createLogger({ component: "snitch-proxy", file: logFileFor(stateDir, "snitch-proxy") });
  proxy = await startProxy({ stateDir, logger: proxyLogger, https: { host: "127.0.0.1", port: https }, http: { host: "127.0.0.1", port: http }, publicHttpsPort: https });
  logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  const wanted = (id: string) => id.startsWith("actuator.snickers");
  minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir).filter((a) => wanted(a.id)), debounceMs: 10, backoffInitialMs: 200 });
  await minion.start();
  crm = await startPanel(stateDir, panel, join(root, "crm.out.log"));
  // snickers writes the box's route at start and keeps the hostname's certificate from the local CA.
  await waitFor("the box's route and certificate", async () => {
    const doc = await readFile(join(stateDir, "proxy", "routes.json"), "utf8").then((text) => parseJson(ProxyRoutes, text, "routes"), () => undefined);
    const pem = await readFile(join(stateDir, "proxy", "certs", `${BOX}.pem`), "utf8").catch(() => undefined);
    return doc?.routes.some((route) => route.host === BOX) === true && pem !== undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  caPem = await readFile(join(stateDir, "proxy", "ca", "ca.pem"), "utf8");
});

after(async () => {
  if (crm) await stopChild(crm);
  await minion.stop();
  await proxy.stop(500);
  await logger.close();
  await proxyLogger.close();
  await rm(root, { recursive: true, force: true });
});

test("the box's hostname reaches the panel's activation page over HTTPS, with its certificate from the box's CA and HSTS", { timeout: 60_000 }, async () => {
  const cert = await peerCertificate(ports.https, BOX, caPem);
  assert.equal(cert.subjectaltname, `DNS:${BOX}`);
  // A browser's Host names the port; the client trusts the box's CA alone and checks the name.
  const host = `${BOX}:${String(ports.https)}`;
  const start = await waitFor("the panel through the proxy", async () => {
    const answer = await get1(ports.https, BOX, caPem, "/", { headers: { host } });
    return answer.status === 502 || answer.status === 503 ? undefined : answer;
  }, { timeoutMs: 20_000, intervalMs: 100 });
  assert.equal(start.status, 303, start.body);
  assert.equal(start.headers.location, "/activate", "a box not activated yet serves the wizard");
  assert.equal(start.headers["strict-transport-security"], "max-age=31536000");
  const page = await get1(ports.https, BOX, caPem, "/activate", { headers: { host } });
  assert.equal(page.status, 200, page.body.slice(0, 500));
  assert.match(page.body, /Activate this box/);
  assert.match(page.body, /Activation token/);
  assert.equal(page.headers["strict-transport-security"], "max-age=31536000");
  // Browsers speak HTTP/2 to the proxy: the same page.
  const session = await session2(ports.https, BOX, caPem);
  try {
    const h2 = await get2(session, "/activate", { ":authority": host });
    assert.equal(h2.status, 200);
    assert.match(h2.body, /Activate this box/);
  } finally {
    session.close();
  }
  // Without the box's CA, the certificate is not trusted: it is the box's own, not a public one.
  await assert.rejects(get1(ports.https, BOX, "", "/activate", { headers: { host } }), /self[- ]signed|unable to (get|verify)/i);
});

test("plain HTTP on the box's hostname is sent to the HTTPS URL", async () => {
  const answer = await plainGet(BOX, "/activate?step=1");
  assert.equal(answer.status, 308);
  assert.equal(answer.location, `https://${BOX}:${String(ports.https)}/activate?step=1`);
  assert.equal((await plainGet(BOX, "/")).location, `https://${BOX}:${String(ports.https)}/`);
});

test("the panel listens on loopback only", async () => {
  const { stdout } = await run("ss", ["-Hltn", `sport = :${String(ports.panel)}`]);
  const local = stdout.trim().split("\n").filter((line) => line !== "").map((line) => line.trim().split(/\s+/)[3]);
  assert.deepEqual(local, [`127.0.0.1:${String(ports.panel)}`], stdout);
});

test("no service can take the box's hostname: a customer's is refused by the store, an admin's by snickers, naming it", { timeout: 60_000 }, async () => {
  const customer = { schemaVersion: 1, kind: "Service", id: "thief", owner: { customerId: "c1", email: "c1@example.net" }, domains: [{ name: BOX }], web: { hostnames: [BOX], backend: { kind: "static", root: "." } } };
  await assert.rejects(store.applySpec(customer, { author: AUTHOR }), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, new RegExp(`${BOX.replaceAll(".", "\\.")} is the box's own name`));
    return true;
  });
  const { owner: _owner, ...admin } = customer;
  await store.applySpec({ ...admin, id: "squatter" }, { author: AUTHOR });
  const condition = await waitFor("snickers' refusal", () => {
    const web = minion.statuses.get("squatter")?.conditions.find((c) => c.type === "WebReady");
    return Promise.resolve(web?.status === "False" ? web : undefined);
  }, { timeoutMs: 30_000, intervalMs: 50 });
  assert.equal(condition.reason, "HostnameReserved");
  assert.match(condition.message, new RegExp(`^web hostname ${BOX.replaceAll(".", "\\.")} is the box's own hostname`));
  // The name still leads to the panel.
  const page = await get1(ports.https, BOX, caPem, "/activate", { headers: { host: BOX } });
  assert.equal(page.status, 200);
  assert.match(page.body, /Activate this box/);
  await store.deleteSpec("squatter", { author: AUTHOR });
});

/** An HTTPS request to `BOX` through the proxy listening at `address`:`port`, trusting the box's CA. */
function viaProxy(address: string, port: number, path: string, options: { method?: string; body?: string; headers: Record<string, string> }): Promise<{ status: number; setCookie: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: address, port, path, method: options.method ?? "GET", servername: BOX, ca: caPem, agent: false, timeout: 20_000, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers["set-cookie"] ?? [], body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${path}: no answer`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** A form of the panel as a browser without JavaScript has it, through a proxy: its CSRF cookie and hidden fields. */
async function panelForm(address: string, port: number, host: string, path: string): Promise<{ cookie: string; hidden: [string, string][] }> {
  const page = await viaProxy(address, port, path, { headers: { host } });
  assert.equal(page.status, 200, `GET ${path}`);
  const cookie = /^([^;]+)/.exec(page.setCookie[0] ?? "")?.[1] ?? "";
  const unescape = (v: string) => v.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const hidden = [...page.body.matchAll(/<input type="hidden" name="([^"]+)"(?: value="([^"]*)")?\/>/g)].map((m): [string, string] => [unescape(m[1] ?? ""), unescape(m[2] ?? "")]);
  return { cookie, hidden };
}

test("the panel counts a wrong activation token against the client's own network, as snitch-proxy vouches for it, whatever the client claims", { timeout: 60_000 }, async () => {
  // The panel made its forwarding secret at its start, after the proxy's: the proxy picks it up.
  await waitFor("the proxy to take the panel's forwarding secret", async () => {
    const log = await readFile(logFileFor(stateDir, "snitch-proxy"), "utf8").catch(() => "");
    return /"what":"panel forwarding secret"/.test(log);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  assert.ok((await stat(join(stateDir, "secrets", "panel-forwarding-token"))).isFile());
  // A second proxy on ::1: its clients come from another network than the first one's, while
  // both proxies reach the panel from 127.0.0.1.
  const six = await startProxy({ stateDir, logger: proxyLogger, https: { host: "::1", port: 0 }, writeStats: false });
  try {
    const host = `${BOX}:${String(ports.https)}`;
    const forged = { "x-coyote-forwarded-by": "forged", "x-forwarded-for": "203.0.113.7", forwarded: "for=203.0.113.8", "x-real-ip": "203.0.113.9" };
    for (const [address, port] of [["127.0.0.1", ports.https], ["::1", six.httpsAddress.port]] as const) {
      const form = await panelForm(address, port, host, "/activate");
      const body = new FormData();
      for (const [name, value] of form.hidden) body.append(name, value);
      for (const [name, value] of Object.entries({ token: "WRNG-WRNG-WRNG-WRNG-WRNG", email: "admin@example.org", password: "a long and unguessable passphrase 42", confirm: "a long and unguessable passphrase 42" })) body.append(name, value);
      const encoded = new Request("https://form.invalid/", { method: "POST", body });
      const answer = await viaProxy(address, port, "/activate", {
        method: "POST",
        body: Buffer.from(await encoded.arrayBuffer()).toString("utf8"),
        headers: { host, origin: `https://${host}`, cookie: form.cookie, "content-type": encoded.headers.get("content-type") ?? "", ...forged },
      });
      assert.match(answer.body, /not the activation token of this box/, answer.body.slice(0, 300));
    }
    const db = new DatabaseSync(join(stateDir, "crm", "crm.db"), { readOnly: true });
    try {
      const keys = db.prepare("SELECT key FROM attempts WHERE key LIKE 'activation-net:%' ORDER BY key").all().map((row) => String(row.key));
      assert.deepEqual(keys, ["activation-net:0:0:0:0::/64", "activation-net:127.0.0.1"], "one count per client network, none for what a client claimed");
    } finally {
      db.close();
    }
  } finally {
    await six.stop(500);
  }
});

test("coyote activation prints the URL, the token and the fingerprint of the CA on disk; no token once the box is activated", { timeout: 120_000 }, async () => {
  const printed = await activation();
  assert.equal(printed.url, `https://${BOX}:${String(ports.https)}/`);
  assert.equal(printed.certificateMode, "local-ca");
  const token = (await store.readSecret("activation-token"))?.toString("utf8").trim();
  assert.ok(token !== undefined, "the token is kept in secrets/");
  assert.equal(printed.token, token);
  assert.match(token, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
  const ca = new X509Certificate(caPem);
  assert.equal(printed.caFingerprint, ca.fingerprint256);
  // The CA that signed what the proxy serves on the hostname.
  const served = await peerCertificate(ports.https, BOX, caPem);
  assert.equal(served.fingerprint256 === printed.caFingerprint, false, "the CA's, not the leaf's");
  assert.ok(new X509Certificate(served.raw).checkIssued(ca));

  // What the admin reads: the same URL, token and fingerprint.
  const text = await activationText();
  for (const part of [printed.url, token, ca.fingerprint256]) assert.ok(text.includes(part), `${part} in:\n${text}`);

  await store.applySpec(serverSpec(true), { author: AUTHOR });
  const activated = await activation();
  assert.doesNotMatch(await activationText(), /token/);
  assert.equal(activated.token, null);
  assert.equal(activated.url, printed.url);
  assert.equal(activated.caFingerprint, printed.caFingerprint);
});
