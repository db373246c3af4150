import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startPebble, type Pebble } from "@coyote/actuator-snickers/testing";
import { freePort } from "@coyote/testing";
import { createLogger, logFileFor, type CoyoteLogger } from "@coyote/log";
import { Minion, bundledActuators } from "@coyote/minion";
import { StateStore } from "@coyote/spec";
import { startProxy, type RunningProxy } from "@coyote/snitch-proxy";
import { backend, get1, peerCertificate, type Backend } from "@coyote/snitch-proxy/testing";

const AUTHOR = { name: "Test", email: "test@example.org" };
let root: string;
let pebble: Pebble;
let proxy: RunningProxy;
let minion: Minion;
let site: Backend;
let logger: CoyoteLogger;
let proxyLogger: CoyoteLogger;
let dnsPort: number;
const run = promisify(execFile);

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-acme-"));
  const stateDir = join(root, "state");
  dnsPort = await freePort();
  const httpPort = await freePort();
  pebble = await startPebble(join(root, "pebble"), { httpPort, dnsServer: `127.0.0.1:${dnsPort}` });
  site = await backend("shop");
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec({
    schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", publicIPv4: "127.0.0.1", activated: true,
    certificates: { mode: "acme", directoryUrl: pebble.directoryUrl, email: "admin@box.test", caBundleFile: pebble.tlsCaFile },
    dns: { listen: [`127.0.0.1:${dnsPort}`] },
  }, { author: AUTHOR });
  for (const [id, domain, hostname] of [["shop", "shop.test", "shop.test"], ["blog", "blog.test", "blog.test"], ["wild", "wild.test", "*.wild.test"]] as const) {
    await store.applySpec({ schemaVersion: 1, kind: "Service", id, domains: [{ name: domain }], web: { hostnames: [hostname], backend: { kind: "upstream", address: site.address } } }, { author: AUTHOR });
  }
  proxyLogger = createLogger({ component: "snitch-proxy", file: logFileFor(stateDir, "snitch-proxy") });
  proxy = await startProxy({ stateDir, logger: proxyLogger, https: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: httpPort } });
  logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir), debounceMs: 10, backoffInitialMs: 200 });
  await minion.start();
});

after(async () => {
  await minion.stop();
  await proxy.stop(500);
  await site.close();
  await pebble.stop();
  await logger.close();
  await proxyLogger.close();
  await rm(root, { recursive: true, force: true });
});

test("certificates come from Pebble over HTTP-01 through the proxy and, for a wildcard, DNS-01 through our own DNS server, and are served by SNI", { timeout: 90_000 }, async () => {
  const deadline = Date.now() + 60_000;
  const ready = (id: string) => minion.statuses.get(id)?.conditions.find((c) => c.type === "WebReady")?.status === "True";
  while (!ready("shop") || !ready("blog") || !ready("wild")) {
    if (Date.now() > deadline) assert.fail(`not ready: ${JSON.stringify(["shop", "blog", "wild"].map((id) => minion.statuses.get(id)?.conditions))}`);
    await sleep(50);
  }
  const pebbleRoot = await pebble.rootPem();
  const port = proxy.httpsAddress.port;
  const shop = await peerCertificate(port, "shop.test", pebbleRoot);
  const blog = await peerCertificate(port, "blog.test", pebbleRoot);
  assert.equal(shop.subjectaltname, "DNS:shop.test");
  assert.equal(blog.subjectaltname, "DNS:blog.test");
  assert.notEqual(shop.serialNumber, blog.serialNumber);
  assert.match(String(shop.issuer.CN), /Pebble/i, "issued by Pebble, not the local CA");
  // Trusting only Pebble's root: the chain served verifies.
  const answer = await get1(port, "shop.test", pebbleRoot, "/hello");
  assert.deepEqual([answer.status, answer.body], [200, "shop GET /hello "]);
  const stateDir = join(root, "state");
  assert.equal((await stat(join(stateDir, "proxy", "certs", "shop.test.pem"))).mode & 0o777, 0o600);
  assert.equal((await stat(join(stateDir, "proxy", "certs"))).mode & 0o777, 0o700);
  // The wildcard came over DNS-01: Pebble read the challenge from our own DNS server.
  const wild = await peerCertificate(port, "anything.wild.test", pebbleRoot);
  assert.equal(wild.subjectaltname, "DNS:*.wild.test");
  const wildAnswer = await get1(port, "anything.wild.test", pebbleRoot, "/w");
  assert.deepEqual([wildAnswer.status, wildAnswer.body], [200, "shop GET /w "]);
  assert.equal((await stat(join(stateDir, "proxy", "certs", "_.wild.test.pem"))).mode & 0o777, 0o600);
  // Our DNS answers every name under the wildcard with the box's address, and the challenge is gone.
  const dig = async (name: string, type: string) => (await run("kdig", ["@127.0.0.1", "-p", String(dnsPort), "+short", "+timeout=2", "+retry=0", name, type])).stdout.trim();
  assert.equal(await dig("anything.wild.test", "A"), "127.0.0.1");
  assert.equal(await dig("_acme-challenge.wild.test", "TXT"), "");
  const leaf = new X509Certificate(shop.raw);
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1", "an ECDSA P-256 key");
});
