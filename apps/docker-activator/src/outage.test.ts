import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActivatorClient, ActivatorError } from "@coyote/spec";
import { LABELS } from "./docker-runtime.ts";
import { BUSYBOX, freePort, httpGet, importBusyboxImage, makeBusyboxRoot, makeHarness, missingTools, startDockerd, TEST_IMAGE, unitEntry, waitFor, killRecordedUnits } from "./test/support.ts";
import type { Dockerd } from "./test/support.ts";

const skip = missingTools(["/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", BUSYBOX, "/usr/bin/docker-init"]) ?? false;
if (skip !== false) console.error(`\n*** skipping the engine outage test: ${skip} ***\n`);

let dockerd: Dockerd | undefined;
let dir = "";

before(async () => {
  if (skip !== false) return;
  dir = await mkdtemp(join(tmpdir(), "cdp-"));
  // Process units run as an unprivileged user when the tests run as root: it must reach busybox.
  await chmod(dir, 0o755);
  dockerd = await startDockerd("outage");
  await importBusyboxImage(dockerd);
}, { timeout: 90_000 });

after(async () => {
  await dockerd?.stop();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
}, { timeout: 60_000 });

describe("docker-activator when the Docker engine goes away", { skip }, () => {
  it("fails container wakes with a clear error naming the engine's socket, and keeps running process units", async () => {
    const engine = dockerd;
    if (engine === undefined) throw new Error("test harness: dockerd is not running");
    const { bin, www } = await makeBusyboxRoot(dir);
    const harness = await makeHarness({ dockerSocket: engine.socketPath, baseEnv: { PATH: `${bin}:/usr/bin:/bin` } });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "auto" });
      const [p1, p2] = [await freePort(), await freePort()];
      await harness.writeUnits([
        unitEntry({ id: "boxed", serviceId: "boxed", port: p1, runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${p1}`, "-h", "/www"] }),
        unitEntry({ id: "plain", serviceId: "plain", port: p2, runtime: "process", command: [join(bin, "sh"), "-c", `exec httpd -f -p $HOST:${p2} -h ${www}`] }),
      ]);
      const running = await harness.start();
      assert.equal(running.dockerRuntime, true);
      // The unit's container, made last (after its network holder).
      await waitFor(async () => (await engine.docker.listContainers({ all: true, filters: { label: [LABELS.unit] } })).length === 1, 10_000, "the container to be made");
      await engine.stop();
      dockerd = undefined;
      await assert.rejects(
        client.wake("boxed", { timeoutMs: 20_000 }),
        (e: unknown) => e instanceof ActivatorError && e.code === "WAKE_FAILED" && e.message.includes("unit boxed") && e.message.includes(`the Docker engine on ${engine.socketPath} does not answer`),
      );
      const answer = await client.wake("plain", { timeoutMs: 10_000 });
      assert.equal((await httpGet(answer.address)).status, 200);
      // The periodic observation notices the outage on its own tick, which may come after the wakes:
      // wait for its first report, let several more ticks pass, and count.
      const errors = async () => (await harness.events("ERROR")).filter((e) => typeof e.msg === "string" && e.msg.startsWith("observing the docker units failed"));
      await waitFor(async () => (await errors()).length > 0, 10_000, "the outage to be logged");
      await sleep(1000);
      assert.equal((await errors()).length, 1, "the outage is logged once, not once per tick");
    } finally {
      client.close();
      await harness.cleanup(killRecordedUnits);
    }
  });
});
