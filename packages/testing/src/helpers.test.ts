import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { alive, freeUdpPort, logEvents, logRecords, stopChild, stopPid, tempDir, tempDirs, waitFor } from "./index.ts";

const dirs = tempDirs("coyote-testing-");

describe("waitFor", () => {
  test("returns the first value that is neither undefined nor false, from sync or async checks", async () => {
    let calls = 0;
    assert.equal(await waitFor("the third call", () => (++calls >= 3 ? "done" : false), { intervalMs: 1 }), "done");
    assert.equal(calls, 3);
    let asyncCalls = 0;
    assert.equal(await waitFor("the second call", async () => Promise.resolve(++asyncCalls === 2 ? 7 : undefined), { intervalMs: 1 }), 7);
  });

  test("gives up at its deadline, naming what it waited for", { timeout: 5000 }, async () => {
    const started = performance.now();
    await assert.rejects(waitFor("a thing that never comes", () => undefined, 100), /^Error: timed out after 100 ms waiting for a thing that never comes$/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 100 && elapsed < 2000, `gave up after ${elapsed.toFixed(0)} ms`);
  });

  test("a check that throws ends the wait, unless errors are retried; then the last one is named", async () => {
    const counter = { calls: 0 };
    const callsSoFar = (): number => counter.calls;
    const failing = () => {
      counter.calls += 1;
      throw new Error(`not ready ${counter.calls}`);
    };
    await assert.rejects(waitFor("x", failing, 1000), /not ready 1/);
    assert.equal(callsSoFar(), 1);
    await assert.rejects(waitFor("x", failing, { timeoutMs: 100, intervalMs: 10, retryErrors: true }), /timed out after 100 ms waiting for x: not ready \d+/);
    assert.ok(callsSoFar() > 2, `retried (${callsSoFar()} calls)`);
  });
});

describe("stopPid", () => {
  const started: number[] = [];
  after(() => {
    for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
  });
  const node = (script: string, detached = false) => {
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "ignore"], detached });
    if (child.pid === undefined) throw new Error("no pid");
    started.push(child.pid);
    const ready = new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.unref();
    return { pid: child.pid, child, ready, exited: new Promise<void>((resolve) => child.once("exit", () => resolve())) };
  };

  test("a process that ends on SIGTERM is not killed", async () => {
    const child = node("process.on('SIGTERM', () => process.exit(0)); console.log('up'); setInterval(() => {}, 1000)");
    await child.ready;
    assert.equal(await stopPid(child.pid, { graceMs: 5000 }), false);
    await child.exited;
  });

  test("a process that ignores SIGTERM is killed once the grace time is over", { timeout: 10_000 }, async () => {
    const child = node("process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)");
    await child.ready;
    const begun = performance.now();
    assert.equal(await stopPid(child.pid, { graceMs: 300 }), true);
    await child.exited;
    assert.ok(performance.now() - begun >= 300);
  });

  test("stopChild ends a child that ignores SIGTERM after the grace time, and one that obeys at once", { timeout: 10_000 }, async () => {
    const stubborn = node("process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)");
    await stubborn.ready;
    assert.equal(await stopChild(stubborn.child, 300), true);
    assert.equal(alive(stubborn.pid), false);
    const obedient = node("process.on('SIGTERM', () => process.exit(0)); console.log('up'); setInterval(() => {}, 1000)");
    await obedient.ready;
    const begun = performance.now();
    assert.equal(await stopChild(obedient.child, 5000), false);
    assert.ok(performance.now() - begun < 4000);
    assert.equal(await stopChild(obedient.child, 5000), false, "an ended child is left alone");
  });

  test("with group, the leader's children go too", async () => {
    const leader = node(
      "const c = require('node:child_process').spawn(process.execPath, ['-e', \"process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)\"], { stdio: 'ignore' }); process.on('SIGTERM', () => {}); console.log(String(c.pid)); setInterval(() => {}, 1000)",
      true,
    );
    await leader.ready;
    assert.equal(alive(-leader.pid), true);
    assert.equal(await stopPid(leader.pid, { graceMs: 300, group: true }), true);
    await waitFor("the group to be gone", () => !alive(-leader.pid), 5000);
  });
});

test("tempDir makes a folder that cleanup removes; tempDirs' folders exist until the file's tests end", async () => {
  const { dir, cleanup } = await tempDir("coyote-testing-");
  assert.equal(existsSync(dir), true);
  await cleanup();
  assert.equal(existsSync(dir), false);
  const kept = dirs();
  assert.equal(existsSync(kept), true);
});

test("freeUdpPort gives a UDP port that can be bound", async () => {
  const port = await freeUdpPort();
  const udp = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(port, "127.0.0.1", () => resolve());
  });
  await new Promise<void>((resolve) => udp.close(() => resolve()));
});

test("logEvents reads a JSON-lines log by event and field; a missing log has none", async () => {
  const file = join(dirs(), "component.log");
  assert.deepEqual(await logRecords(file), []);
  await writeFile(file, ['{"event":"SERVICE_UP"}', '{"event":"RECONCILE_DONE","id":"a"}', "", '{"event":"RECONCILE_DONE"}'].join("\n"));
  assert.equal((await logRecords(file)).length, 3);
  assert.equal((await logEvents(file, "RECONCILE_DONE")).length, 2);
  assert.equal((await logEvents(file, "RECONCILE_DONE", "id")).length, 1);
});
