import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActivatorClient } from "@coyote/spec";
import { LABELS } from "./docker-runtime.ts";
import { HOLDER_LABEL } from "./holder.ts";
import { defineBehaviour } from "./test/behaviour.ts";
import { BUSYBOX, dockerdForFile, freePort, httpGet, makeHarness, missingTools, tcpOpen, TEST_IMAGE, unitEntry, UNITS_NETWORK, waitFor } from "./test/support.ts";
import type { Dockerd } from "./test/support.ts";

const skip = missingTools(["/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", BUSYBOX, "/usr/bin/docker-init"]) ?? false;
if (skip !== false) console.error(`\n*** skipping the docker runtime tests: ${skip} ***\n`);

const engine = dockerdForFile("activator", skip, { unitsNetwork: true });

/** Removes the containers (apps, then network holders) a test's units left behind. */
async function removeContainers(): Promise<void> {
  const docker = engine().docker;
  for (const label of [LABELS.unit, HOLDER_LABEL]) {
    for (const info of await docker.listContainers({ all: true, filters: { label: [label] } })) {
      await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    }
  }
}

/** The container of a unit, or its network holder, in any state. */
async function containerOf(label: string, unitId: string): Promise<Awaited<ReturnType<Dockerd["docker"]["listContainers"]>>[number] | undefined> {
  return (await engine().docker.listContainers({ all: true, filters: { label: [`${label}=${unitId}`] } }))[0];
}

defineBehaviour(
  {
    name: "docker",
    serverRuntime: "docker",
    options: () => ({ dockerSocket: engine().socketPath, containerConfinement: { networkName: UNITS_NETWORK.name } }),
    bind: (port) => `0.0.0.0:${port}`,
    witnessHost: () => UNITS_NETWORK.gateway,
    witnessListen: () => UNITS_NETWORK.gateway,
    // A byte must come back: the engine's port proxy accepts connections while the unit sleeps.
    serving: (_stateDir, port) => tcpOpen(port),
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
      const holder = await containerOf(HOLDER_LABEL, "made");
      assert.equal(holder?.State, "running", "the network holder runs from the start");
      const holderInspect = await engine().docker.getContainer(holder.Id).inspect();
      assert.match(holderInspect.HostConfig.NetworkMode ?? "", /^coyote-units-[0-9a-f]{12}$/, "a network of the activator's own, made by it");
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

  it("keeps a unit's network namespace in a holder that outlives the app's idle stop, restarts it, and removes it with the unit", async () => {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    const client = new ActivatorClient(harness.stateDir);
    try {
      await harness.writeServer({ runtime: "docker" });
      const port = await freePort();
      await harness.writeUnits([unitEntry({ id: "held", serviceId: "held", port, idleTimeoutSeconds: 1, runtime: "docker", image: TEST_IMAGE, command: ["httpd", "-f", "-p", `0.0.0.0:${port}`, "-h", "/www"] })]);
      await harness.start();
      const answer = await client.wake("held", { timeoutMs: 20_000 });
      assert.equal((await httpGet(answer.address, "/index.html")).status, 200);
      const unit = await containerOf(LABELS.unit, "held");
      const holder = await containerOf(HOLDER_LABEL, "held");
      assert.ok(unit !== undefined && holder !== undefined, "the unit's container and its network holder");
      assert.equal(holder.Labels[LABELS.unit], undefined, "the holder is not listed as the unit");
      assert.equal((await engine().docker.getContainer(unit.Id).inspect()).HostConfig.NetworkMode, `container:${holder.Id}`);
      await waitFor(async () => (await harness.events("SERVICE_DOWN")).some((e) => e.reason === "idle" && e.unit === "held"), 15_000, "the idle stop");
      assert.equal((await containerOf(LABELS.unit, "held"))?.State, "exited");
      const after = await containerOf(HOLDER_LABEL, "held");
      assert.equal(after?.Id, holder.Id, "the same holder");
      assert.equal(after.State, "running", "the holder sleeps on while the unit sleeps");
      // A holder stopped by hand runs again, and the unit wakes in it.
      await engine().docker.getContainer(holder.Id).stop({ t: 1 });
      await waitFor(async () => (await containerOf(HOLDER_LABEL, "held"))?.State === "running", 10_000, "the holder to be started again");
      const again = await client.wake("held", { timeoutMs: 20_000 });
      assert.equal((await httpGet(again.address, "/index.html")).status, 200);
      await harness.writeUnits([]);
      await waitFor(async () => (await containerOf(LABELS.unit, "held")) === undefined && (await containerOf(HOLDER_LABEL, "held")) === undefined, 15_000, "the unit and its holder to be removed");
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
