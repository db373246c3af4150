// The behaviour tests of the sleeping backends, written once and run on each runtime (docker.test.ts,
// process.test.ts): the same wake, idle, activity, budget, dump and adoption rules must hold on both.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, it } from "node:test";
import { ActivatorClient, ActivatorError } from "@coyote/spec";
import type { ActivatorStartOptions } from "../start.ts";
import { freePort, httpGet, makeHarness, startDumpWitness, unitEntry, waitFor } from "./support.ts";
import type { Harness } from "./support.ts";

/** How one runtime runs the shared behaviour tests. */
export interface Flavour {
  /** The runtime under test. */
  readonly name: "docker" | "process";
  /** The server spec's runtime that selects it. */
  readonly serverRuntime: "docker" | "process";
  /** Options for every activator (docker socket, PATH of process units); read after `before`. */
  options(): ActivatorStartOptions;
  /** The address a unit's busybox httpd binds for a port: its own network's, or the host's loopback. */
  bind(port: number): string;
  /** The address a unit reaches the test's dump witness on (the host, as the unit sees it), in the unit's shell. */
  witnessHost(): string;
  /** The address the test's dump witness listens on. */
  witnessListen(): string;
  /** Whether a unit of the harness with this port serves now (a byte comes back to a request). */
  serving(stateDir: string, port: number): Promise<boolean>;
  /** The web root busybox httpd serves, as the unit sees it. */
  www(): string;
  /** A command running a shell script, as the unit (or its dump hook) runs it. */
  sh(script: string): string[];
  /** The runtime fields of a unit running a command (image for docker). */
  runtimeFields(command: string[]): Record<string, unknown>;
  /** Kills a unit behind the activator's back, as a crash would. */
  killUnit(stateDir: string, unitId: string): Promise<void>;
  /** Stops and removes whatever units a test left running. */
  cleanupUnits(stateDir: string): Promise<void>;
}

const MIB = 1024 * 1024;

type UnitsBody = { units: Record<string, { state: string; wakeCount: number; memoryBytes?: number; bytesIn: number }> };

/** Defines the shared behaviour tests for one runtime. */
export function defineBehaviour(flavour: Flavour, skip: () => string | false): void {
  const harnesses: Harness[] = [];
  const clients: ActivatorClient[] = [];

  const setup = async () => {
    const harness = await makeHarness(flavour.options());
    harnesses.push(harness);
    await harness.writeServer({ runtime: flavour.serverRuntime });
    const client = new ActivatorClient(harness.stateDir);
    clients.push(client);
    return { harness, client };
  };
  const httpUnit = (id: string, port: number, extra: Record<string, unknown> = {}) =>
    unitEntry({ id, serviceId: id, port, ...flavour.runtimeFields(flavour.sh(`exec httpd -f -p ${flavour.bind(port)} -h ${flavour.www()}`)), ...extra });
  /** A unit that holds about 27 MiB in its shell before serving, so that memory shows in the stats. */
  const hogUnit = (id: string, port: number, extra: Record<string, unknown> = {}) =>
    unitEntry({ id, serviceId: id, port, ...flavour.runtimeFields(flavour.sh(`x=$(head -c 28000000 /dev/zero | tr "\\0" a); httpd -f -p ${flavour.bind(port)} -h ${flavour.www()} & wait`)), ...extra });
  const units = async (client: ActivatorClient) => (await client.units()) as UnitsBody;
  const stateOf = async (client: ActivatorClient, id: string) => (await units(client)).units[id]?.state;

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const harness of harnesses.splice(0)) {
      await harness.cleanup((stateDir) => flavour.cleanupUnits(stateDir));
    }
  });

  describe(`docker-activator behaviour on the ${flavour.name} runtime`, { skip: skip() }, () => {
    it("starts a unit once for 50 concurrent first wakes, answers all 50 once it is ready, and the 50 requests succeed", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("blog", port)]);
      await harness.start();
      assert.equal(await flavour.serving(harness.stateDir, port), false, "nothing runs before the first wake");
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => client.wake("blog", { timeoutMs: 20_000, requestId: `req-${i}` })));
      assert.equal(answers.filter((a) => a.started).length, 1, "exactly one wake started it");
      assert.ok(answers.every((a) => a.address.endsWith(`:${port}`) && a.unit === "blog"));
      const responses = await Promise.all(answers.map((a) => httpGet(a.address, "/index.html")));
      assert.ok(responses.every((r) => r.status === 200 && r.body === "hello from a coyote unit\n"));
      const stats = (await units(client)).units.blog;
      assert.ok(stats !== undefined);
      assert.equal(stats.state, "running");
      assert.equal(stats.wakeCount, 1);
      assert.equal((await harness.events("BACKEND_WOKEN")).length, 1);
      const up = await harness.events("SERVICE_UP");
      assert.ok(up.some((e) => e.reason === "woken" && e.unit === "blog"));
      const statsFile = await waitFor(async () => {
        const text = await readFile(join(harness.stateDir, "stats", "docker-activator.json"), "utf8").catch(() => "");
        return text.includes('"blog"') && text.includes('"running"') ? (JSON.parse(text) as { units: Record<string, { wakeCount: number; lastWakeMs?: number }> }) : undefined;
      }, 5000, "the stats file to show the unit");
      const written = Object.entries(statsFile.units).find(([id]) => id === "blog")?.[1];
      assert.ok(written !== undefined);
      assert.equal(written.wakeCount, 1);
      assert.ok((written.lastWakeMs ?? -1) >= 0);
    });

    it("answers a wake only once the HTTP readiness probe passes, and times out on a status it never gets", async () => {
      const { harness, client } = await setup();
      const [p1, p2] = [await freePort(), await freePort()];
      await harness.writeUnits([
        unitEntry({ id: "slow", serviceId: "slow", port: p1, readiness: { kind: "http", path: "/index.html", expectStatus: 200 }, ...flavour.runtimeFields(flavour.sh(`sleep 1; exec httpd -f -p ${flavour.bind(p1)} -h ${flavour.www()}`)) }),
        unitEntry({ id: "picky", serviceId: "picky", port: p2, readinessTimeoutSeconds: 1, readiness: { kind: "http", path: "/index.html", expectStatus: 204 }, ...flavour.runtimeFields(flavour.sh(`exec httpd -f -p ${flavour.bind(p2)} -h ${flavour.www()}`)) }),
      ]);
      await harness.start();
      const answer = await client.wake("slow", { timeoutMs: 20_000 });
      assert.ok(answer.waitedMs >= 900, `it waited for the app (${answer.waitedMs} ms)`);
      assert.equal((await httpGet(answer.address, "/index.html")).status, 200, "ready means the first request succeeds");
      await assert.rejects(client.wake("picky", { timeoutMs: 20_000 }), (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_TIMEOUT" && /answered 200, expected 204/.test(e.message));
    });

    it("stops a unit idle for its timeout, with SERVICE_DOWN reason idle, and wakes it again", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("idle", port, { idleTimeoutSeconds: 1 })]);
      await harness.start();
      const woke = Date.now();
      await client.wake("idle", { timeoutMs: 20_000 });
      assert.ok(await flavour.serving(harness.stateDir, port));
      await waitFor(async () => (await stateOf(client, "idle")) === "stopped", 15_000, "the idle stop");
      assert.ok(Date.now() - woke >= 1000, "not before the timeout");
      assert.equal(await flavour.serving(harness.stateDir, port), false);
      const down = await harness.events("SERVICE_DOWN");
      assert.ok(down.some((e) => e.reason === "idle" && e.unit === "idle"));
      // A tick that listed the runtime while the stop ran must not take the old listing for news.
      await sleep(600);
      assert.equal(await stateOf(client, "idle"), "stopped");
      assert.ok(!(await harness.events("SERVICE_DOWN")).some((e) => e.reason === "crashed"), "no crash seen in a stop of our own");
      assert.ok(!(await harness.events("SERVICE_UP")).some((e) => e.reason === "adopted"), "no adoption of a unit we stopped");
      const again = await client.wake("idle", { timeoutMs: 20_000 });
      assert.equal(again.started, true);
      assert.equal((await httpGet(again.address)).status, 200);
    });

    it("keeps a unit with an open connection awake past its idle timeout, and stops it once the connection closes", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("ws", port, { idleTimeoutSeconds: 1 })]);
      await harness.start();
      await client.wake("ws", { timeoutMs: 20_000 });
      // As snitch-proxy reports a websocket: no new requests, no bytes, one open connection.
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        await client.reportActivity({ units: { ws: { requests: 0, openConnections: 1, bytesIn: 0, bytesOut: 0 } } });
        await sleep(300);
      }
      assert.equal(await stateOf(client, "ws"), "running", "still awake after three idle timeouts");
      assert.ok(await flavour.serving(harness.stateDir, port));
      await client.reportActivity({ units: { ws: { requests: 0, openConnections: 0, bytesIn: 120, bytesOut: 340 } } });
      await waitFor(async () => (await stateOf(client, "ws")) === "stopped", 15_000, "the stop after the connection closed");
      assert.equal((await units(client)).units.ws?.bytesIn, 120);
    });

    it("evicts the least recently used idle unit when a wake would exceed the memory budget, which changes live", async () => {
      const { harness, client } = await setup();
      await harness.writeServer({ runtime: flavour.serverRuntime, limits: { memoryBudgetMb: 1024 } });
      const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
      await harness.writeUnits([hogUnit("alpha", pa), hogUnit("beta", pb), httpUnit("gamma", pc, { memoryMb: 16 })]);
      const running = await harness.start();
      await client.wake("alpha", { timeoutMs: 20_000 });
      await sleep(50);
      await client.wake("beta", { timeoutMs: 20_000 });
      await waitFor(async () => {
        const u = (await units(client)).units;
        return (u.alpha?.memoryBytes ?? 0) > 26 * MIB && (u.beta?.memoryBytes ?? 0) > 26 * MIB;
      }, 15_000, "the memory of alpha and beta to be read");
      // Lowered live: the two use about 57 MiB, within 64, so nothing stops until gamma needs room.
      await harness.writeServer({ runtime: flavour.serverRuntime, limits: { memoryBudgetMb: 64 } });
      await waitFor(() => running.activator.memoryBudgetBytes === 64 * MIB, 5000, "the new budget");
      await sleep(500);
      assert.equal(await stateOf(client, "alpha"), "running", "within the budget nothing is evicted");
      await client.wake("gamma", { timeoutMs: 20_000 });
      const after = (await units(client)).units;
      assert.equal(after.alpha?.state, "stopped", "alpha, the least recently used, was evicted");
      assert.equal(after.beta?.state, "running");
      assert.equal(after.gamma?.state, "running");
      assert.equal(await flavour.serving(harness.stateDir, pa), false);
      const down = await harness.events("SERVICE_DOWN");
      assert.deepEqual(down.filter((e) => e.reason === "evicted").map((e) => e.unit), ["alpha"]);
    });

    it("evicts least recently used units when a periodic check finds the lowered budget exceeded", async () => {
      const { harness, client } = await setup();
      await harness.writeServer({ runtime: flavour.serverRuntime, limits: { memoryBudgetMb: 1024 } });
      const ports = [await freePort(), await freePort(), await freePort()];
      await harness.writeUnits(["one", "two", "three"].map((id, i) => hogUnit(id, ports[i] ?? 0)));
      const running = await harness.start();
      for (const id of ["one", "two", "three"]) {
        await client.wake(id, { timeoutMs: 20_000 });
        await sleep(50);
      }
      await waitFor(async () => Object.values((await units(client)).units).every((u) => (u.memoryBytes ?? 0) > 26 * MIB), 15_000, "the memory of the three units");
      // About 84 MiB in use; at 64 the oldest must go, and only it (two use about 57 MiB).
      await harness.writeServer({ runtime: flavour.serverRuntime, limits: { memoryBudgetMb: 64 } });
      await waitFor(() => running.activator.memoryBudgetBytes === 64 * MIB, 5000, "the new budget");
      await waitFor(async () => (await stateOf(client, "one")) === "stopped", 10_000, "the eviction of the oldest unit");
      await sleep(600);
      const after = (await units(client)).units;
      assert.equal(after.two?.state, "running");
      assert.equal(after.three?.state, "running");
      assert.deepEqual((await harness.events("SERVICE_DOWN")).filter((e) => e.reason === "evicted").map((e) => e.unit), ["one"]);
    });

    it("kills a unit that ignores SIGTERM once the stop's grace period is over", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([
        unitEntry({ id: "stubborn", serviceId: "stubborn", port, idleTimeoutSeconds: 1, ...flavour.runtimeFields(flavour.sh(`trap "" TERM; httpd -f -p ${flavour.bind(port)} -h ${flavour.www()} & wait`)) }),
      ]);
      await harness.start({ stopGraceMs: 1000 });
      await client.wake("stubborn", { timeoutMs: 20_000 });
      await waitFor(async () => (await stateOf(client, "stubborn")) === "stopping", 10_000, "the stop to begin");
      const t0 = Date.now();
      await waitFor(async () => (await stateOf(client, "stubborn")) === "stopped", 15_000, "the stop to end");
      assert.ok(Date.now() - t0 >= 700, "it waited for the grace period before killing");
      assert.equal(await flavour.serving(harness.stateDir, port), false);
    });

    it("runs the dump hook before every stop; a failed dump keeps the unit running and raises an alarm, a later good one clears it", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      const witness = await startDumpWitness(() => flavour.serving(harness.stateDir, port), flavour.witnessListen());
      try {
        witness.answer = "fail";
        const dump = flavour.sh(`r=$(wget -q -O - http://${flavour.witnessHost()}:${witness.port}/dump); test "$r" = ok`);
        await harness.writeUnits([httpUnit("saver", port, { idleTimeoutSeconds: 1, dumpState: { kind: "exec", command: dump }, dumpTimeoutSeconds: 5 })]);
        await harness.start();
        await client.wake("saver", { timeoutMs: 20_000 });
        const alarm = await waitFor(async () => (await harness.alarms()).find((a) => a.key === "docker-activator/dump/saver" && a.state === "raised"), 15_000, "the dump alarm");
        assert.equal(alarm.code, "ACTIVATOR_DUMP_FAILED");
        assert.match(alarm.message, /saver/);
        assert.equal(await stateOf(client, "saver"), "running");
        assert.ok(await flavour.serving(harness.stateDir, port), "the unit was not stopped");
        await waitFor(() => witness.calls.length >= 2, 10_000, "a second dump attempt");
        assert.equal(await flavour.serving(harness.stateDir, port), true, "still running after the second failure");
        assert.equal((await harness.alarms()).filter((a) => a.key === "docker-activator/dump/saver" && a.state === "raised").length, 1, "raised once, not once per attempt");
        witness.answer = "ok";
        await waitFor(async () => (await stateOf(client, "saver")) === "stopped", 15_000, "the stop after a good dump");
        const good = witness.calls.filter((c) => c.answered === "ok");
        assert.ok(good.length === 1 && good.every((c) => c.unitWasUp), "the good dump ran while the unit was still up");
        assert.ok(witness.calls.every((c) => c.unitWasUp), "no dump ran after a stop");
        assert.ok((await harness.alarms()).some((a) => a.key === "docker-activator/dump/saver" && a.state === "cleared"));
        assert.equal((await harness.events("STATE_DUMPED")).length, 1);
      } finally {
        await witness.close();
      }
    });

    it("takes a signal as the dump hook: a handled one lets the stop go on, one the unit dies of raises the dump alarm", async () => {
      const { harness, client } = await setup();
      const [p1, p2] = [await freePort(), await freePort()];
      // busybox httpd re-reads its configuration on SIGHUP and dies of SIGUSR1 (not handled).
      await harness.writeUnits([
        httpUnit("hup", p1, { idleTimeoutSeconds: 1, dumpState: { kind: "signal", signal: "SIGHUP" }, dumpTimeoutSeconds: 2 }),
        httpUnit("usr", p2, { idleTimeoutSeconds: 1, dumpState: { kind: "signal", signal: "SIGUSR1" }, dumpTimeoutSeconds: 2 }),
      ]);
      await harness.start();
      await client.wake("hup", { timeoutMs: 20_000 });
      await client.wake("usr", { timeoutMs: 20_000 });
      await waitFor(async () => (await stateOf(client, "hup")) === "stopped", 15_000, "the stop of hup after its dump");
      const alarm = await waitFor(async () => (await harness.alarms()).find((a) => a.key === "docker-activator/dump/usr" && a.state === "raised"), 15_000, "the alarm of usr");
      assert.match(alarm.message, /died of SIGUSR1/);
      assert.ok((await harness.events("STATE_DUMPED")).some((e) => e.unit === "hup"));
    });

    it("notices a unit that crashed (SERVICE_DOWN reason crashed) and starts it again at the next wake", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("fragile", port)]);
      await harness.start();
      await client.wake("fragile", { timeoutMs: 20_000 });
      await flavour.killUnit(harness.stateDir, "fragile");
      await waitFor(async () => (await harness.events("SERVICE_DOWN")).some((e) => e.reason === "crashed" && e.unit === "fragile"), 10_000, "the crash to be noticed");
      assert.equal(await stateOf(client, "fragile"), "failed");
      const again = await client.wake("fragile", { timeoutMs: 20_000 });
      assert.equal(again.started, true);
      assert.equal((await httpGet(again.address)).status, 200);
    });

    it("adopts a running unit after an activator restart, without starting it again", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("keep", port)]);
      const first = await harness.start();
      await client.wake("keep", { timeoutMs: 20_000 });
      await first.stop();
      assert.ok(await flavour.serving(harness.stateDir, port), "the unit outlives the activator");
      await harness.start();
      await waitFor(async () => (await stateOf(client, "keep")) === "running", 5000, "the adoption");
      const again = await client.wake("keep", { timeoutMs: 20_000 });
      assert.equal(again.started, false);
      assert.equal((await units(client)).units.keep?.wakeCount, 0, "the new activator never started it");
      assert.equal((await httpGet(again.address)).status, 200);
    });

    it("replaces a running unit whose configuration changed: dumped and stopped, and the next wake serves the new one", async () => {
      const { harness, client } = await setup();
      const [p1, p2] = [await freePort(), await freePort()];
      const witness = await startDumpWitness(() => flavour.serving(harness.stateDir, p1), flavour.witnessListen());
      try {
        const dumpState = { kind: "exec", command: flavour.sh(`r=$(wget -q -O - http://${flavour.witnessHost()}:${witness.port}/dump); test "$r" = ok`) };
        await harness.writeUnits([httpUnit("moving", p1, { dumpState })]);
        await harness.start();
        await client.wake("moving", { timeoutMs: 20_000 });
        await harness.writeUnits([httpUnit("moving", p2, { dumpState })]);
        // Whether the tick or this wake does the replacement, the answer is the new address.
        const answer = await waitFor(async () => {
          const a = await client.wake("moving", { timeoutMs: 20_000 });
          return a.address.endsWith(`:${p2}`) ? a : undefined;
        }, 15_000, "the wake to answer the new address");
        assert.equal((await httpGet(answer.address)).status, 200);
        assert.equal(await flavour.serving(harness.stateDir, p1), false, "the old copy is stopped");
        assert.ok(witness.calls.length >= 1 && witness.calls.every((c) => c.unitWasUp), "the old copy dumped its state while it was up");
        assert.ok((await harness.events("SERVICE_DOWN")).some((e) => e.reason === "replaced" && e.unit === "moving"));
      } finally {
        await witness.close();
      }
    });

    it("dumps, stops and removes a unit that leaves units.json", async () => {
      const { harness, client } = await setup();
      const [p1, p2] = [await freePort(), await freePort()];
      await harness.writeUnits([httpUnit("stay", p1), httpUnit("leave", p2)]);
      await harness.start();
      await client.wake("leave", { timeoutMs: 20_000 });
      await harness.writeUnits([httpUnit("stay", p1)]);
      await waitFor(async () => !(await flavour.serving(harness.stateDir, p2)), 15_000, "the removed unit to stop");
      await assert.rejects(client.wake("leave", { timeoutMs: 5000 }), (e: unknown) => e instanceof ActivatorError && e.code === "UNIT_UNKNOWN");
      await waitFor(async () => (await harness.events("SERVICE_DOWN")).some((e) => e.reason === "removed" && e.unit === "leave"), 5000, "SERVICE_DOWN removed");
    });

    it("answers 503 WAKE_FAILED naming the unit when it cannot start, and 504 WAKE_TIMEOUT when it never gets ready", async () => {
      const { harness, client } = await setup();
      const [p1, p2] = [await freePort(), await freePort()];
      await harness.writeUnits([
        unitEntry({ id: "crashes", serviceId: "crashes", port: p1, ...flavour.runtimeFields(flavour.sh("echo broken >&2; exit 3")) }),
        unitEntry({ id: "sleepy", serviceId: "sleepy", port: p2, readinessTimeoutSeconds: 1, ...flavour.runtimeFields(flavour.sh("exec sleep 30")) }),
      ]);
      await harness.start();
      await assert.rejects(client.wake("crashes", { timeoutMs: 20_000 }), (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_FAILED" && /unit crashes/.test(e.message) && /exit/.test(e.message));
      const t0 = Date.now();
      await assert.rejects(client.wake("sleepy", { timeoutMs: 20_000 }), (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_TIMEOUT" && /unit sleepy: not ready within 1 s/.test(e.message));
      assert.ok(Date.now() - t0 < 5000, "bounded by the readiness timeout");
      await assert.rejects(client.wake("nope", { timeoutMs: 5000 }), (e: unknown) => e instanceof ActivatorError && e.code === "UNIT_UNKNOWN");
    });

    it("keeps the last good units when units.json turns bad, naming the file and field, and raises an alarm", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("good", port)]);
      await harness.start();
      await harness.writeUnits([{ ...(httpUnit("good", port) as Record<string, unknown>), port: "eighty" }]);
      const alarm = await waitFor(async () => (await harness.alarms()).find((a) => a.code === "ACTIVATOR_UNITS_INVALID" && a.state === "raised"), 10_000, "the units alarm");
      assert.match(alarm.message, /activator\/units\.json: units\[0\]\.port/);
      const errors = await harness.events("ERROR");
      assert.ok(errors.some((e) => typeof e.msg === "string" && e.msg.includes("activator/units.json: units[0].port")));
      const answer = await client.wake("good", { timeoutMs: 20_000 });
      assert.equal((await httpGet(answer.address)).status, 200);
      await harness.writeUnits([httpUnit("good", port)]);
      await waitFor(async () => (await harness.alarms()).some((a) => a.key === "docker-activator/units" && a.state === "cleared"), 10_000, "the alarm to clear");
    });

    it("keeps the last good units across a restart while units.json is bad", async () => {
      const { harness, client } = await setup();
      const port = await freePort();
      await harness.writeUnits([httpUnit("steady", port)]);
      const first = await harness.start();
      await waitFor(async () => (await units(client)).units.steady !== undefined, 10_000, "the unit to load");
      await first.stop();
      await harness.writeUnits([{ ...(httpUnit("steady", port) as Record<string, unknown>), port: "eighty" }]);
      await harness.start();
      const answer = await client.wake("steady", { timeoutMs: 20_000 });
      assert.equal((await httpGet(answer.address)).status, 200, "the restarted activator still knows the unit");
      const alarm = await waitFor(async () => (await harness.alarms()).find((a) => a.code === "ACTIVATOR_UNITS_INVALID" && a.state === "raised"), 10_000, "the units alarm");
      assert.match(alarm.message, /activator\/units\.json: units\[0\]\.port/);
    });
  });
}
