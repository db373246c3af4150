import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActivatorClient, ActivatorError } from "@coyote/spec";
import { PROCESSES_FILE } from "./process-runtime.ts";
import { defineBehaviour } from "./test/behaviour.ts";
import { BUSYBOX, freePort, httpGet, makeBusyboxRoot, makeHarness, missingTools, tcpOpen, TEST_IMAGE, unitEntry, waitFor, killRecordedUnits } from "./test/support.ts";

const skip = missingTools([BUSYBOX]) ?? false;
if (skip !== false) console.error(`\n*** skipping the process runtime tests: ${skip} ***\n`);

let dir = "";
let bin = "";
let www = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cdp-"));
  // Units run as an unprivileged user when the tests run as root: it must reach busybox and /www.
  await chmod(dir, 0o755);
  ({ bin, www } = await makeBusyboxRoot(dir));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;

/** Whether the recorded process unit with this port answers, at the address the runtime recorded for it. */
async function servingProcess(stateDir: string, port: number): Promise<boolean> {
  const text = await readFile(join(stateDir, PROCESSES_FILE), "utf8").catch(() => "");
  if (text === "") return false;
  const record = JSON.parse(text) as { processes: Record<string, { address?: string; unit: { port: number } }> };
  const entry = Object.values(record.processes).find((p) => p.unit.port === port);
  return entry === undefined ? false : tcpOpen(port, entry.address ?? "127.0.0.1");
}

/** Kills one unit's process group, by the pid the runtime recorded. */
async function killOne(stateDir: string, unitId: string): Promise<void> {
  const record = JSON.parse(await readFile(join(stateDir, PROCESSES_FILE), "utf8")) as { processes: Record<string, { pid: number }> };
  const pid = record.processes[unitId]?.pid;
  if (pid === undefined) throw new Error(`no recorded process for unit ${unitId}`);
  process.kill(-pid, "SIGKILL");
}

defineBehaviour(
  {
    name: "process",
    serverRuntime: "process",
    options: () => ({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } }),
    // Where the activator says the unit listens: its own network's address (as root), or loopback.
    bind: (port) => `$HOST:${port}`,
    // The host's end of the unit's link is the address before the unit's own in its /30.
    witnessHost: () => (isRoot ? '${HOST%.*}.$((${HOST##*.} - 1))' : "127.0.0.1"),
    witnessListen: () => (isRoot ? "0.0.0.0" : "127.0.0.1"),
    serving: servingProcess,
    www: () => www,
    sh: (script) => [join(bin, "sh"), "-c", script],
    runtimeFields: (command) => ({ runtime: "process", command }),
    killUnit: killOne,
    cleanupUnits: killRecordedUnits,
  },
  () => skip,
);

describe("docker-activator without a Docker engine", { skip }, () => {
  it("refuses to start when the server spec requires docker and no engine answers, naming the socket", async () => {
    const harness = await makeHarness();
    try {
      await harness.writeServer({ runtime: "docker" });
      const socket = join(harness.stateDir, "no-such-docker.sock");
      await assert.rejects(harness.start({ dockerSocket: socket }), (e: unknown) => e instanceof Error && e.message.includes(socket) && /runtime is "docker"/.test(e.message));
    } finally {
      await harness.cleanup();
    }
  });

  it("on auto without an engine, runs process units and fails container wakes with the reason", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "auto" });
      const socket = join(harness.stateDir, "no-such-docker.sock");
      const [p1, p2] = [await freePort(), await freePort()];
      await harness.writeUnits([
        unitEntry({ id: "proc", serviceId: "proc", port: p1, runtime: "process", command: [join(bin, "sh"), "-c", `exec httpd -f -p $HOST:${p1} -h ${www}`] }),
        unitEntry({ id: "boxed", serviceId: "boxed", port: p2, runtime: "docker", image: TEST_IMAGE }),
      ]);
      const running = await harness.start({ dockerSocket: socket });
      assert.equal(running.dockerRuntime, false);
      const answer = await client.wake("proc", { timeoutMs: 10_000 });
      assert.equal((await httpGet(answer.address)).status, 200);
      await assert.rejects(client.wake("boxed", { timeoutMs: 10_000 }), (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_FAILED" && e.message.includes("unit boxed") && e.message.includes(socket));
    } finally {
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });

  it("answers 503 WAKE_FAILED naming the program when a process unit's command does not exist", async () => {
    const harness = await makeHarness();
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "process" });
      await harness.writeUnits([unitEntry({ id: "ghost", serviceId: "ghost", port: await freePort(), runtime: "process", command: ["/nonexistent/app"] })]);
      await harness.start();
      await assert.rejects(client.wake("ghost", { timeoutMs: 10_000 }), (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_FAILED" && /unit ghost: spawning \/nonexistent\/app: .*ENOENT/.test(e.message));
    } finally {
      client.close();
      await harness.cleanup();
    }
  });

  it("stops counting open connections that no report has confirmed for the stale period", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "process" });
      const port = await freePort();
      await harness.writeUnits([unitEntry({ id: "orphaned", serviceId: "orphaned", port, idleTimeoutSeconds: 1, runtime: "process", command: [join(bin, "sh"), "-c", `exec httpd -f -p $HOST:${port} -h ${www}`] })]);
      await harness.start({ activityStaleMs: 2500 });
      await client.wake("orphaned", { timeoutMs: 10_000 });
      const t0 = Date.now();
      // One report of an open connection, then silence, as when snitch-proxy dies.
      await client.reportActivity({ units: { orphaned: { requests: 0, openConnections: 1, bytesIn: 0, bytesOut: 0 } } });
      await waitFor(async () => ((await client.units()) as { units: Record<string, { state: string }> }).units.orphaned?.state === "stopped", 15_000, "the stop");
      assert.ok(Date.now() - t0 >= 2400, "the open connection held it until it went stale");
    } finally {
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });

  it("does not adopt a recorded pid that now belongs to another process", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "process" });
      const port = await freePort();
      const unit = unitEntry({ id: "solo", serviceId: "solo", port, runtime: "process", command: [join(bin, "sh"), "-c", `exec httpd -f -p $HOST:${port} -h ${www}`] });
      await harness.writeUnits([unit]);
      // Our own pid with a wrong start time: alive, but not the unit's process.
      await writeFile(join(harness.stateDir, PROCESSES_FILE), JSON.stringify({ schemaVersion: 1, processes: { solo: { pid: process.pid, startTime: "1", hash: "x", unit } } }));
      await harness.start();
      assert.equal(((await client.units()) as { units: Record<string, { state: string }> }).units.solo?.state, "stopped");
      const answer = await client.wake("solo", { timeoutMs: 10_000 });
      assert.equal(answer.started, true);
      assert.ok(await servingProcess(harness.stateDir, port));
      const record = JSON.parse(await readFile(join(harness.stateDir, PROCESSES_FILE), "utf8")) as { processes: Record<string, { pid: number }> };
      assert.notEqual(record.processes.solo?.pid, process.pid);
    } finally {
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });
});
