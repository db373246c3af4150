import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { startDnsServer, type DnsServer } from "@coyote/actuator-dnsconf";
import { hashPassword } from "@coyote/actuator-mailconf";
import { createLogger, logFileFor } from "@coyote/log";
import { freeUdpPort, waitFor as waitUntil } from "@coyote/testing";
import { challengeValue, StateStore, type Condition } from "@coyote/spec";
import { bundledActuators } from "./bundled.ts";
import { delegationOf, lookupTxt, waitsOnlyForProof } from "./domain-proof.ts";
import { Minion } from "./minion.ts";

const run = promisify(execFile);
const AUTHOR = { name: "Shop", email: "shop@box.net" };
const TOKEN = "tok_0123456789abcdefghijkl";
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The status of a query (NOERROR, REFUSED ...) and its short answers, from the box's DNS server. */
async function dig(port: number, name: string, type: string): Promise<{ status: string; answers: string[] }> {
  const { stdout } = await run("kdig", ["@127.0.0.1", "-p", String(port), "+timeout=2", "+retry=0", name, type]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? "NONE";
  const answers = stdout.split("\n").filter((line) => !line.startsWith(";") && line.trim() !== "" && line.includes(`\t${type}\t`));
  return { status, answers };
}

/**
 * Writes the zone the rest of the world sees for bob.parent.net (the registrar's or the old host's
 * servers), with the given `_coyote-challenge` TXT values, and reloads the world's server.
 */
function writeZone(dir: string, zone: string, records: readonly Record<string, unknown>[]): void {
  const soa = { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, refresh: 3600, retry: 900, expire: 1209600, minimum: 60, ttl: 60 };
  writeFileSync(join(dir, `.${zone}.tmp`), JSON.stringify({ schemaVersion: 1, kind: "DnsZone", zone, owner: "world", serial: 1, soa, records }));
  renameSync(join(dir, `.${zone}.tmp`), join(dir, `${zone}.json`));
}

async function publishWorld(dir: string, server: DnsServer | undefined, serial: number, txt: readonly string[]): Promise<void> {
  const records = [
    { name: "bob.parent.net", ttl: 60, type: "NS", target: "ns.elsewhere.net" },
    ...txt.map((text) => ({ name: "_coyote-challenge.bob.parent.net", ttl: 60, type: "TXT", strings: [text] })),
  ];
  const soa = { mname: "ns.elsewhere.net", rname: "hostmaster.bob.parent.net", refresh: 3600, retry: 900, expire: 1209600, minimum: 60, ttl: 60 };
  writeZone(dir, "parent.net", [
    { name: "parent.net", ttl: 60, type: "NS", target: "ns.parent.net" },
    { name: "ns.parent.net", ttl: 60, type: "A", address: "127.0.0.1" },
    { name: "bob.parent.net", ttl: 60, type: "NS", target: "ns.elsewhere.net" },
    // carol.parent.net's owner has delegated it to this box.
    { name: "carol.parent.net", ttl: 60, type: "NS", target: "box.host.net" },
  ]);
  // Written aside and renamed in, as zone files are: the server's folder cache sees the change.
  writeFileSync(join(dir, ".bob.parent.net.tmp"), JSON.stringify({ schemaVersion: 1, kind: "DnsZone", zone: "bob.parent.net", owner: "world", serial, soa, records }));
  renameSync(join(dir, ".bob.parent.net.tmp"), join(dir, "bob.parent.net.json"));
  await server?.reload();
}

function condition(minion: Minion, type: string, id = "bob"): Condition | undefined {
  return minion.statuses.get(id)?.conditions.find((c) => c.type === type);
}

const waitFor = (what: string, check: () => boolean): Promise<boolean> => waitUntil(what, check, { timeoutMs: 20_000, intervalMs: 20 });

/** The domains Postfix takes mail for (its virtual_mailbox_domains map). */
function mailDomains(stateDir: string): string[] {
  const file = join(stateDir, "mail", "postfix", "conf", "virtual_domains");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").map((line) => line.split(/\s/)[0] ?? "").filter((name) => name !== "" && !name.startsWith("#"));
}

function routedHosts(stateDir: string): string[] {
  const file = join(stateDir, "proxy", "routes.json");
  if (!existsSync(file)) return [];
  const routes = JSON.parse(readFileSync(file, "utf8")) as { routes?: { host: string }[] };
  return (routes.routes ?? []).map((r) => r.host);
}

test("only a service that waits for nothing but its domain's proof is spared the converge alarm", () => {
  const c = (type: string, status: "True" | "False" | "Unknown") => ({ type, status });
  assert.equal(waitsOnlyForProof([c("SpecValid", "True"), c("DomainVerified", "False"), c("DnsReady", "True"), c("Ready", "False")]), true);
  assert.equal(waitsOnlyForProof([c("DomainVerified", "False"), c("DnsReady", "False"), c("Ready", "False")]), false, "another failure still alarms");
  assert.equal(waitsOnlyForProof([c("Ready", "Unknown")]), false, "a first reconcile that never ends still alarms");
});

test("lookupTxt asks the configured resolver over UDP and tells a missing record from a failed lookup", { timeout: 20_000 }, async () => {
  const worldDir = mkdtempSync(join(tmpdir(), "coyote-world-"));
  dirs.push(worldDir);
  await publishWorld(worldDir, undefined, 1, ["v=other", challengeValue(TOKEN)]);
  const logger = createLogger({ component: "world-dns", file: logFileFor(worldDir, "world") });
  const world = await startDnsServer({ listen: ["127.0.0.1:0"], zonesDir: worldDir, logger });
  cleanups.push(() => world.stop());
  const address = `127.0.0.1:${world.addresses[0]?.port ?? 0}`;
  assert.deepEqual(await lookupTxt("_coyote-challenge.bob.parent.net", address), { values: ["v=other", challengeValue(TOKEN)] });
  assert.deepEqual(await lookupTxt("_coyote-challenge.nothing.bob.parent.net", address), { values: [] });
  // The world's server refuses a zone it does not hold; a silent port times out within the deadline.
  assert.ok("error" in (await lookupTxt("_coyote-challenge.carol.org", address)));
  // A server that reads queries and never answers.
  const silent = createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const started = Date.now();
  assert.ok("error" in (await lookupTxt("_coyote-challenge.bob.parent.net", `127.0.0.1:${silent.address().port}`, 300)));
  assert.ok(Date.now() - started < 2000, "the lookup gives up at its deadline");
  // The delegation walk has one deadline for all its lookups.
  const walk = Date.now();
  assert.ok("error" in (await delegationOf("bob.parent.net", `127.0.0.1:${silent.address().port}`, 53, 500)));
  assert.ok(Date.now() - walk < 1500, "the delegation walk gives up at its deadline");
});

test("a customer's own domain gets no zone, route or certificate until its TXT proof appears in the world's DNS", { timeout: 90_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-proof-"));
  const worldDir = mkdtempSync(join(tmpdir(), "coyote-world-"));
  dirs.push(stateDir, worldDir);
  mkdirSync(join(stateDir, "logs"), { recursive: true });
  await publishWorld(worldDir, undefined, 1, []);
  const worldLogger = createLogger({ component: "world-dns", file: logFileFor(worldDir, "world") });
  const world = await startDnsServer({ listen: ["127.0.0.1:0"], zonesDir: worldDir, logger: worldLogger });
  cleanups.push(() => world.stop());
  const boxPort = await freeUdpPort();

  const store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec({
    schemaVersion: 1, kind: "Server", name: "box", hostname: "box.host.net", customerDomain: "box.net", publicIPv4: "192.0.2.7",
    dns: { listen: [`127.0.0.1:${boxPort}`], resolver: `127.0.0.1:${world.addresses[0]?.port ?? 0}` },
  }, { author: AUTHOR });
  await store.applySpec({
    schemaVersion: 1, kind: "Service", id: "bob", owner: { customerId: "u-bob", email: "bob@mail.net" },
    domains: [{ name: "bob.parent.net", challenge: TOKEN }],
    mail: { mailboxes: [{ address: "bob@bob.parent.net", passwordHash: await hashPassword("correct horse battery") }] },
    web: { hostnames: ["bob.parent.net", "www.bob.parent.net"], backend: { kind: "upstream", address: "127.0.0.1:9" } },
  }, { author: AUTHOR });

  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "carol", owner: { customerId: "u-carol", email: "carol@mail.net" }, domains: [{ name: "carol.parent.net" }] }, { author: AUTHOR });

  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  // Real Postfix maps (when Postfix is installed), and no daemon running them: what is asked
  // here is what the proof holds back. No XMPP here.
  const missing = { postfix: "/usr/sbin/postfix", prosodyctl: join(stateDir, "no-prosodyctl"), verifyDaemons: false };
  const minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir, missing), debounceMs: 10, backoffInitialMs: 50, backoffMaxMs: 300, convergeDeadlineMs: 5000, authoritativeDnsPort: world.addresses[0]?.port ?? 0 });
  cleanups.push(async () => {
    await minion.stop();
    await logger.close();
  });
  await minion.start();

  await waitFor("DomainVerified False", () => condition(minion, "DomainVerified")?.status === "False");
  const unverified = condition(minion, "DomainVerified");
  assert.equal(unverified?.reason, "DomainUnverified");
  assert.equal(unverified.message, `bob.parent.net is not proven yet: set a TXT record _coyote-challenge.bob.parent.net with the value "${challengeValue(TOKEN)}", or delegate it to the name server box.host.net (last look: TXT: no such record; NS: delegated to ns.elsewhere.net)`);
  assert.equal(condition(minion, "Ready")?.status, "False");
  // Nothing is served for it: the box refuses the zone, no route, no certificate.
  assert.equal((await dig(boxPort, "bob.parent.net", "SOA")).status, "REFUSED");
  assert.ok(!existsSync(join(stateDir, "dns", "zones", "bob.parent.net.json")), "no zone file");
  assert.deepEqual(routedHosts(stateDir).filter((h) => h.endsWith("bob.parent.net")), [], "no route");
  assert.deepEqual(mailDomains(stateDir), [], "no mail domain");

  // A domain delegated to this box by its parent zone is proven by that, without any token.
  await waitFor("carol Ready", () => condition(minion, "Ready", "carol")?.status === "True");
  assert.equal((await dig(boxPort, "carol.parent.net", "SOA")).status, "NOERROR");
  const carol = JSON.parse(readFileSync(join(stateDir, "domains", "carol.json"), "utf8")) as { proven: { name: string; method: string }[] };
  assert.deepEqual(carol.proven.map((p) => [p.name, p.method]), [["carol.parent.net", "ns"]]);

  // Waiting for the customer's proof is not the box failing to converge: no alarm past the deadline
  // (counted from Ready's last flip, at the end of the first reconcile).
  const flipped = Date.parse(condition(minion, "Ready")?.lastTransitionTime ?? "");
  await sleep(Math.max(0, flipped + 6500 - Date.now()));
  const alarms = await store.readAlarms();
  assert.deepEqual(alarms.alarms.filter((a) => a.serviceId === "bob").map((a) => a.code), [], JSON.stringify(minion.statuses.get("bob")?.conditions));

  // A wrong value is named in the status as what was seen.
  await publishWorld(worldDir, world, 2, ["coyote-domain-proof=not-the-token-at-all"]);
  await waitFor("the wrong value in the status", () => condition(minion, "DomainVerified")?.message.includes('found "coyote-domain-proof=not-the-token-at-all"') === true);
  assert.equal((await dig(boxPort, "bob.parent.net", "SOA")).status, "REFUSED");

  await publishWorld(worldDir, world, 3, [challengeValue(TOKEN)]);
  await waitFor("Ready", () => condition(minion, "Ready")?.status === "True");
  assert.equal(condition(minion, "DomainVerified")?.status, "True");
  const soa = await dig(boxPort, "bob.parent.net", "SOA");
  assert.equal(soa.status, "NOERROR");
  assert.equal(soa.answers.length, 1);
  // The site's names, and the autoconfig name mail apps ask (a host may have several routes).
  assert.deepEqual([...new Set(routedHosts(stateDir).filter((h) => h.endsWith("bob.parent.net")))].sort(), ["autoconfig.bob.parent.net", "bob.parent.net", "www.bob.parent.net"]);
  assert.deepEqual(mailDomains(stateDir), ["bob.parent.net"], "mail accepted for it");
  const record = JSON.parse(readFileSync(join(stateDir, "domains", "bob.json"), "utf8")) as { proven: { name: string; token: string }[] };
  assert.deepEqual(record.proven.map((p) => [p.name, p.token]), [["bob.parent.net", TOKEN]]);

  // Once proven, the proof stays while the domain and its token stay in the spec: the record may go.
  await publishWorld(worldDir, world, 4, []);
  await minion.resync();
  await sleep(300);
  assert.equal(condition(minion, "DomainVerified")?.status, "True");
  assert.equal((await dig(boxPort, "bob.parent.net", "SOA")).status, "NOERROR");
});
