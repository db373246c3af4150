import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { ActivatorClient } from "@coyote/spec";
import { checkConfinement, confinedContainer, DEFAULT_CONFINEMENT, HOLDER_LIMITS, holderContainer } from "./confinement.ts";
import { LABELS } from "./docker-runtime.ts";
import { HOLDER_LABEL } from "./holder.ts";
import { BUSYBOX, dockerdForFile, freePort, httpGet, makeHarness, missingTools, TEST_IMAGE, unitEntry, waitFor } from "./test/support.ts";

const skip = missingTools(["/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", BUSYBOX, "/usr/bin/docker-init", "/usr/sbin/docker-proxy"]) ?? false;
if (skip !== false) console.error(`\n*** skipping the container confinement tests: ${skip} ***\n`);

const engine = dockerdForFile("confinement", skip);

/** Runs a shell script inside a unit's container as the unit runs (its user, its limits). */
async function asTheUnit(containerId: string, script: string): Promise<{ code: number; out: string }> {
  const container = engine().docker.getContainer(containerId);
  const exec = await container.exec({ Cmd: ["sh", "-c", script], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  let out = "";
  const sink = new PassThrough();
  sink.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  engine().docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
  });
  const info = await waitFor(async () => {
    const i = await exec.inspect();
    return i.Running ? undefined : i;
  }, 5000, "the exec to end");
  return { code: info.ExitCode ?? -1, out };
}

/** Removes the containers (apps and network holders) a test's units left behind. */
async function removeUnitContainers(): Promise<void> {
  for (const label of [LABELS.unit, HOLDER_LABEL]) {
    for (const c of await engine().docker.listContainers({ all: true, filters: { label: [label] } })) await engine().docker.getContainer(c.Id).remove({ force: true });
  }
}

/** A listener on the host's loopback, standing for the panel and the other daemons. */
async function loopbackListener(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" }).end("secret session\n");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

describe("the confinement of unit containers", { skip }, () => {
  it("refuses a root user, a bad network mode and limits out of range", () => {
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, user: "0:0" }), /is root/);
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, user: "1000:0" }), /is root/);
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, user: "www-data" }), /numeric uid:gid/);
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, network: "none" as "host" }), /network must be/);
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, pidsLimit: 0 }), /pidsLimit/);
    assert.throws(() => checkConfinement({ ...DEFAULT_CONFINEMENT, cpus: Number.NaN }), /cpus/);
  });

  it("publishes a unit's port on loopback only", () => {
    const unit = unitEntry({ id: "wide", serviceId: "wide", port: 18090, runtime: "docker", image: TEST_IMAGE, host: "0.0.0.0" }) as Parameters<typeof confinedContainer>[0];
    assert.throws(() => holderContainer(unit, DEFAULT_CONFINEMENT, "units"), /address 0\.0\.0\.0 is not a loopback address/);
    assert.throws(() => confinedContainer(unit, DEFAULT_CONFINEMENT, "0123456789ab"), /address 0\.0\.0\.0 is not a loopback address/);
    assert.deepEqual(holderContainer({ ...unit, host: "127.0.0.2" }, DEFAULT_CONFINEMENT, "units").HostConfig?.PortBindings, { "18090/tcp": [{ HostIp: "127.0.0.2", HostPort: "18090" }] });
    // The app publishes nothing of its own: it joins its holder's namespace.
    assert.equal(confinedContainer({ ...unit, host: "127.0.0.2" }, DEFAULT_CONFINEMENT, "0123456789ab").HostConfig?.PortBindings, undefined);
    assert.throws(() => confinedContainer({ ...unit, host: "127.0.0.2" }, DEFAULT_CONFINEMENT, "host"), /not a container id/);
  });

  /** Wakes a unit serving $HOST:$PORT, and a loopback listener standing for the panel; runs `check`. */
  async function withJailedUnit(check: (containerId: string, port: number, panelPort: number) => Promise<void>): Promise<void> {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    const client = new ActivatorClient(harness.stateDir);
    const [port, panelPort] = [await freePort(), await freePort()];
    const panel = await loopbackListener(panelPort);
    try {
      await harness.writeServer({ runtime: "docker" });
      await harness.writeUnits([unitEntry({ id: "jail", serviceId: "jail", port, memoryMb: 48, runtime: "docker", image: TEST_IMAGE, command: ["sh", "-c", 'exec httpd -f -p "$HOST:$PORT" -h /www'] })]);
      await harness.start();
      const answer = await client.wake("jail", { timeoutMs: 20_000 });
      assert.equal(answer.address, `127.0.0.1:${port}`);
      assert.equal((await httpGet(answer.address, "/index.html")).status, 200, "served through the published port");
      const info = await waitFor(async () => (await engine().docker.listContainers({ filters: { label: [`${LABELS.unit}=jail`] } }))[0], 10_000, "the running container");
      await check(info.Id, port, panelPort);
    } finally {
      panel.close();
      panel.closeAllConnections();
      client.close();
      await harness.cleanup();
      await removeUnitContainers();
    }
  }

  it("leaves the app nothing to use against the box: tried from inside the unit", async () => {
    await withJailedUnit(async (id, port, panelPort) => {
      // busybox nc, since busybox-static's wget crashes as a user without a passwd entry.
      const get = (p: number) => asTheUnit(id, `echo -e "GET /index.html HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 ${p}`);
      assert.match((await get(port)).out, /hello from a coyote unit/, "the client works: the unit reaches itself");
      assert.doesNotMatch((await get(panelPort)).out, /secret session/, "reached the host's loopback");
      // A second listener inside the unit takes a port of its own network only, not the host's.
      const stray = await freePort();
      await asTheUnit(id, `httpd -p 0.0.0.0:${stray} -h /www`);
      assert.equal(await httpGet(`127.0.0.1:${stray}`).then(() => true, () => false), false, "a port the unit opened appeared on the host");
      const secret = await asTheUnit(id, "cat /root-only");
      assert.notEqual(secret.code, 0, `read a root-only file: ${secret.out}`);
      const who = await asTheUnit(id, "id -u; id -g");
      assert.equal(who.out.trim().split("\n").join(":"), "65534:65534", "not root");
      const caps = await asTheUnit(id, "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status");
      assert.match(caps.out, /CapBnd:\s+0{16}/, "no capability in the bounding set");
      assert.match(caps.out, /NoNewPrivs:\s+1/, "privileges can be gained (setuid programs)");
      const write = await asTheUnit(id, "echo x > /shared/x");
      assert.notEqual(write.code, 0, "wrote to the root file system");
      assert.match(write.out, /[Rr]ead-only/);
      assert.equal((await asTheUnit(id, "echo x > /tmp/x && cat /tmp/x")).out.trim(), "x", "/tmp is writable");
      const fork = await asTheUnit(id, `i=0; while [ $i -lt ${DEFAULT_CONFINEMENT.pidsLimit + 20} ]; do sleep 60 & i=$((i+1)); done`);
      assert.match(fork.out, /can't fork|Resource temporarily unavailable/, "forked past the pids limit");
    });
  });

  it("creates the container with each confinement option", async () => {
    await withJailedUnit(async (id, port) => {
      const inspect = await engine().docker.getContainer(id).inspect();
      const host = inspect.HostConfig;
      const holderInfo = (await engine().docker.listContainers({ filters: { label: [`${HOLDER_LABEL}=jail`] } }))[0];
      assert.ok(holderInfo !== undefined, "the unit's network holder runs");
      assert.equal(host.NetworkMode, `container:${holderInfo.Id}`, "the unit joins its holder's network namespace");
      assert.deepEqual(host.PortBindings ?? {}, {}, "the unit publishes no port of its own");
      const holder = await engine().docker.getContainer(holderInfo.Id).inspect();
      assert.match(holder.HostConfig.NetworkMode ?? "", /^coyote-units-[0-9a-f]{12}$/);
      const network = (await engine().docker.getNetwork(holder.HostConfig.NetworkMode ?? "").inspect()) as { Driver: string };
      assert.equal(network.Driver, "bridge");
      assert.deepEqual(holder.HostConfig.PortBindings, { [`${port}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(port) }] });
      // The holder is confined as the app is, with tiny limits.
      assert.deepEqual(holder.HostConfig.CapDrop, ["ALL"]);
      assert.deepEqual(holder.HostConfig.SecurityOpt, ["no-new-privileges"]);
      assert.equal(holder.HostConfig.ReadonlyRootfs, true);
      assert.equal(holder.HostConfig.Memory, HOLDER_LIMITS.memoryMb * 1024 * 1024);
      assert.equal(holder.HostConfig.PidsLimit, HOLDER_LIMITS.pids);
      assert.equal(holder.Config.User, "65534:65534");
      assert.deepEqual(host.CapDrop, ["ALL"]);
      assert.deepEqual(host.SecurityOpt, ["no-new-privileges"]);
      assert.equal(host.PidsLimit, DEFAULT_CONFINEMENT.pidsLimit);
      assert.equal(host.Memory, 48 * 1024 * 1024);
      assert.equal(host.NanoCpus, DEFAULT_CONFINEMENT.cpus * 1e9);
      assert.equal(host.ReadonlyRootfs, true);
      assert.match(host.Tmpfs?.["/tmp"] ?? "", /size=64m/);
      assert.equal(inspect.Config.User, "65534:65534");
    });
  });

  it("waits for the app itself, not the engine's port proxy, before it calls a unit ready", async () => {
    const harness = await makeHarness({ dockerSocket: engine().socketPath });
    const client = new ActivatorClient(harness.stateDir);
    const port = await freePort();
    try {
      await harness.writeServer({ runtime: "docker" });
      await harness.writeUnits([unitEntry({ id: "late", serviceId: "late", port, runtime: "docker", image: TEST_IMAGE, readiness: { kind: "tcp" }, command: ["sh", "-c", `sleep 1; exec httpd -f -p 0.0.0.0:${port} -h /www`] })]);
      await harness.start();
      const answer = await client.wake("late", { timeoutMs: 20_000 });
      assert.ok(answer.waitedMs >= 900, `called ready after ${answer.waitedMs} ms, before the app listened`);
      assert.equal((await httpGet(answer.address, "/index.html")).status, 200);
    } finally {
      client.close();
      await harness.cleanup();
      await removeUnitContainers();
    }
  });
});
