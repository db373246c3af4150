import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, logFileFor, mergeTimeline } from "@coyote/log";
import { waitFor } from "@coyote/testing";
import { StateStore, type ServiceStatus } from "@coyote/spec";
import { Minion, type MinionOptions } from "./minion.ts";
import { createFileActuator } from "./test/file-actuator.ts";
import { cleanedUpAfterTests } from "./test/support.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const { dirs, minions } = cleanedUpAfterTests();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "coyote-minion-"));
  dirs.push(dir);
  return dir;
}

/** Polled every 5 ms: the states between two reconciles are short. */
const until = <T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> => waitFor(what, check, { timeoutMs, intervalMs: 5 });

function service(id: string, description?: string): Record<string, unknown> {
  return { schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.example` }], ...(description === undefined ? {} : { description }) };
}

async function setup(extra: Partial<MinionOptions> = {}) {
  const stateDir = tempDir();
  const out = join(stateDir, "files-daemon");
  const files = createFileActuator({ dir: out });
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
  const minion = new Minion({ stateDir, logger, actuators: () => [files], debounceMs: 10, backoffInitialMs: 20, backoffMaxMs: 100, pluginScanMs: 50, ...extra });
  minions.push(minion);
  const status = (id: string): ServiceStatus | undefined => minion.statuses.get(id);
  const condition = (id: string, type: string) => status(id)?.conditions.find((c) => c.type === type);
  const live = (id: string) => (existsSync(join(out, "live", `${id}.txt`)) ? readFileSync(join(out, "live", `${id}.txt`), "utf8") : undefined);
  return { stateDir, out, files, store, logger, minion, status, condition, live };
}

describe("minion", () => {
  test("converges a spec, writes conditions, and a second pass changes nothing", async () => {
    const t = await setup();
    await t.store.applySpec(service("blog", "hello"), { author: AUTHOR });
    await t.minion.start();
    await until("blog ready", () => t.condition("blog", "Ready")?.status === "True");
    assert.equal(t.live("blog"), "hello\n", "applied and committed");
    assert.deepEqual(t.status("blog")?.conditions.map((c) => [c.type, c.status]), [["SpecValid", "True"], ["FilesReady", "True"], ["Ready", "True"]]);
    assert.equal(t.status("blog")?.observedGeneration, 1);
    const statusFile = join(t.stateDir, "status", "blog.json");
    const mtime = statSync(statusFile).mtimeMs;
    const counts = { ...t.files.counters };

    await t.minion.resync();
    await sleep(50);
    await t.minion.idle();
    assert.deepEqual(t.files.counters, counts, "no apply and no commit on a converged resync");
    assert.equal(statSync(statusFile).mtimeMs, mtime, "the status file is not rewritten");

    await t.store.applySpec(service("blog", "changed"), { author: AUTHOR });
    await until("generation 2 observed", () => t.status("blog")?.observedGeneration === 2 && t.condition("blog", "Ready")?.status === "True");
    assert.equal(t.live("blog"), "changed\n");
    const { records } = await mergeTimeline([logFileFor(t.stateDir, "minion")]);
    assert.ok(records.some((r) => r.event === "RECONCILE_DONE" && r.serviceId === "blog"));
    await t.minion.stop();
  });

  test("a bad spec: its status says why, other services keep converging, nothing good is removed", async () => {
    const t = await setup();
    await t.store.applySpec(service("good", "one"), { author: AUTHOR });
    await t.store.applySpec(service("fragile", "kept"), { author: AUTHOR });
    await t.minion.start();
    await until("both ready", () => t.condition("good", "Ready")?.status === "True" && t.condition("fragile", "Ready")?.status === "True");

    // A hand edit behind the store's back: the file is no longer a valid spec.
    writeFileSync(join(t.stateDir, "specs", "services", "fragile.json"), JSON.stringify({ ...service("fragile"), generation: 7, domains: [{ name: "Not A Domain" }] }));
    await until("fragile invalid", () => t.condition("fragile", "SpecValid")?.status === "False");
    const specValid = t.condition("fragile", "SpecValid");
    assert.equal(specValid?.reason, "InvalidSpec");
    assert.match(specValid.message, /domains\[0\]\.name: not a valid domain name/);
    assert.equal(t.condition("fragile", "Ready")?.status, "False");
    assert.equal(t.status("fragile")?.observedGeneration, 7);
    assert.equal(t.live("fragile"), "kept\n", "what the last good spec made is still there");

    await t.store.applySpec(service("good", "two"), { author: AUTHOR });
    await until("good converges meanwhile", () => t.live("good") === "two\n" && t.status("good")?.observedGeneration === 2);
    await t.minion.stop();
  });

  test("terminal errors are not retried; transient ones back off and converge", async () => {
    const t = await setup();
    await t.store.applySpec(service("doomed", "terminal: cannot be done"), { author: AUTHOR });
    await t.store.applySpec(service("flaky", "transient: once"), { author: AUTHOR });
    await t.minion.start();
    await until("doomed reported", () => t.condition("doomed", "FilesReady")?.status === "False");
    const cond = t.condition("doomed", "FilesReady");
    assert.equal(cond?.reason, "Impossible");
    assert.match(cond.message, /cannot be done/);
    await until("flaky converges after a retry", () => t.condition("flaky", "Ready")?.status === "True");
    assert.equal(t.live("flaky"), "transient: once\n");
    const plans = t.files.counters.applies;
    await sleep(300);
    assert.equal(t.files.counters.applies, plans, "no retry of a terminal error");
    const { records } = await mergeTimeline([logFileFor(t.stateDir, "minion")]);
    assert.ok(records.some((r) => r.event === "RECONCILE_FAILED" && r.serviceId === "flaky" && r.terminal === false));
    await t.minion.stop();
  });

  test("an alarm is raised when a service misses its deadline and cleared when it converges", async () => {
    const t = await setup({ convergeDeadlineMs: 200 });
    await t.store.applySpec(service("late", "terminal: stuck"), { author: AUTHOR });
    await t.minion.start();
    const alarms = async () => (await t.store.readAlarms()).alarms;
    const deadline = Date.now() + 5000;
    while (!(await alarms()).some((a) => a.state === "raised" && a.serviceId === "late") && Date.now() < deadline) await sleep(20);
    const list = await alarms();
    const alarm = list.find((a) => a.state === "raised");
    assert.equal(alarm?.code, "CONVERGE_DEADLINE");
    assert.match(alarm.message, /late has not converged/);
    await t.store.applySpec(service("late", "fixed"), { author: AUTHOR });
    while (!(await alarms()).some((a) => a.state === "cleared" && a.serviceId === "late") && Date.now() < deadline + 5000) await sleep(20);
    const cleared = (await alarms()).find((a) => a.state === "cleared");
    assert.equal(cleared?.id, alarm.id, "the clear names the alarm it clears");
    assert.equal((await alarms()).filter((a) => a.state === "raised").length, 1, "raised once");
    // The log is written asynchronously: its lines may land a moment after the alarms file.
    const logged = async () => {
      const { records } = await mergeTimeline([logFileFor(t.stateDir, "minion")]);
      return records.some((r) => r.event === "ALARM_RAISED") && records.some((r) => r.event === "ALARM_CLEARED");
    };
    while (!(await logged()) && Date.now() < deadline + 10_000) await sleep(50);
    assert.ok(await logged(), "ALARM_RAISED and ALARM_CLEARED are logged");
    await t.minion.stop();
  });

  test("a deleted service is cleaned up and its status removed", async () => {
    const t = await setup();
    await t.store.applySpec(service("gone", "bye"), { author: AUTHOR });
    await t.minion.start();
    await until("ready", () => t.live("gone") === "bye\n");
    await t.store.deleteSpec("gone", { author: AUTHOR });
    await until("removed", () => t.live("gone") === undefined && t.status("gone") === undefined);
    assert.equal(existsSync(join(t.stateDir, "status", "gone.json")), false);
    await t.minion.stop();
  });

  test("a plugin dropped into the plugin folder becomes active without a restart", async () => {
    const t = await setup();
    await t.store.applySpec(service("site", "x"), { author: AUTHOR });
    await t.minion.start();
    await until("ready", () => t.condition("site", "Ready")?.status === "True");
    const plugin = join(t.stateDir, "actuators", "stamp");
    mkdirSync(plugin, { recursive: true });
    writeFileSync(join(plugin, "package.json"), JSON.stringify({ name: "stamp", type: "module", main: "index.mjs" }));
    writeFileSync(join(plugin, "index.mjs"), `
      import { writeFile, readFile, mkdir } from "node:fs/promises";
      import { join } from "node:path";
      export function createActuator({ stateDir }) {
        const dir = join(stateDir, "stamps");
        return {
          id: "actuator.stamp", condition: "Stamped",
          async observe(target) { return readFile(join(dir, target.id), "utf8").catch(() => undefined); },
          plan(target, observed) { return target.spec && observed !== target.spec.id ? { steps: ["stamp"], describe: ["stamp"] } : { steps: [], describe: [] }; },
          async apply(plan, target) { await mkdir(dir, { recursive: true }); await writeFile(join(dir, target.id), target.spec.id); },
        };
      }`);
    await until("plugin condition", () => t.condition("site", "Stamped")?.status === "True");
    assert.equal(readFileSync(join(t.stateDir, "stamps", "site"), "utf8"), "site");
    assert.ok(t.minion.actuators.some((a) => a.id === "actuator.stamp"));

    // A broken plugin is skipped and logged; the others keep working.
    const broken = join(t.stateDir, "actuators", "broken");
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, "index.js"), "export const nothing = 1;\n");
    await sleep(200);
    assert.ok(!t.minion.actuators.some((a) => a.id.includes("broken")));
    const { records } = await mergeTimeline([logFileFor(t.stateDir, "minion")]);
    assert.ok(records.some((r) => r.event === "ERROR" && String(r.msg).includes("plugin broken could not be loaded")));

    rmSync(plugin, { recursive: true });
    await until("plugin dropped", () => !t.minion.actuators.some((a) => a.id === "actuator.stamp"));
    await t.minion.stop();
  });
});
