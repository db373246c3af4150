// The CLI as a Unix tool: a reader that goes away is no crash, and `coyote status` tells what the
// running minion does with the box's own spec.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePorts, freeUdpTcpPort, tempDirs } from "@coyote/testing";
import { EXIT } from "./errors.ts";
import { streamIo } from "./io.ts";
import { cli, HOME } from "./test/support.ts";

const tempDir = tempDirs("coyote-cli-unix-");

function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/**
 * Runs the real `./coyote` with the reader of one of its streams gone before it writes: the
 * parent closes its end of the pipe at once, so every write of the child meets EPIPE. A child
 * still running after `limitMs` is asked to stop (SIGTERM, so that `coyote up` stops its
 * components), then killed; `overran` says so.
 */
async function withClosedReader(stream: "stdout" | "stderr", stateDir: string, args: readonly string[], limitMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; other: string; overran: boolean }> {
  const child = spawn(join(HOME, "coyote"), args, { env: { ...process.env, COYOTE_STATE: stateDir }, stdio: ["ignore", "pipe", "pipe"] });
  const closed = stream === "stdout" ? child.stdout : child.stderr;
  const open = stream === "stdout" ? child.stderr : child.stdout;
  closed.destroy();
  let other = "";
  open.on("data", (chunk: Buffer) => (other += chunk.toString()));
  let overran = false;
  const timers = [
    setTimeout(() => {
      overran = true;
      child.kill("SIGTERM");
    }, limitMs),
    setTimeout(() => child.kill("SIGKILL"), limitMs + 30_000),
  ];
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.once("exit", (c, s) => done([c, s])));
  for (const timer of timers) clearTimeout(timer);
  return { code, signal, other, overran };
}

describe("a reader that goes away", () => {
  test("coyote --help into a closed pipe exits 0 without a trace", { timeout: 90_000 }, async () => {
    const r = await withClosedReader("stdout", tempDir(), ["--help"]);
    assert.equal(r.signal, null);
    assert.equal(r.code, EXIT.OK, r.other);
    assert.doesNotMatch(r.other, /EPIPE|Unhandled|at /);
  });

  test("coyote status into a closed pipe exits 0 without a trace", { timeout: 90_000 }, async () => {
    const r = await withClosedReader("stdout", tempDir(), ["status"]);
    assert.equal(r.code, EXIT.OK, r.other);
    assert.doesNotMatch(r.other, /EPIPE|Unhandled|at /);
  });

  test("a usage error with its stderr closed still exits 2, quietly", { timeout: 90_000 }, async () => {
    const r = await withClosedReader("stderr", tempDir(), ["frobnicate"]);
    assert.equal(r.code, EXIT.USAGE);
    assert.doesNotMatch(r.other, /EPIPE|Unhandled/);
  });

  test("coyote up whose reader is gone stops every component cleanly instead of running for no one", { timeout: 150_000 }, async () => {
    const state = tempDir();
    const files = tempDir();
    const [http, https, panel] = await freePorts(3);
    const dns = await freeUdpTcpPort();
    const server = { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", ports: { http, https, panel }, dns: { listen: [`127.0.0.1:${dns}`] } };
    assert.equal((await cli(state, "spec", "apply", writeJson(files, "server.json", server))).code, EXIT.OK);
    const r = await withClosedReader("stdout", state, ["up", "--no-build"], 90_000);
    assert.equal(r.overran, false, `coyote up stopped by itself: ${r.other}`);
    assert.equal(r.signal, null, r.other);
    assert.equal(r.code, EXIT.OK, r.other);
    assert.match(r.other, /coyote: stopping/);
    assert.doesNotMatch(r.other, /EPIPE|Unhandled/);
  });

  test("a closed stdout aborts the io's signal and later lines are dropped; a closed stderr does not abort", () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const io = streamIo(stdout, stderr);
    // Read through a function: each read sees the signal as it is now.
    const closed = (): boolean | undefined => io.closed?.aborted;
    io.out("first");
    assert.equal(String(stdout.read()), "first\n");
    stderr.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    assert.equal(closed(), false);
    io.err("dropped");
    assert.equal(stderr.read(), null);
    stdout.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    assert.equal(closed(), true);
    io.out("dropped");
    assert.equal(stdout.read(), null);
  });
});

describe("coyote status and the box's own spec", () => {
  test("with the minion running, the server row shows what the minion applied, never 'not observed'", { timeout: 60_000 }, async () => {
    const state = tempDir();
    const files = tempDir();
    const dns = await freeUdpTcpPort();
    const server = { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", dns: { listen: [`127.0.0.1:${dns}`] } };
    assert.equal((await cli(state, "spec", "apply", writeJson(files, "server.json", server))).code, EXIT.OK);
    assert.equal((await cli(state, "spec", "apply", writeJson(files, "a.json", { schemaVersion: 1, kind: "Service", id: "alpha", domains: [{ name: "alpha.example" }] }))).code, EXIT.OK);

    // Without a minion, nobody has looked at any spec yet.
    const before = await cli(state, "status");
    assert.match(before.out, /server\s+1\s+-\s+not observed yet/);

    // The real minion, in its own process as `coyote up` runs it; it reports itself in stats/minion.json.
    const minion = spawn(join(HOME, "coyote"), ["run", "minion"], { env: { ...process.env, COYOTE_STATE: state }, stdio: ["ignore", "ignore", "pipe"] });
    let minionErr = "";
    minion.stderr.on("data", (chunk: Buffer) => (minionErr += chunk.toString()));
    const exited = new Promise<number | null>((done) => minion.once("exit", (code) => done(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(join(state, "stats", "minion.json"))) {
        assert.ok(Date.now() < deadline, `the minion reports itself within 60 s: ${minionErr}`);
        await sleep(50);
      }
      const running = await cli(state, "status");
      assert.equal(running.code, EXIT.OK, running.err);
      assert.doesNotMatch(running.out, /server.*not observed/);
      assert.match(running.out, /server\s+1\s+1\s+Applied=True \(Applied: the minion runs on generation 1\)/);
      assert.match(running.out, /minion\s+running\s+pid \d+/);

      // A newer server spec is shown pending until the minion runs on it.
      assert.equal((await cli(state, "spec", "apply", writeJson(files, "server.json", { ...server, name: "box2" }))).code, EXIT.OK);
      let shown = "";
      const applied = Date.now() + 30_000;
      while (!/server\s+2\s+2\s+Applied=True/.test(shown) && Date.now() < applied) {
        shown = (await cli(state, "status")).out;
        if (/server\s+2\s+1 \(behind\)/.test(shown)) assert.match(shown, /Applied=False \(Pending: the minion runs on generation 1; generation 2 is not applied yet\)/);
        await sleep(50);
      }
      assert.match(shown, /server\s+2\s+2\s+Applied=True/);
      const json = JSON.parse((await cli(state, "status", "--json")).out) as { services: { id: string; status?: { observedGeneration: number } }[] };
      assert.equal(json.services.find((s) => s.id === "server")?.status?.observedGeneration, 2);
    } finally {
      minion.kill("SIGTERM");
      assert.equal(await exited, 0, `the minion stops cleanly: ${minionErr}`);
    }
  });
});
