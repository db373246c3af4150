// The built-in backend end to end: the actuator writes JSON zone files, its own server (started
// through `start`) answers kdig on a loopback port over UDP and TCP.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ActuatorError, commitActuator, converge } from "@coyote/actuator";
import type { Target } from "@coyote/actuator";
import { encode } from "dns-packet";
import { createDnsActuator, dkimFilePath } from "./index.ts";
import type { DnsActuator } from "./index.ts";
import {
  assertServesSite,
  countEvents,
  DKIM_TXT,
  freePort,
  kdig,
  requireProgram,
  servedSerial,
  serverSpec,
  serviceSpec,
  siteSpec,
  skipWithout,
  tempDir,
  testContext,
} from "./test/support.ts";

const skip = skipWithout("kdig");

describe("builtin backend", { skip }, () => {
  let cleanup: (() => Promise<void>) | undefined;
  let stop: (() => Promise<void>) | undefined;
  let stateDir = "";
  let port = 0;
  let actuator: DnsActuator;
  let context: Awaited<ReturnType<typeof testContext>>;

  const zoneFile = (zone: string) => join(stateDir, "dns", "zones", `${zone}.json`);
  const reconcile = async (target: Target) => {
    const result = await converge(actuator, target, context);
    if (result.changed) await commitActuator(actuator, context);
    return result;
  };
  const reloads = () => countEvents(context.logFile, "CONFIG_RELOADED", "zones");

  before(async () => {
    requireProgram("kdig");
    const temp = await tempDir();
    cleanup = temp.cleanup;
    stateDir = temp.dir;
    port = await freePort();
    context = await testContext(stateDir, serverSpec({ dns: { backend: "builtin", listen: [`127.0.0.1:${port}`] } }));
    stateDir = context.stateDir;
    actuator = createDnsActuator({ stateDir, backend: "builtin" });
    assert.equal(actuator.id, "actuator.dnsconf.builtin");
    assert.equal(actuator.condition, "DnsReady");
    await mkdir(join(stateDir, "mail", "dkim"), { recursive: true });
    await writeFile(dkimFilePath(stateDir, "example.org"), JSON.stringify({ selector: "coyote", txt: DKIM_TXT }));
    const handle = await actuator.start?.(context);
    stop = handle === undefined ? undefined : () => handle.stop();
  });

  after(async () => {
    await stop?.();
    await context.logger.close();
    await cleanup?.();
  });

  test("serves exactly the records the spec asks for, authoritatively, over UDP and TCP", async () => {
    const { changed, plan } = await reconcile({ id: "site", spec: siteSpec() });
    assert.equal(changed, true);
    assert.deepEqual(plan.describe, ["write zone example.org (serial 1)"]);
    await assertServesSite(port, 1);
    await assertServesSite(port, 1, true);
  });

  test("NXDOMAIN and NODATA with the SOA, REFUSED outside the zones, CNAMEs, ANY", async () => {
    const nx = await kdig(port, "nothing.example.org", "A");
    assert.equal(nx.rcode, 3);
    assert.equal(nx.aa, true);
    assert.deepEqual(nx.authority.map((r) => r.type), ["SOA"]);
    const alias = await kdig(port, "blog.example.org", "TXT", { tcp: true });
    assert.equal(alias.rcode, 0);
    assert.deepEqual(alias.answer.map((r) => `${r.type} ${r.data}`), ["CNAME blogs.example.net."], "the CNAME, not followed out of the zone");
    const wwwTxt = await kdig(port, "www.example.org", "TXT");
    assert.equal(wwwTxt.rcode, 0);
    assert.equal(wwwTxt.answer.length, 0);
    assert.deepEqual(wwwTxt.authority.map((r) => r.type), ["SOA"]);
    const refused = await kdig(port, "example.com", "A");
    assert.equal(refused.rcode, 5);
    assert.equal(refused.aa, false);
    const fits = await kdig(port, "coyote._domainkey.example.org", "TXT", { noedns: true });
    assert.equal(fits.tc, false, "a 460-byte answer fits in 512");
    assert.equal(fits.answer.length, 1);
    const any = await kdig(port, "example.org", "ANY", { tcp: true });
    assert.deepEqual([...new Set(any.answer.map((r) => r.type))].sort(), ["A", "AAAA", "CAA", "MX", "NS", "SOA", "TXT"], "ANY: what the apex holds");
  });

  test("UDP answers larger than 512 bytes without EDNS, or than the EDNS size, are truncated; TCP gets them whole", async () => {
    const big = serviceSpec("big", { domains: [{ name: "big.example", records: [{ type: "TXT", name: "t", text: "y".repeat(2000) }] }] });
    await reconcile({ id: "big", spec: big });
    const plain = await kdig(port, "t.big.example", "TXT", { noedns: true });
    assert.equal(plain.tc, true);
    assert.equal(plain.answer.length, 0);
    assert.equal((await kdig(port, "t.big.example", "TXT", { bufsize: 1232 })).tc, true);
    const large = await kdig(port, "t.big.example", "TXT", { bufsize: 4096 });
    assert.equal(large.tc, false);
    assert.equal(large.answer.length, 1);
    const tcp = await kdig(port, "t.big.example", "TXT", { tcp: true });
    assert.equal(tcp.tc, false);
    assert.equal(tcp.answer[0]?.data.replace(/[" ]/g, ""), "y".repeat(2000));
    await reconcile({ id: "big", spec: undefined });
  });

  test("a changed spec is served with a higher serial; an unchanged one rewrites and reloads nothing", async () => {
    const path = zoneFile("example.org");
    const before = await stat(path);
    const loadsBefore = await reloads();
    const again = await reconcile({ id: "site", spec: siteSpec() });
    assert.equal(again.changed, false);
    assert.deepEqual(again.plan.steps, []);
    // The minion also commits at start after a crash; with nothing pending that must be a no-op.
    await actuator.commit?.(context);
    assert.equal((await stat(path)).mtimeMs, before.mtimeMs, "the zone file was not rewritten");
    assert.equal(await reloads(), loadsBefore, "no reload");
    const changed = await reconcile({ id: "site", spec: siteSpec([{ type: "A", name: "new", address: "192.0.2.99" }]) });
    assert.deepEqual(changed.plan.describe, ["write zone example.org (serial 2)"]);
    assert.equal(await reloads(), loadsBefore + 1, "one reload for the change");
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.deepEqual((await kdig(port, "new.example.org", "A", { tcp: true })).answer.map((r) => r.data), ["192.0.2.99"]);
  });

  test("a CNAME clash is a terminal error naming the name; the zones served stay as they were", async () => {
    const bad = siteSpec([{ type: "CNAME", name: "www", target: "elsewhere.example.net" }]);
    await assert.rejects(reconcile({ id: "site", spec: bad }), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "InvalidZone");
      assert.equal(error.terminal, true);
      assert.match(error.message, /CNAME at www\.example\.org shares its name/);
      return true;
    });
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.deepEqual((await kdig(port, "www.example.org", "A")).answer.map((r) => r.data), ["192.0.2.10"]);
  });

  test("a second service claiming a served domain gets DomainTaken and the first keeps its zone", async () => {
    const other = serviceSpec("thief", { domains: [{ name: "example.org" }, { name: "thief.example" }] });
    await assert.rejects(reconcile({ id: "thief", spec: other }), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "DomainTaken");
      assert.equal(error.terminal, true);
      assert.match(error.message, /^zone example\.org: already served for service site/);
      return true;
    });
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.equal((await kdig(port, "thief.example", "SOA")).rcode, 5, "nothing of the refused spec was applied");
  });

  test("a bad zone file is skipped with an ERROR log and never takes down the other zones", async () => {
    await writeFile(zoneFile("broken.example"), '{"schemaVersion":1,"kind":"DnsZone","zone":"broken.example"}');
    await writeFile(zoneFile("garbage.example"), "not json");
    const { changed } = await reconcile({ id: "second", spec: serviceSpec("second", { domains: [{ name: "second.example" }] }) });
    assert.equal(changed, true);
    assert.equal(await servedSerial(port, "second.example"), 1);
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.equal((await kdig(port, "broken.example", "SOA")).rcode, 5);
    assert.ok((await countEvents(context.logFile, "ERROR")) >= 2, "both bad files are logged as errors");
  });

  test("fuzzing the live server over UDP and TCP does not take it down", async () => {
    const udp = createSocket("udp4");
    const seed = encode({ type: "query", id: 7, flags: 0, questions: [{ name: "www.example.org", type: "A", class: "IN" }] });
    for (let i = 0; i < 300; i++) {
      let packet = i % 2 === 0 ? randomBytes(Math.floor(Math.random() * 100)) : Buffer.from(seed);
      if (i % 2 === 1) for (let f = 0; f < 3; f++) packet[Math.floor(Math.random() * packet.length)] = Math.floor(Math.random() * 256);
      if (i % 7 === 0) packet = packet.subarray(0, Math.floor(packet.length / 2));
      await new Promise<void>((resolve) => udp.send(packet, port, "127.0.0.1", () => { resolve(); }));
    }
    udp.close();
    for (const payload of [Buffer.from([0x00]), Buffer.from([0xff, 0xff, 1, 2, 3]), Buffer.concat([Buffer.from([0, 20]), randomBytes(20)]), randomBytes(500)]) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.end(payload);
        });
        socket.on("error", () => { resolve(); });
        socket.on("close", () => { resolve(); });
        socket.on("data", () => undefined);
        socket.setTimeout(1000, () => socket.destroy());
      });
    }
    await assertServesSite(port, 2);
    await assertServesSite(port, 2, true);
  });

  test("an interrupted apply converges on the next reconcile", async () => {
    const spec = serviceSpec("multi", { domains: [{ name: "one.example" }, { name: "two.example" }] });
    const target = { id: "multi", spec };
    const plan = actuator.plan(target, await actuator.observe(target, context), context.server);
    assert.equal(plan.steps.length, 2);
    // Killed after the first file: the second reconcile does the rest only.
    await actuator.apply({ steps: plan.steps.slice(0, 1), describe: plan.describe.slice(0, 1) }, target, context);
    const { plan: rest } = await reconcile(target);
    assert.deepEqual(rest.describe, ["write zone two.example (serial 1)"]);
    assert.equal(await servedSerial(port, "one.example"), 1);
    assert.equal(await servedSerial(port, "two.example"), 1);
  });

  test("deleting a service removes exactly its zones", async () => {
    const { plan } = await reconcile({ id: "multi", spec: undefined });
    assert.deepEqual(plan.describe, ["remove zone one.example", "remove zone two.example"]);
    assert.equal((await kdig(port, "one.example", "SOA")).rcode, 5);
    assert.equal((await kdig(port, "two.example", "SOA", { tcp: true })).rcode, 5);
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.equal(await servedSerial(port, "second.example"), 1);
    const left = (await readdir(join(stateDir, "dns", "zones"))).sort();
    assert.deepEqual(left, ["broken.example.json", "example.org.json", "garbage.example.json", "second.example.json"]);
    const again = await reconcile({ id: "multi", spec: undefined });
    assert.equal(again.changed, false, "deleting twice changes nothing");
  });
});
