import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runProgram } from "./program.ts";

const NODE = process.execPath;

describe("runProgram", () => {
  test("gives the exit code and both outputs; a non-zero exit is not an error", async () => {
    const ok = await runProgram(NODE, ["-e", "process.stdout.write('out'); process.stderr.write('err')"], { timeoutMs: 30_000 });
    assert.deepEqual(ok, { code: 0, signal: undefined, timedOut: false, stdout: "out", stderr: "err" });
    const failed = await runProgram(NODE, ["-e", "process.exit(3)"], { timeoutMs: 30_000 });
    assert.equal(failed.code, 3);
  });

  test("kills a program at its deadline and says so", async () => {
    const started = Date.now();
    const hung = await runProgram(NODE, ["-e", "setInterval(() => {}, 1000)"], { timeoutMs: 300 });
    assert.equal(hung.timedOut, true);
    assert.equal(hung.signal, "SIGKILL");
    assert.equal(hung.code, undefined);
    assert.ok(Date.now() - started < 10_000);
  });

  test("keeps at most the cap of each output", async () => {
    const loud = await runProgram(NODE, ["-e", "process.stdout.write('x'.repeat(100000))"], { timeoutMs: 30_000, maxOutput: 1000 });
    assert.equal(loud.stdout.length, 1000);
  });

  test("rejects when the program cannot start, and when the signal aborts it", async () => {
    await assert.rejects(runProgram("/nonexistent/tool", [], { timeoutMs: 1000 }), { code: "ENOENT" });
    const controller = new AbortController();
    const running = runProgram(NODE, ["-e", "setInterval(() => {}, 1000)"], { timeoutMs: 30_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stopping")), 200);
    await assert.rejects(running, /stopping/);
    await assert.rejects(runProgram(NODE, ["-e", ""], { timeoutMs: 1000, signal: AbortSignal.abort(new Error("already")) }), /already/);
  });
});
