import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ActivatorClient } from "./client.ts";
import { LABELS } from "./docker-runtime.ts";
import { defineBehaviour } from "./test/behaviour.ts";
import { BUSYBOX, createUnitsNetwork, freePort, importBusyboxImage, makeHarness, missingTools, startDockerd, tcpOpen, TEST_IMAGE, unitEntry, UNITS_NETWORK, waitFor } from "./test/support.ts";
import type { Dockerd } from "./test/support.ts";

const skip = missingTools(["/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", BUSYBOX, "/usr/bin/docker-init"]) ?? false;
if (skip !== false) console.error(`\n*** skipping the docker runtime tests: ${skip} ***\n`);

let dockerd: Dockerd | undefined;

function engine(): Dockerd {
  if (dockerd === undefined) throw new Error("test harness: dockerd is not running");
  return dockerd;
}

before(async () => {
  if (skip !== false) return;
  dockerd = await startDockerd("activator");
  await importBusyboxImage(dockerd);
  await createUnitsNetwork(dockerd);
}, { timeout: 90_000 });

after(async () => {
  await dockerd?.stop();
}, { timeout: 60_000 });

/** Removes the containers a test's units left behind. */
async function removeContainers(): Promise<void> {
  const docker = engine().docker;
  for (const info of await docker.listContainers({ all: true, filters: { label: [LABELS.unit] } })) {
    await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
  }
}

defineBehaviour(
  {
    name: "docker",
    serverRuntime: "docker",
    options: () => ({ dockerSocket: engine().socketPath, containerConfinement: { networkName: UNITS_NETWORK.name } }),
    bind: (port) => `0.0.0.0:${port}`,
    witnessHost: () => UNITS_NETWORK.gateway,
    www: () => "/www",
    sh: (script) => ["sh", "-c", script],
    runtimeFields: (command) => ({ runtime: "docker", image: TEST_IMAGE, command }),
    killUnit: async (_stateDir, unitId) => {
      const info = (await engine().docker.listContainers({ filters: { label: [`${LABELS.unit}=${unitId}`] } }))[0];
      if (info === undefined) throw new Error(`no running container for unit ${unitId}`);
      await engine().docker.getContainer(info.Id).kill({ signal: "SIGKILL" });
    },
    cleanupUnits: removeContainers,
  },
  () => skip,
);

describe("docker-activator's containers", { skip }, () => {
  it("are created stopped when the unit appears, labelled, on the units' network with the memory limit", async () => {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    try {
      await harness.writeServer({ runtime: "docker" });
      const port = await freePort();
      await harness.writeUnits([unitEntry({ id: "made", serviceId: "made", port, memoryMb: 48, runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${port}`, "-h", "/www"] })]);
      await harness.start();
      const info = await waitFor(async () => (await engine().docker.listContainers({ all: true, filters: { label: [`${LABELS.unit}=made`] } }))[0], 10_000, "the container");
      assert.equal(info.State, "created");
      assert.equal(info.Labels[LABELS.service], "made");
      assert.match(info.Labels[LABELS.hash] ?? "", /^[0-9a-f]{16}$/);
      const inspect = await engine().docker.getContainer(info.Id).inspect();
      assert.match(inspect.HostConfig.NetworkMode ?? "", /^coyote-units-[0-9a-f]{12}$/, "a network of the activator's own, made by it");
      assert.equal(inspect.HostConfig.Memory, 48 * 1024 * 1024);
      assert.equal(inspect.HostConfig.Init, true);
    } finally {
      await harness.cleanup();
      await removeContainers();
    }
  });

  it("stops a container started by hand outside the activator once it is idle", async () => {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "docker" });
      const port = await freePort();
      await harness.writeUnits([unitEntry({ id: "byhand", serviceId: "byhand", port, idleTimeoutSeconds: 1, runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${port}`, "-h", "/www"] })]);
      await harness.start();
      const info = await waitFor(async () => (await engine().docker.listContainers({ all: true, filters: { label: [`${LABELS.unit}=byhand`] } }))[0], 10_000, "the container");
      await engine().docker.getContainer(info.Id).start();
      await waitFor(() => tcpOpen(port), 10_000, "the hand-started container to serve");
      await waitFor(async () => ((await client.units()) as { units: Record<string, { state: string }> }).units.byhand?.state === "running", 5000, "the adoption");
      await waitFor(async () => (await harness.events("SERVICE_DOWN")).some((e) => e.reason === "idle" && e.unit === "byhand"), 15_000, "the idle stop of the hand-started container");
      assert.equal(await tcpOpen(port), false);
    } finally {
      client.close();
      await harness.cleanup();
      await removeContainers();
    }
  });

  it("makes a changed unit's container anew", async () => {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    try {
      await harness.writeServer({ runtime: "docker" });
      const port = await freePort();
      const unit = (memoryMb: number) => unitEntry({ id: "shift", serviceId: "shift", port, memoryMb, runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${port}`, "-h", "/www"] });
      await harness.writeUnits([unit(32)]);
      await harness.start();
      const first = await waitFor(async () => (await engine().docker.listContainers({ all: true, filters: { label: [`${LABELS.unit}=shift`] } }))[0], 10_000, "the first container");
      await harness.writeUnits([unit(40)]);
      const second = await waitFor(async () => {
        const found = (await engine().docker.listContainers({ all: true, filters: { label: [`${LABELS.unit}=shift`] } }))[0];
        return found !== undefined && found.Id !== first.Id ? found : undefined;
      }, 10_000, "the new container");
      assert.equal((await engine().docker.getContainer(second.Id).inspect()).HostConfig.Memory, 40 * 1024 * 1024);
    } finally {
      await harness.cleanup();
      await removeContainers();
    }
  });
});
