import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "@coyote/log";
import { ActivatorClient, ActivatorError } from "@coyote/spec";
import { PROCESS_LOGS_DIR, ProcessRuntime } from "./process-runtime.ts";
import { BUSYBOX, freePort, httpGet, makeBusyboxRoot, makeHarness, missingTools, unitEntry, waitFor, killRecordedUnits } from "./test/support.ts";

const isRoot = process.getuid?.() === 0;
const skip = missingTools([BUSYBOX]) ?? (isRoot ? false : "switching process units to another user needs the tests to run as root");
if (skip !== false) console.error(`\n*** skipping the process confinement tests: ${skip} ***\n`);

let dir = "";
let bin = "";
let www = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cdq-"));
  // The units' user must reach the test's busybox and web root.
  await chmod(dir, 0o755);
  ({ bin, www } = await makeBusyboxRoot(dir));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function readCmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

describe("the confinement of process units", { skip }, () => {
  it("runs a unit and its dump command as the units' user, outside the state folder, with only the given environment: secrets/ stays out of reach", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    const port = await freePort();
    process.env.COYOTE_TEST_CANARY = "leaked";
    try {
      // The state root is the appliance user's alone, as the box sets it up.
      await chmod(harness.stateDir, 0o700);
      await mkdir(join(harness.stateDir, "secrets"), { recursive: true, mode: 0o700 });
      await writeFile(join(harness.stateDir, "secrets", "probe-token"), "s3cret\n", { mode: 0o600 });
      await harness.writeServer({ runtime: "process" });
      const script = [
        'echo "who=$(id -u):$(id -g)"',
        'echo "cwd=$(pwd)"',
        `if cat ${harness.stateDir}/secrets/probe-token; then echo READ-SECRET; fi`,
        `if ls ${harness.stateDir}/run; then echo LISTED-STATE; fi`,
        'echo "canary=$COYOTE_TEST_CANARY"',
        `exec httpd -f -p $HOST:${port} -h ${www}`,
      ].join("; ");
      const dump = [join(bin, "sh"), "-c", 'test "$(id -u)" = 65534'];
      await harness.writeUnits([unitEntry({ id: "caged", serviceId: "caged", port, runtime: "process", command: [join(bin, "sh"), "-c", script], idleTimeoutSeconds: 1, dumpState: { kind: "exec", command: dump } })]);
      await harness.start();
      await client.wake("caged", { timeoutMs: 20_000 });
      const log = await waitFor(async () => {
        const text = await readFile(join(harness.stateDir, PROCESS_LOGS_DIR, "caged.log"), "utf8").catch(() => "");
        return text.includes("canary=") ? text : undefined;
      }, 5000, "the unit's output");
      assert.doesNotMatch(log, /s3cret|READ-SECRET/, "read secrets/");
      assert.doesNotMatch(log, /LISTED-STATE/, "listed the state folder");
      assert.match(log, /^who=65534:65534$/m, "runs as nobody");
      assert.match(log, /^cwd=\/$/m, "works in /, outside the state folder");
      assert.match(log, /^canary=$/m, "inherited the activator's environment");
      // The idle stop runs the dump command, which checks its own user.
      await waitFor(async () => (await harness.events("STATE_DUMPED")).some((e) => e.unit === "caged"), 15_000, "the dump as the units' user");
    } finally {
      delete process.env.COYOTE_TEST_CANARY;
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });

  it("runs each unit in a network of its own: it reaches no loopback service of the host, has no route beyond its link, cannot take another unit's port, and is reached at its own address", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    const [port, sleeperPort] = [await freePort(), await freePort()];
    // A loopback service of the box (the panel, the activator's peers): no unit may reach it.
    let reached = 0;
    const canary = createServer((socket) => {
      reached++;
      socket.end("canary\n");
    });
    await new Promise<void>((resolve) => canary.listen(0, "127.0.0.1", resolve));
    const canaryPort = (canary.address() as AddressInfo).port;
    try {
      await harness.writeServer({ runtime: "process" });
      const hostEnd = '${HOST%.*}.$((${HOST##*.} - 1))';
      const script = [
        `if echo hi | nc -w 2 127.0.0.1 ${canaryPort}; then echo REACHED-LOOPBACK; fi`,
        `if echo hi | nc -w 2 ${hostEnd} ${canaryPort}; then echo REACHED-HOST; fi`,
        "cat /proc/net/route",
        // Another unit's port, on the loopback where the box's daemons listen, by a daemon that
        // leaves the unit's process group.
        `httpd -p 127.0.0.1:${sleeperPort} -h ${www}`,
        "echo probes-done",
        `exec httpd -f -p $HOST:${port} -h ${www}`,
      ].join("; ");
      await harness.writeUnits([unitEntry({ id: "walled", serviceId: "walled", port, runtime: "process", idleTimeoutSeconds: 2, command: [join(bin, "sh"), "-c", script] })]);
      await harness.start();
      const answer = await client.wake("walled", { timeoutMs: 20_000 });
      assert.match(answer.address, /^10\.233\.\d+\.\d+:\d+$/, "reached at its own network's address");
      assert.equal((await httpGet(answer.address, "/index.html")).status, 200);
      const log = await waitFor(async () => {
        const text = await readFile(join(harness.stateDir, PROCESS_LOGS_DIR, "walled.log"), "utf8").catch(() => "");
        return text.includes("probes-done") ? text : undefined;
      }, 10_000, "the unit's probes");
      assert.doesNotMatch(log, /REACHED-LOOPBACK|REACHED-HOST|canary/, "reached a loopback service of the host");
      assert.equal(reached, 0, "the host's loopback service saw a connection");
      const routes = log.split("\n").filter((line) => /^\S+\t[0-9A-F]{8}\t/.test(line));
      assert.equal(routes.length, 1, `one route, to its link: ${routes.join(" | ")}`);
      assert.ok(routes.every((line) => line.split("\t")[1] !== "00000000"), "no default route");
      // The port it took in its own namespace is still free on the host.
      const sleeper = createServer();
      await new Promise<void>((resolve, reject) => {
        sleeper.once("error", reject);
        sleeper.listen(sleeperPort, "127.0.0.1", resolve);
      });
      await new Promise<void>((resolve) => sleeper.close(() => resolve()));
      // The idle stop ends every process of the unit's network, the detached daemon too.
      const daemon = () => readdirSync("/proc").some((pid) => /^\d+$/.test(pid) && readCmdline(pid).includes(`127.0.0.1:${sleeperPort}`));
      assert.ok(daemon(), "the detached daemon runs");
      await waitFor(() => !daemon(), 15_000, "the detached daemon to be stopped with its unit");
    } finally {
      canary.close();
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });

  it("refuses a working directory inside the state folder", async () => {
    const harness = await makeHarness({ baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    const port = await freePort();
    try {
      await harness.writeServer({ runtime: "process" });
      await harness.writeUnits([unitEntry({ id: "nosy", serviceId: "nosy", port, runtime: "process", cwd: join(harness.stateDir, "activator"), command: [join(bin, "sh"), "-c", `exec httpd -f -p 127.0.0.1:${port} -h ${www}`] })]);
      await harness.start();
      await assert.rejects(client.wake("nosy", { timeoutMs: 10_000 }), (error: unknown) => error instanceof ActivatorError && /inside the state folder/.test(error.message));
    } finally {
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });

  it("refuses root as the units' user", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "cdr-"));
    const logger = createLogger({ component: "docker-activator", file: join(stateDir, "log"), level: "debug" });
    try {
      await assert.rejects(ProcessRuntime.open({ stateDir, baseEnv: {}, logger, unitUser: { uid: 0, gid: 0 } }), /not an unprivileged id/);
    } finally {
      await logger.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
