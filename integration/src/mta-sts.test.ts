// MTA-STS end to end: with ACME certificates (Pebble), the real minion's dnsconf publishes a mail
// domain's `_mta-sts` id and `mta-sts` name, snickers routes the policy host to the panel and gets
// its certificate from Pebble through the proxy, and the panel (run as `coyote run coyote-crm`
// runs it) answers the policy over TLS a sender trusting the CA verifies. The id published is the
// hash of the very text served.
import assert from "node:assert/strict";
import { execFile, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startPebble, type Pebble } from "@coyote/actuator-snickers/testing";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { Minion, bundledActuators } from "@coyote/minion";
import { StateStore } from "@coyote/spec";
import { startProxy, type RunningProxy } from "@coyote/snitch-proxy";
import { get1, peerCertificate } from "@coyote/snitch-proxy/testing";
import { freePorts, stopChild } from "@coyote/testing";
import { startPanel } from "./support/panel.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
// The box's hostname inside the mail domain's zone, so that our DNS server answers the whole chain
// Pebble follows: mta-sts.post.test CNAME mx.post.test, and its address.
const BOX = "mx.post.test";
const run = promisify(execFile);
let root = "";
let pebble: Pebble;
let proxy: RunningProxy;
let minion: Minion;
let logger: CoyoteLogger;
let proxyLogger: CoyoteLogger;
let crm: ChildProcess | undefined;
let dnsPort = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-mta-sts-"));
  const stateDir = join(root, "state");
  const [dns = 0, http = 0, panel = 0] = await freePorts(3);
  dnsPort = dns;
  pebble = await startPebble(join(root, "pebble"), { httpPort: http, dnsServer: `127.0.0.1:${dnsPort}` });
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec({
    schemaVersion: 1, kind: "Server", name: "box", hostname: BOX, publicIPv4: "127.0.0.1", activated: true, runtime: "process",
    certificates: { mode: "acme", directoryUrl: pebble.directoryUrl, email: "admin@post.test", caBundleFile: pebble.tlsCaFile },
    dns: { listen: [`127.0.0.1:${dnsPort}`] },
    ports: { panel, http },
  }, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "post", domains: [{ name: "post.test" }], mail: {} }, { author: AUTHOR });
  proxyLogger = createLogger({ component: "snitch-proxy", file: logFileFor(stateDir, "snitch-proxy") });
  proxy = await startProxy({ stateDir, logger: proxyLogger, https: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: http } });
  logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  // The DNS and web actuators only: the policy needs no running mail server.
  const wanted = (id: string) => id.startsWith("actuator.dnsconf") || id.startsWith("actuator.snickers");
  minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir).filter((a) => wanted(a.id)), debounceMs: 10, backoffInitialMs: 200 });
  await minion.start();

  crm = await startPanel(stateDir, panel, join(root, "crm.out.log"));
});

after(async () => {
  if (crm) await stopChild(crm);
  await minion.stop();
  await proxy.stop(500);
  await pebble.stop();
  await logger.close();
  await proxyLogger.close();
  await rm(root, { recursive: true, force: true });
});

test("a sender finds the policy id in DNS and fetches the policy over TLS from a publicly trusted certificate", { timeout: 120_000 }, async () => {
  const deadline = Date.now() + 90_000;
  const ready = () => minion.statuses.get("post")?.conditions.find((c) => c.type === "WebReady")?.status === "True";
  while (!ready()) {
    if (Date.now() > deadline) assert.fail(`not ready: ${JSON.stringify(minion.statuses.get("post")?.conditions)}`);
    await sleep(50);
  }
  const dig = async (name: string, type: string) => (await run("kdig", ["@127.0.0.1", "-p", String(dnsPort), "+short", "+timeout=2", "+retry=0", name, type])).stdout.trim();
  const pebbleRoot = await pebble.rootPem();
  const port = proxy.httpsAddress.port;
  const cert = await peerCertificate(port, "mta-sts.post.test", pebbleRoot);
  assert.equal(cert.subjectaltname, "DNS:mta-sts.post.test");
  assert.match(String(cert.issuer.CN), /Pebble/i, "issued by the ACME CA, not the local CA");
  // Trusting only Pebble's root, as a sender trusts the public CAs.
  const answer = await get1(port, "mta-sts.post.test", pebbleRoot, "/.well-known/mta-sts.txt");
  assert.equal(answer.status, 200, answer.body);
  assert.equal(answer.headers["content-type"], "text/plain; charset=utf-8");
  assert.equal(answer.body, `version: STSv1\r\nmode: enforce\r\nmx: ${BOX}\r\nmax_age: 604800\r\n`);
  assert.equal(await dig("post.test", "MX"), `10 ${BOX}.`, "the policy's mx is what the MX record names");
  const id = createHash("sha256").update(answer.body).digest("hex").slice(0, 20);
  assert.equal(await dig("_mta-sts.post.test", "TXT"), `"v=STSv1; id=${id}"`, "the id is the hash of the text served");
  assert.equal(await dig("mta-sts.post.test", "CNAME"), `${BOX}.`);
  assert.equal(await dig("_smtp._tls.post.test", "TXT"), '"v=TLSRPTv1; rua=mailto:postmaster@post.test"');
  // Nothing else of the panel on that name.
  const other = await get1(port, "mta-sts.post.test", pebbleRoot, "/admin");
  assert.equal(other.status, 404, "the proxy routes only the policy path of that name");
  for (const path of ["/.well-known/mta-sts.txt?x=1", "/.well-known/mta-sts.txt/../../admin"]) {
    const refused = await get1(port, "mta-sts.post.test", pebbleRoot, path);
    assert.equal(refused.status, 421, `${path}: ${refused.body}`);
    assert.doesNotMatch(refused.body, /<html|__next|STSv1/i);
  }
});
