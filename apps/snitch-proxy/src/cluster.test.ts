import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as tlsConnect } from "node:tls";
import { ComponentStats, parseJson } from "@coyote/spec";
import { WORKER_NODE_FLAGS, startProxyCluster, workerExecArgv, type RunningCluster } from "./cluster.ts";
import { backend, get1, sandbox, type Backend, type Sandbox } from "./test/support.ts";

describe("snitch-proxy cluster", () => {
  let box: Sandbox;
  let cluster: RunningCluster;
  let site: Backend;
  let port: number;

  before(async () => {
    box = await sandbox();
    site = await backend("site");
    await box.certify("site.test");
    await box.routes([{ host: "site.test", pathPrefix: "/", serviceId: "site", upstream: { kind: "address", address: site.address } }]);
    cluster = await startProxyCluster({ stateDir: box.stateDir, logger: box.logger, logFile: join(box.stateDir, "logs", "snitch-proxy.log"), https: { host: "127.0.0.1", port: 0 }, workers: 2, activityIntervalMs: 100, statsIntervalMs: 200 });
    port = cluster.httpsAddress.port;
  });

  after(async () => {
    await cluster.stop(500);
    await site.close();
    await box.cleanup();
  });

  it("leaves no timer running once it has stopped, so the process that stopped it can exit", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const before = timers();
    const other = await startProxyCluster({ stateDir: box.stateDir, logger: box.logger, logFile: join(box.stateDir, "logs", "snitch-proxy-other.log"), https: { host: "127.0.0.1", port: 0 }, workers: 1, writeStats: false });
    await other.stop(500);
    assert.equal(timers(), before, `timers still running after the stop: ${JSON.stringify(process.getActiveResourcesInfo())}`);
  });

  it("runs two workers on one port and merges their stats into one file", async () => {
    assert.equal(cluster.pids().length, 2);
    assert.equal(new Set(cluster.pids()).size, 2);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => get1(port, "site.test", box.ca.certificatePem, `/${String(i)}`)));
    assert.ok(answers.every((a) => a.status === 200));
    const file = join(box.stateDir, "stats", "snitch-proxy.json");
    let requests = 0;
    const deadline = Date.now() + 10_000;
    while (requests < 40 && Date.now() < deadline) {
      await sleep(200);
      const stats = await readFile(file, "utf8").then((text) => parseJson(ComponentStats, text, "stats"), () => undefined);
      requests = stats?.hosts?.["site.test"]?.requests ?? 0;
    }
    assert.equal(requests, 40, "every request counted once, whichever worker served it");
  });

  it("hands new connections to its workers in turn, so that each holds an even share", async () => {
    const held: ReturnType<typeof tlsConnect>[] = [];
    try {
      // One after another, as a client opening its pool does: a hash of the addresses would split
      // 16 connections unevenly four times in five.
      for (let i = 0; i < 16; i++) {
        held.push(await new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
          const socket = tlsConnect({ host: "127.0.0.1", port, servername: "site.test", ca: box.ca.certificatePem });
          socket.once("secureConnect", () => resolve(socket));
          socket.once("error", reject);
        }));
      }
      const deadline = Date.now() + 5000;
      while (cluster.connectionsByWorker().reduce((a, b) => a + b, 0) < 16 && Date.now() < deadline) await sleep(50);
      assert.deepEqual(cluster.connectionsByWorker(), [8, 8]);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });

  it("starts its workers with a small young generation, so that scavenges stay short", async () => {
    for (const pid of cluster.pids()) {
      const argv = (await readFile(`/proc/${String(pid)}/cmdline`, "utf8")).split("\0");
      assert.ok(argv.includes("--max-semi-space-size=4"), `worker ${String(pid)} runs with ${argv.join(" ")}`);
    }
  });

  it("lets a flag the parent was started with win over the workers' default, and drops the test runner's", () => {
    assert.deepEqual(workerExecArgv(WORKER_NODE_FLAGS, ["--import", "tsx"]), ["--max-semi-space-size=4", "--import", "tsx"]);
    assert.deepEqual(workerExecArgv(WORKER_NODE_FLAGS, ["--max_semi_space_size=16", "--test", "--test-concurrency", "1"]), ["--max_semi_space_size=16"]);
  });

  it("splits the connection limit between the workers and changes it live", async () => {
    cluster.setMaxConnections(2);
    await sleep(100);
    const started = Date.now();
    const held = await Promise.all(Array.from({ length: 6 }, () => new Promise<ReturnType<typeof tlsConnect> | undefined>((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, servername: "site.test", ca: box.ca.certificatePem });
      socket.once("secureConnect", () => resolve(socket));
      socket.once("error", () => resolve(undefined));
      socket.once("close", () => resolve(undefined));
    })));
    // Not handed from one full worker to the other until the client gives up.
    assert.ok(Date.now() - started < 5000, `the connections over the limit were closed only after ${String(Date.now() - started)} ms`);
    const open = held.filter((s) => s !== undefined && !s.destroyed);
    assert.ok(open.length <= 3, `at most about the limit held open: ${String(open.length)}`);
    for (const socket of held) socket?.destroy();
    cluster.setMaxConnections(10_000);
    await sleep(100);
    assert.equal((await get1(port, "site.test", box.ca.certificatePem)).status, 200);
  });

  it("replaces a worker that dies, on the same port", async () => {
    const [victim] = cluster.pids();
    assert.ok(victim);
    process.kill(victim, "SIGKILL");
    const deadline = Date.now() + 15_000;
    while ((cluster.pids().length < 2 || cluster.pids().includes(victim)) && Date.now() < deadline) await sleep(100);
    assert.equal(cluster.pids().length, 2);
    assert.ok(!cluster.pids().includes(victim));
    const answers = await Promise.all(Array.from({ length: 10 }, () => get1(port, "site.test", box.ca.certificatePem)));
    assert.ok(answers.every((a) => a.status === 200));
  });
});
