// The Knot backend end to end: the actuator renders knot.conf and RFC 1035 zone files, a real
// knotd (started here, on a loopback port, with its run and database folders in a temp folder)
// serves them, and kdig checks what it answers.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ActuatorError, commitActuator, converge } from "@coyote/actuator";
import type { Target } from "@coyote/actuator";
import { createDnsActuator, dkimFilePath } from "./index.ts";
import type { DnsActuator } from "./index.ts";
import {
  assertServesSite,
  DKIM_TXT,
  expectedPolicyId,
  freePort,
  kdig,
  requireProgram,
  servedSerial,
  serverSpec,
  serviceSpec,
  siteSpec,
  skipWithout,
  startDaemon,
  tempDir,
  testContext,
  waitFor,
} from "./test/support.ts";
import type { Daemon } from "./test/support.ts";

const skip = skipWithout("knotd", "knotc", "kdig");

function knotc(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(requireProgram("knotc"), args, { encoding: "utf8", timeout: 10_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, output: `${stdout}${stderr}` });
    });
  });
}

describe("knot backend", { skip }, () => {
  let cleanup: (() => Promise<void>) | undefined;
  let knotd: Daemon | undefined;
  let dir = "";
  let port = 0;
  let actuator: DnsActuator;
  let context: Awaited<ReturnType<typeof testContext>>;
  let paths: { conf: string; zones: string; socket: string; calls: string; log: string };

  const reconcile = async (target: Target) => {
    const result = await converge(actuator, target, context);
    if (result.changed) await commitActuator(actuator, context);
    return result;
  };
  const knotcCalls = async () => (await readFile(paths.calls, "utf8").catch(() => "")).split("\n").filter((l) => l.trim() !== "").length;
  const waitSerial = (zone: string, serial: number | undefined) =>
    waitFor(`knot to serve ${zone} with serial ${String(serial)}`, async () => ((await servedSerial(port, zone)) === serial ? true : undefined));

  before(async () => {
    requireProgram("knotd");
    const temp = await tempDir();
    cleanup = temp.cleanup;
    port = await freePort();
    context = await testContext(temp.dir, serverSpec());
    dir = context.stateDir;
    paths = {
      conf: join(dir, "knot-etc", "knot.conf"),
      zones: join(dir, "knot-zones"),
      socket: join(dir, "knot-run", "knot.sock"),
      calls: join(dir, "knotc-calls"),
      log: join(dir, "knotd.log"),
    };
    await mkdir(join(dir, "knot-run"), { recursive: true });
    // knotc through a wrapper that counts its calls: how the tests see reloads.
    const wrapper = join(dir, "knotc-counting");
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${paths.calls}'\nexec '${requireProgram("knotc")}' "$@"\n`);
    await chmod(wrapper, 0o755);
    actuator = createDnsActuator({
      stateDir: dir,
      backend: "knot",
      knot: {
        configDir: join(dir, "knot-etc"),
        zonesDir: paths.zones,
        listen: [`127.0.0.1:${port}`],
        controlSocket: paths.socket,
        knotc: wrapper,
        rundir: join(dir, "knot-run"),
        databaseDir: join(dir, "knot-db"),
      },
    });
    assert.equal(actuator.id, "actuator.dnsconf.knot");
    assert.equal("start" in actuator, false, "knotd is a system daemon, not started by the actuator");
    await mkdir(join(dir, "mail", "dkim"), { recursive: true });
    await writeFile(dkimFilePath(dir, "example.org"), JSON.stringify({ selector: "coyote", txt: DKIM_TXT }));
  });

  after(async () => {
    await knotd?.stop();
    await context.logger.close();
    await cleanup?.();
  });

  test("renders a knot.conf that knotc conf-check accepts; a commit without knotd fails and is retried later", async () => {
    const { changed, plan } = await converge(actuator, { id: "site", spec: siteSpec() }, context);
    assert.equal(changed, true);
    assert.deepEqual(plan.describe, ["write zone example.org (serial 1)", `write ${paths.conf} (1 zones)`]);
    const check = await knotc(["-c", paths.conf, "conf-check"]);
    assert.equal(check.code, 0, check.output);
    // The database folder knot.conf names is there: Knot does not start without it.
    assert.ok((await stat(join(dir, "knot-db"))).isDirectory());
    const zoneText = await readFile(join(paths.zones, "example.org.zone"), "utf8");
    assert.match(zoneText, /^; coyote-owner: site$/m);
    await assert.rejects(actuator.commit?.(context) ?? Promise.resolve(), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "ReloadFailed");
      assert.equal(error.terminal, false, "retried with backoff: knotd may come up");
      return true;
    });
    knotd = startDaemon(requireProgram("knotd"), ["-c", paths.conf], paths.log);
    await waitFor("knotd's control socket", async () => ((await knotc(["-s", paths.socket, "status"])).code === 0 ? true : undefined));
    const calls = await knotcCalls();
    await actuator.commit?.(context);
    assert.equal(await knotcCalls(), calls + 1, "the pending reload was done");
  });

  test("knot serves exactly the records the spec asks for, authoritatively, over UDP and TCP", async () => {
    await waitSerial("example.org", 1);
    await assertServesSite(port, 1);
    await assertServesSite(port, 1, true);
    const nx = await kdig(port, "nothing.example.org", "A");
    assert.equal(nx.rcode, 3);
    assert.deepEqual(nx.authority.map((r) => r.type), ["SOA"]);
    assert.equal((await kdig(port, "example.com", "A")).rcode, 5);
  });

  test("a changed spec is served with a higher serial; an unchanged one rewrites nothing and does not reload", async () => {
    const zonePath = join(paths.zones, "example.org.zone");
    const zoneBefore = await stat(zonePath);
    const confBefore = await stat(paths.conf);
    const calls = await knotcCalls();
    const again = await reconcile({ id: "site", spec: siteSpec() });
    assert.equal(again.changed, false);
    await actuator.commit?.(context);
    assert.equal((await stat(zonePath)).mtimeMs, zoneBefore.mtimeMs, "zone file untouched");
    assert.equal((await stat(paths.conf)).mtimeMs, confBefore.mtimeMs, "knot.conf untouched");
    assert.equal(await knotcCalls(), calls, "no knotc call");
    const changed = await reconcile({ id: "site", spec: siteSpec([{ type: "AAAA", name: "v6", address: "2001:db8::99" }]) });
    assert.deepEqual(changed.plan.describe, ["write zone example.org (serial 2)"], "knot.conf is unchanged: same zone list");
    assert.equal(await knotcCalls(), calls + 1, "one reload");
    await waitSerial("example.org", 2);
    assert.deepEqual((await kdig(port, "v6.example.org", "AAAA", { tcp: true })).answer.map((r) => r.data), ["2001:db8::99"]);
  });

  test("a CNAME clash is a terminal error naming the name; knot keeps serving the zone as it was", async () => {
    await assert.rejects(reconcile({ id: "site", spec: siteSpec([{ type: "CNAME", name: "@", target: "elsewhere.example.net" }]) }), (error: unknown) => {
      assert.ok(error instanceof ActuatorError);
      assert.equal(error.reason, "InvalidZone");
      assert.equal(error.terminal, true);
      assert.match(error.message, /^rendering zone example\.org: a CNAME at example\.org is not allowed/);
      return true;
    });
    assert.equal(await servedSerial(port, "example.org"), 2);
  });

  test("a new service's zone reaches knot's zone list; a second claim on a domain is DomainTaken", async () => {
    await reconcile({ id: "second", spec: serviceSpec("second", { domains: [{ name: "second.example" }], mail: {} }) });
    assert.match(await readFile(paths.conf, "utf8"), /- domain: "example\.org"\n {2}- domain: "second\.example"\n$/);
    await waitSerial("second.example", 1);
    assert.deepEqual((await kdig(port, "second.example", "MX")).answer.map((r) => r.data), ["10 ns1.coyote-host.net."]);
    assert.deepEqual((await kdig(port, "autoconfig.second.example", "CNAME")).answer.map((r) => r.data), ["ns1.coyote-host.net."], "mail apps' autoconfig name");
    await assert.rejects(reconcile({ id: "third", spec: serviceSpec("third", { domains: [{ name: "second.example" }] }) }), /DomainTaken|already served for service second/);
    assert.equal(await servedSerial(port, "second.example"), 1);
    assert.equal((await knotc(["-c", paths.conf, "conf-check"])).code, 0);
  });

  test("killed between apply and commit: the next commit reloads once, later ones do not", async () => {
    const calls = await knotcCalls();
    const { changed } = await converge(actuator, { id: "second", spec: serviceSpec("second", { domains: [{ name: "second.example" }] }) }, context);
    assert.equal(changed, true);
    // The minion restarts and commits.
    const restarted = createDnsActuator({ stateDir: dir, backend: "knot", knot: { configDir: join(dir, "knot-etc"), zonesDir: paths.zones, listen: [`127.0.0.1:${port}`], controlSocket: paths.socket, knotc: join(dir, "knotc-counting"), rundir: join(dir, "knot-run"), databaseDir: join(dir, "knot-db") } });
    await restarted.commit?.(context);
    await restarted.commit?.(context);
    assert.equal(await knotcCalls(), calls + 1);
    await waitSerial("second.example", 2);
    assert.equal((await kdig(port, "second.example", "MX")).answer.length, 0, "mail removed from the spec, MX gone");
    assert.equal((await kdig(port, "autoconfig.second.example", "CNAME")).rcode, 3, "and the autoconfig name with it");
  });

  test("deleting a service removes its zone from knot; the others stay", async () => {
    const { plan } = await reconcile({ id: "second", spec: undefined });
    assert.deepEqual(plan.describe, [`write ${paths.conf} (1 zones)`, "remove zone second.example"]);
    await waitFor("knot to stop answering for second.example", async () => ((await kdig(port, "second.example", "SOA")).rcode === 5 ? true : undefined));
    assert.equal(await servedSerial(port, "example.org"), 2);
    assert.doesNotMatch(await readFile(paths.conf, "utf8"), /second\.example/);
    assert.equal((await knotc(["-c", paths.conf, "conf-check"])).code, 0);
    const log = await readFile(paths.log, "utf8");
    assert.doesNotMatch(log, /\berror:/, "knotd logged no error");
  });
  test("MTA-STS follows the server spec: a new mx gets a new policy id, the local CA removes it; TLS reporting stays", async () => {
    const under = async (server: ReturnType<typeof serverSpec>, serial: number) => {
      const ctx = { ...context, server };
      const { changed } = await converge(actuator, { id: "site", spec: siteSpec() }, ctx);
      assert.equal(changed, true);
      await commitActuator(actuator, ctx);
      await waitSerial("example.org", serial);
    };
    const txt = async (name: string) => (await kdig(port, name, "TXT")).answer.map((r) => r.data);
    assert.deepEqual(await txt("_mta-sts.example.org"), [`"v=STSv1; id=${expectedPolicyId("ns1.coyote-host.net")}"`]);
    await under(serverSpec({ hostname: "mx2.coyote-host.net" }), 3);
    assert.deepEqual(await txt("_mta-sts.example.org"), [`"v=STSv1; id=${expectedPolicyId("mx2.coyote-host.net")}"`], "the policy names another mx: senders fetch it again");
    assert.deepEqual((await kdig(port, "mta-sts.example.org", "CNAME")).answer.map((r) => r.data), ["mx2.coyote-host.net."]);
    await under(serverSpec({ certificates: { mode: "local-ca" } }), 4);
    assert.equal((await kdig(port, "_mta-sts.example.org", "TXT")).rcode, 3, "no policy id with the local CA");
    assert.equal((await kdig(port, "mta-sts.example.org", "CNAME")).rcode, 3, "no policy host either");
    assert.deepEqual(await txt("_smtp._tls.example.org"), ['"v=TLSRPTv1; rua=mailto:postmaster@example.org"'], "TLS reporting in both modes");
  });
});
