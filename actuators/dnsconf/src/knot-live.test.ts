// DnsReady tells the truth with the Knot backend: the actuator verifies the running knotd (started
// here on a loopback port) serves each zone at its file's serial, and says KnotDown or DnsPending,
// naming what is missing, until it does.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { commitActuator, converge } from "@coyote/actuator";
import type { Requeue, Target } from "@coyote/actuator";
import { createDnsActuator, parseZoneStatus } from "./index.ts";
import type { DnsActuator } from "./index.ts";
import { freePort, requireProgram, servedSerial, serverSpec, siteSpec, skipWithout, startDaemon, tempDir, testContext, waitFor } from "./test/support.ts";
import type { Daemon } from "./test/support.ts";

test("zone-status lines give each zone's served serial, none for a zone knot could not load", () => {
  const output = [
    "[example.org.] role: master | serial: 2026120701 | transaction: none | freeze: no",
    "[Second.Example.] role: master | serial: -",
    "error: [third.example] (no such zone found)",
    "",
  ].join("\n");
  assert.deepEqual([...parseZoneStatus(output)], [["example.org", 2026120701], ["second.example", undefined]]);
  assert.equal(parseZoneStatus("").size, 0);
});

describe("knot backend, verified", { skip: skipWithout("knotd", "knotc", "kdig") }, () => {
  let cleanup: (() => Promise<void>) | undefined;
  let knotd: Daemon | undefined;
  let port = 0;
  let actuator: DnsActuator;
  let context: Awaited<ReturnType<typeof testContext>>;
  let conf = "";
  let logFile = "";
  let site: Target = { id: "site", spec: siteSpec() };

  /** One pass as the minion makes it: converge, commit what changed, and the requeue asked for. */
  const pass = async (target: Target = site): Promise<Requeue | undefined> => {
    const result = await converge(actuator, target, context);
    if (result.changed) await commitActuator(actuator, context);
    return result.requeue;
  };
  const startKnot = async () => {
    knotd = startDaemon(requireProgram("knotd"), ["-c", conf], logFile);
    await waitFor("knotd to answer", async () => ((await servedSerial(port, "example.org")) !== undefined ? true : undefined));
  };

  before(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    port = await freePort();
    context = await testContext(temp.dir, serverSpec());
    const dir = context.stateDir;
    conf = join(dir, "knot", "knot.conf");
    logFile = join(dir, "knotd.log");
    await mkdir(join(dir, "knot-run"), { recursive: true });
    await mkdir(join(dir, "knot-db"), { recursive: true });
    actuator = createDnsActuator({
      stateDir: dir,
      backend: "knot",
      knot: {
        configDir: join(dir, "knot"),
        zonesDir: join(dir, "knot", "zones"),
        listen: [`127.0.0.1:${port}`],
        controlSocket: join(dir, "knot-run", "knot.sock"),
        knotc: requireProgram("knotc"),
        rundir: join(dir, "knot-run"),
        databaseDir: join(dir, "knot-db"),
        verify: true,
      },
    });
  });

  after(async () => {
    await knotd?.stop();
    await context.logger.close();
    await cleanup?.();
  });

  test("while knot does not run, DnsReady waits with KnotDown naming its pid file; the zone files are written all the same", async () => {
    const result = await converge(actuator, site, context);
    assert.equal(result.changed, true);
    assert.equal(result.requeue?.reason, "KnotDown");
    assert.match(result.requeue.message, /knot is not running \(no live pid in .*knot-run\/knot\.pid\)/);
    assert.deepEqual(result.plan.describe.slice(0, 2), ["write zone example.org (serial 1)", `write ${conf} (1 zones)`]);
  });

  test("once knot serves the zone at its file's serial, the service converges with nothing left to wait for", async () => {
    await startKnot();
    // The reload that failed while knot was down is owed; knot read the files at its start anyway.
    await commitActuator(actuator, context).catch(() => undefined);
    const settled = await waitFor("DnsReady", async () => ((await pass()) === undefined ? true : undefined));
    assert.equal(settled, true);
    const again = await converge(actuator, site, context);
    assert.deepEqual([again.changed, again.requeue], [false, undefined]);
  });

  test("a changed zone waits for the commit, and names the serial knot still serves while the reload is owed", async () => {
    const changed = { id: "site", spec: siteSpec([{ type: "TXT", name: "new", text: "hello" }]) };
    const written = await converge(actuator, changed, context);
    assert.equal(written.requeue?.reason, "DnsPending");
    assert.match(written.requeue.message, /zone example\.org at serial 2 reaches knot at the commit/);
    // No commit yet: knot still serves serial 1.
    const owed = await converge(actuator, changed, context);
    assert.equal(owed.requeue?.reason, "DnsPending");
    assert.match(owed.requeue.message, /knot serves zone example\.org at serial 1, its file has 2/);
    await commitActuator(actuator, context);
    await waitFor("DnsReady after the reload", async () => ((await pass(changed)) === undefined ? true : undefined));
    assert.equal(await servedSerial(port, "example.org"), 2);
    site = changed;
  });

  test("knot killed: KnotDown at the next pass; started again: ready without a write", async () => {
    assert.ok(knotd !== undefined);
    process.kill(knotd.pid, "SIGKILL");
    await knotd.stop();
    const down = await converge(actuator, site, context);
    assert.equal(down.requeue?.reason, "KnotDown");
    assert.match(down.requeue.message, /^dns zones of service site are not served yet: knot is not running/);
    assert.deepEqual(down.plan.describe, [`wait for knot: ${down.requeue.message}`], "nothing to write: only waiting");
    await startKnot();
    await waitFor("DnsReady after the restart", async () => ((await pass()) === undefined ? true : undefined));
  });

  test("a service without zones does not ask knot anything", async () => {
    const none = await converge(actuator, { id: "other", spec: undefined }, context);
    assert.deepEqual([none.changed, none.requeue], [false, undefined]);
  });
});
