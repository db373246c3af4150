// The Knot backend as `coyote up` runs it: the minion's DNS actuator writes knot.conf and the zones
// under the state folder, and the box's daemon supervisor starts Knot from the same file.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { DaemonSupervisor, daemonPaths, findDaemon } from "@coyote/component";
import { createLogger, logFileFor } from "@coyote/log";
import { StateStore } from "@coyote/spec";
import { freeUdpPort, requireProgram, skipWithout } from "@coyote/testing";
import { bundledActuators, knotPaths } from "./bundled.ts";
import { Minion } from "./minion.ts";
import { cleanedUpAfterTests } from "./test/support.ts";

const run = promisify(execFile);
const AUTHOR = { name: "Test", email: "test@example.org" };
const { dirs, minions } = cleanedUpAfterTests();

async function dig(port: number, name: string, type: string): Promise<string[]> {
  const { stdout } = await run("kdig", ["@127.0.0.1", "-p", String(port), "+timeout=1", "+retry=0", "+short", name, type]).catch(() => ({ stdout: "" }));
  return stdout.trim().split("\n").filter(Boolean).sort();
}

async function until<T>(what: string | (() => string), check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(100);
  }
}

test("with the knot backend, the supervisor runs Knot on the minion's knot.conf under the state folder, a spec change is served after a reload of the same process, and DnsReady is False naming Knot while it is killed", { timeout: 90_000, skip: skipWithout(["knotd", "knotc", "kdig"], "Debian packages knot, knot-dnsutils") }, async () => {
  requireProgram("knotd");
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-knot-"));
  dirs.push(stateDir);
  const port = await freeUdpPort();
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  await store.applySpec({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", publicIPv4: "192.0.2.7", dns: { backend: "knot", listen: [`127.0.0.1:${port}`] } }, { author: AUTHOR });
  const service = (records: { type: "TXT"; name: string; text: string }[]) => ({ schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.example", records }] });
  await store.applySpec(service([]), { author: AUTHOR });

  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  const minion = new Minion({ stateDir, logger, actuators: (server) => bundledActuators(server, stateDir), debounceMs: 10, daemonPollMs: 200, backoffInitialMs: 200, backoffMaxMs: 2000 });
  minions.push(minion);
  const knot = findDaemon("knot");
  assert.ok(knot);
  const supervisor = new DaemonSupervisor({ stateDir, logger: createLogger({ component: "daemons", file: logFileFor(stateDir, "daemons") }), daemons: [knot], pollMs: 100, backoff: { initialMs: 3000, maxMs: 3000, resetAfterMs: 60_000 } });
  try {
    await minion.start();
    await supervisor.start();
    assert.equal(join(knotPaths(stateDir, []).configDir, "knot.conf"), daemonPaths(stateDir).knotConf, "the minion writes the file the supervisor starts Knot with");
    const why = () => `daemons ${JSON.stringify(supervisor.states())}; shop ${JSON.stringify(minion.statuses.get("shop")?.conditions)}`;
    await until(() => `knot to answer the zone (${why()})`, async () => ((await dig(port, "shop.example", "NS")).join() === "box.example.org." ? true : undefined));
    await until("the service to be ready", () => (minion.statuses.get("shop")?.conditions.find((c) => c.type === "Ready")?.status === "True" ? true : undefined));
    const pid = supervisor.states()[0]?.pid;
    assert.ok(pid !== undefined && supervisor.states()[0]?.state === "running", JSON.stringify(supervisor.states()));

    await store.applySpec(service([{ type: "TXT", name: "hello", text: "served after a reload" }]), { author: AUTHOR });
    await until("the new record", async () => ((await dig(port, "hello.shop.example", "TXT")).join() === '"served after a reload"' ? true : undefined));
    assert.equal(supervisor.states()[0]?.pid, pid, "the minion's commit reloaded Knot through its control socket: the same process serves the change");

    // Killed, Knot stays down for 3 s before the supervisor starts it again: DnsReady says so.
    const dnsReady = () => minion.statuses.get("shop")?.conditions.find((c) => c.type === "DnsReady");
    await until("DnsReady True", () => (dnsReady()?.status === "True" ? true : undefined));
    process.kill(-pid, "SIGKILL");
    await until(() => `DnsReady False naming knot (${JSON.stringify(dnsReady())})`, () => (dnsReady()?.status === "False" && dnsReady()?.reason === "KnotDown" && /knot is not running/.test(dnsReady()?.message ?? "") ? true : undefined));
    await until(() => `DnsReady True again (${why()})`, () => (dnsReady()?.status === "True" ? true : undefined), 60_000);
    assert.notEqual(supervisor.states()[0]?.pid, pid, "a new knot");
    assert.equal((await dig(port, "hello.shop.example", "TXT")).join(), '"served after a reload"', "the new knot serves the zone");
  } finally {
    await supervisor.stop();
  }
});
