import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, mergeTimeline, logFileFor } from "@coyote/log";
import { alive, tempDirs, waitFor as waitUntil } from "@coyote/testing";
import type { RunnableComponent, RunningComponent } from "./component.ts";
import { Supervisor } from "./supervisor.ts";

const FAST = { initialMs: 20, maxMs: 200, resetAfterMs: 60_000 };
const tempDir = tempDirs("coyote-supervisor-");
/** Polled every 10 ms: the supervisor's short backoff (FAST) must not be missed between two looks. */
const waitFor = (what: string, check: () => boolean): Promise<true> => waitUntil(what, () => check() || undefined, { intervalMs: 10 });

/** A component that dies `failures` times (once after starting, once while starting) and then runs until stopped. */
function flaky(name: string, failures: number): RunnableComponent & { starts: number; stops: number } {
  const component = {
    name,
    summary: "test component",
    starts: 0,
    stops: 0,
    start: (): Promise<RunningComponent> => {
      component.starts += 1;
      if (component.starts <= failures && component.starts % 2 === 0) return Promise.reject(new Error(`${name} cannot start`));
      let finish: (error?: Error) => void = () => {};
      const done = new Promise<void>((resolve, reject) => {
        finish = (error) => (error ? reject(error) : resolve());
      });
      if (component.starts <= failures) setTimeout(() => finish(new Error(`${name} crashed`)), 5);
      return Promise.resolve({
        done,
        stop: async () => {
          component.stops += 1;
          finish();
          await done;
        },
      });
    },
  };
  return component;
}

describe("supervisor", () => {
  test("one-process mode restarts a component that dies or cannot start, with events, and stops it", async () => {
    const stateDir = tempDir();
    const logger = createLogger({ component: "supervisor", file: logFileFor(stateDir, "supervisor") });
    const steady = flaky("steady", 0);
    const broken = flaky("broken", 3);
    const supervisor = new Supervisor([steady, broken], { stateDir, logger, mode: "one-process", backoff: FAST, logLevel: "silent" });
    await supervisor.start();
    await waitFor("broken to be restarted three times", () => supervisor.states()[1]?.restarts === 3 && supervisor.states()[1]?.state === "running");
    assert.equal(broken.starts, 4);
    assert.deepEqual(supervisor.states()[0], { name: "steady", state: "running", restarts: 0, pid: process.pid });
    await supervisor.stop();
    assert.equal(steady.stops, 1);
    assert.equal(broken.stops, 1);
    assert.ok(supervisor.states().every((s) => s.state === "stopped"));
    await sleep(250);
    assert.equal(broken.starts, 4, "nothing is restarted after stop");
    await logger.close();
    const { records } = await mergeTimeline([logFileFor(stateDir, "supervisor")]);
    const exits = records.filter((r) => r.event === "COMPONENT_EXITED").map((r) => r.component);
    assert.equal(exits.length, 2, "two crashes after a successful start");
    assert.equal(records.filter((r) => r.event === "ERROR").length, 1, "one failed start");
    assert.equal(records.filter((r) => r.event === "COMPONENT_STARTED").length, 4);
  });

  test("processes mode runs each component in its own process, restarts it after a crash and stops it by pid", async () => {
    const stateDir = tempDir();
    const logger = createLogger({ component: "supervisor", file: logFileFor(stateDir, "supervisor") });
    const fixture = join(import.meta.dirname, "test", "child-component.mjs");
    const definitions = ["alpha", "beta"].map((name) => ({ name, summary: "child", start: () => Promise.reject(new Error("not used in processes mode")) }));
    const supervisor = new Supervisor(definitions, {
      stateDir,
      logger,
      mode: "processes",
      spawnCommand: { command: process.execPath, args: [fixture, stateDir] },
      backoff: FAST,
    });
    await supervisor.start();
    await waitFor("both children to run after their first crash", () => existsSync(join(stateDir, "alpha.pid")) && existsSync(join(stateDir, "beta.pid")));
    await waitFor("states to settle", () => supervisor.states().every((s) => s.state === "running" && s.restarts === 1));
    const pids = supervisor.states().map((s) => s.pid ?? 0);
    assert.deepEqual(pids, ["alpha", "beta"].map((name) => Number(readFileSync(join(stateDir, `${name}.pid`), "utf8"))));
    assert.ok(pids.every((pid) => pid !== process.pid && alive(pid)));
    await supervisor.stop();
    for (const [i, name] of ["alpha", "beta"].entries()) {
      assert.equal(readFileSync(join(stateDir, `${name}.stopped`), "utf8"), String(pids[i]), `${name} got SIGTERM`);
      assert.equal(alive(pids[i] ?? 0), false);
    }
    await logger.close();
    const { records } = await mergeTimeline([logFileFor(stateDir, "supervisor")]);
    const exited = records.filter((r) => r.event === "COMPONENT_EXITED");
    assert.deepEqual(exited.map((r) => r.reason), ["exited with code 3", "exited with code 3"]);
  });
});
