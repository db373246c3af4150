import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createLogger, logFileFor } from "@coyote/log";
import { waitFor } from "@coyote/testing";
import { StateStore, type Alarm } from "@coyote/spec";
import { Minion } from "./minion.ts";
import { createFileActuator } from "./test/file-actuator.ts";
import { cleanedUpAfterTests } from "./test/support.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };
const { dirs, minions } = cleanedUpAfterTests();

const until = <T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> => waitFor(what, check, { timeoutMs, intervalMs: 10 });

const server = (hostname: string) => ({ schemaVersion: 1, kind: "Server", name: "box", hostname });
const service = (id: string, description: string) => ({ schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.example` }], description });

/** The alarms as they stand: the last line of each key. */
async function openAlarms(store: StateStore): Promise<Map<string, Alarm>> {
  const open = new Map<string, Alarm>();
  for (const alarm of (await store.readAlarms()).alarms) {
    if (alarm.state === "raised") open.set(alarm.key, alarm);
    else open.delete(alarm.key);
  }
  return open;
}

describe("minion: the last good spec", () => {
  test("an invalid server spec keeps the last good one, across a restart, with an alarm until it is fixed", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "coyote-minion-"));
    dirs.push(stateDir);
    const out = join(stateDir, "files-daemon");
    const files = createFileActuator({ dir: out });
    const store = await StateStore.open(stateDir, { author: AUTHOR });
    const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
    /** The hostname of every server spec the actuators were built for. */
    const builtFor: string[] = [];
    const make = () => {
      const minion = new Minion({ stateDir, logger, actuators: (spec) => (builtFor.push(spec.hostname), [files]), debounceMs: 10, backoffInitialMs: 20, backoffMaxMs: 100 });
      minions.push(minion);
      return minion;
    };
    const live = (id: string) => (existsSync(join(out, "live", `${id}.txt`)) ? readFileSync(join(out, "live", `${id}.txt`), "utf8") : undefined);
    const serverFile = join(stateDir, "specs", "server.json");

    await store.applySpec(server("box.example"), { author: AUTHOR });
    await store.applySpec(service("blog", "hello"), { author: AUTHOR });
    let minion = make();
    await minion.start();
    await until("blog converged", () => minion.statuses.get("blog")?.conditions.find((c) => c.type === "Ready")?.status === "True");
    assert.deepEqual(builtFor, ["box.example"]);

    // A hand edit breaks the server spec: nothing is rebuilt, an alarm names the file and field.
    writeFileSync(serverFile, JSON.stringify({ ...server("box.example"), dns: { backend: "bogus" } }));
    const alarm = await until("the server spec alarm", async () => (await openAlarms(store)).get("minion/server-spec"));
    assert.equal(alarm.code, "SPEC_INVALID");
    assert.match(alarm.message, /^specs\/server\.json: dns\.backend: .*runs on the last good server spec/);
    await minion.idle();
    assert.deepEqual(builtFor, ["box.example"], "the actuators are not rebuilt from defaults");

    // Restarted while the file is still invalid: the box runs on the kept copy, not the defaults.
    await minion.stop();
    minion = make();
    await minion.start();
    assert.deepEqual(builtFor, ["box.example", "box.example"]);
    assert.equal([...(await store.readAlarms()).alarms].filter((a) => a.key === "minion/server-spec" && a.state === "raised").length, 1, "an alarm still open is not raised twice");

    // An invalid service spec keeps the service as it was, with its own alarm.
    writeFileSync(join(stateDir, "specs", "services", "blog.json"), JSON.stringify({ ...service("blog", "broken"), domains: [{ name: "not a domain" }] }));
    const blogAlarm = await until("the service spec alarm", async () => (await openAlarms(store)).get("minion/spec/blog"));
    assert.match(blogAlarm.message, /specs\/services\/blog\.json: domains\[0\]\.name: /);
    assert.equal(blogAlarm.serviceId, "blog");
    assert.equal(live("blog"), "hello\n", "the service is not torn down");

    // Fixed: the new spec is applied and both alarms clear.
    await store.applySpec(server("fixed.example"), { author: AUTHOR });
    await store.applySpec(service("blog", "again"), { author: AUTHOR });
    await until("alarms cleared", async () => (await openAlarms(store)).size === 0);
    await until("rebuilt for the fixed spec", () => builtFor.at(-1) === "fixed.example");
    await until("blog applied again", () => live("blog") === "again\n");
    await minion.stop();
    await logger.close();
  });

  test("with no valid server spec ever, a first run uses the defaults and says so", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "coyote-minion-"));
    dirs.push(stateDir);
    const store = await StateStore.open(stateDir, { author: AUTHOR });
    const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
    writeFileSync(join(stateDir, "specs", "server.json"), "{ torn");
    const builtFor: string[] = [];
    const minion = new Minion({ stateDir, logger, actuators: (spec) => (builtFor.push(spec.hostname), []), debounceMs: 10 });
    minions.push(minion);
    await minion.start();
    assert.deepEqual(builtFor, ["coyote.localhost"]);
    const alarm = (await openAlarms(store)).get("minion/server-spec");
    assert.match(alarm?.message ?? "", /^specs\/server\.json: .*no valid version was ever applied: the box runs on the defaults/);
    await minion.stop();
    await logger.close();
  });

  test("with no service specs at all, a changed server spec is still loaded and the actuators rebuilt", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "coyote-minion-"));
    dirs.push(stateDir);
    const store = await StateStore.open(stateDir, { author: AUTHOR });
    const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion") });
    await store.applySpec(server("box.example"), { author: AUTHOR });
    const builtFor: string[] = [];
    const minion = new Minion({ stateDir, logger, actuators: (spec) => (builtFor.push(spec.hostname), []), debounceMs: 10, resyncMs: 300 });
    minions.push(minion);
    await minion.start();
    assert.deepEqual(builtFor, ["box.example"]);

    await store.applySpec(server("moved.example"), { author: AUTHOR });
    await until("rebuilt for the changed server spec", () => builtFor.at(-1) === "moved.example", 3000);
    await minion.idle();
    assert.deepEqual(builtFor, ["box.example", "moved.example"], "rebuilt once");

    // An invalid one is reported too, with no service queued to carry the reload. (Written in
    // place right after a replace, the edit may escape the file watcher: the resync catches it.)
    writeFileSync(join(stateDir, "specs", "server.json"), JSON.stringify({ ...server("moved.example"), dns: { backend: "bogus" } }));
    await until("the server spec alarm", async () => (await openAlarms(store)).get("minion/server-spec"), 5000);
    assert.deepEqual(builtFor, ["box.example", "moved.example"], "an invalid server spec rebuilds nothing");
    await minion.stop();
    await logger.close();
  });
});
