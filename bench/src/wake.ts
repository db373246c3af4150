// bench/wake: how much Coyote adds to a cold start. For a sleeping docker unit, the time from the
// first HTTPS request through snitch-proxy (a new TLS connection; the proxy asks docker-activator
// to wake the unit and holds the request until it is ready) to the first byte of the answer,
// against a bare `docker start` of an identical container followed by the first plain request
// (polled until it answers). The two are interleaved in one run (proxy, bare, proxy, bare, ...) and
// the medians and the median overhead are printed.
//
//   node --import tsx bench/src/wake.ts [--rounds 10]
//
// It starts a private dockerd (vfs, no bridge, no iptables) in a temporary folder, imports a
// busybox image (Debian's busybox-static) with `docker import`, runs the unit as the activator
// confines it (on the units' bridge, in the network namespace of its holder, which stays up while
// the unit sleeps, with its port published on 127.0.0.1) and the bare container on host networking
// on 127.0.0.1, stops dockerd by its pid and removes the folder at the end.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import Docker from "dockerode";
import { LocalCa } from "@coyote/actuator-snickers";
import { freePort } from "@coyote/testing";
import { ActivatorClient, startActivator } from "@coyote/docker-activator";
import { createLogger } from "@coyote/log";
import { certificateFile, startProxy } from "@coyote/snitch-proxy";
import { ServerSpec, StateStore, writeFileAtomic } from "@coyote/spec";
import { firstByte } from "./lib/first-byte.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "10" } } });
const rounds = Number(values.rounds);
const IMAGE = "coyote-bench/busybox:1";

/** Resolves at the first byte of a GET through snitch-proxy on a new TLS connection; its status. */
function firstByteThroughProxy(port: number, host: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path: "/", servername: host, headers: { host }, ca, agent: false, timeout: 30_000 }, (res) => {
      res.once("data", () => resolve(res.statusCode ?? 0));
      res.once("end", () => resolve(res.statusCode ?? 0));
      res.resume();
    });
    req.on("timeout", () => req.destroy(new Error("bench/wake: no answer through snitch-proxy within 30 s")));
    req.on("error", reject);
    req.end();
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const dir = await mkdtemp(join(tmpdir(), "cbw-"));
const socketPath = join(dir, "docker.sock");
const log = openSync(join(dir, "dockerd.log"), "a");
const dockerd = spawn("/usr/sbin/dockerd", [
  "--storage-driver=vfs", "--bridge=none", "--iptables=false", "--ip6tables=false",
  "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "--pidfile", join(dir, "docker.pid"),
  "-H", `unix://${socketPath}`, "--containerd-namespace", `coyote-bench-${process.pid}`, "--containerd-plugins-namespace", `coyote-bench-${process.pid}-plugins`,
], { stdio: ["ignore", log, log] });
closeSync(log);
const exited = new Promise<void>((resolve) => dockerd.once("exit", () => resolve()));

async function cleanup(): Promise<void> {
  // dockerd leaves the kernel bridges of its networks (the activator's units network) behind.
  const engine = new Docker({ socketPath });
  const bridges: string[] = [];
  await (async () => {
    for (const c of await engine.listContainers({ all: true })) await engine.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const network of await engine.listNetworks()) {
      if (network.Driver !== "bridge") continue;
      bridges.push(`br-${network.Id.slice(0, 12)}`);
      await engine.getNetwork(network.Id).remove().catch(() => undefined);
    }
  })().catch(() => undefined);
  if (dockerd.exitCode === null && dockerd.pid !== undefined) {
    process.kill(dockerd.pid, "SIGTERM");
    if (await Promise.race([exited.then(() => false), sleep(30_000).then(() => true)])) {
      process.kill(dockerd.pid, "SIGKILL");
      await exited;
    }
  }
  // dockerd leaves the host's network namespace bind-mounted in its exec root.
  for (const mount of readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(`${dir}/`)).reverse()) spawnSync("umount", [mount]);
  for (const bridge of bridges) if (existsSync(`/sys/class/net/${bridge}`)) spawnSync("ip", ["link", "delete", bridge]);
  await rm(dir, { recursive: true, force: true });
}

try {
  const docker = new Docker({ socketPath });
  const until = performance.now() + 30_000;
  for (;;) {
    try {
      await docker.ping();
      break;
    } catch (error) {
      if (performance.now() > until || dockerd.exitCode !== null) throw new Error(`bench/wake: dockerd did not start (see ${join(dir, "dockerd.log")})`, { cause: error });
      await sleep(100);
    }
  }
  const root = join(dir, "root");
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(join(root, "www"), { recursive: true });
  copyFileSync("/usr/bin/busybox", join(root, "bin", "busybox"));
  for (const applet of ["sh", "httpd"]) symlinkSync("busybox", join(root, "bin", applet));
  writeFileSync(join(root, "www", "index.html"), "hello\n");
  spawnSync("tar", ["-C", root, "-cf", join(dir, "image.tar"), "."]);
  const imported = await docker.importImage(createReadStream(join(dir, "image.tar")), { repo: "coyote-bench/busybox", tag: "1" });
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(imported, (error: Error | null) => (error ? reject(error) : resolve())));

  const stateDir = join(dir, "state");
  const store = await StateStore.open(stateDir);
  await store.applySpec(ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "bench", hostname: "bench.example", runtime: "docker" }), { author: { name: "bench", email: "bench@example.org" } });
  const unitPort = await freePort();
  const barePort = await freePort();
  // A unit listens on its own network's addresses (the activator publishes its port on loopback);
  // the bare container shares the host's network and stays on loopback.
  const command = (port: number, host = "127.0.0.1") => ["httpd", "-f", "-p", `${host}:${port}`, "-h", "/www"];
  await writeFileAtomic(join(store.root, "activator", "units.json"), JSON.stringify({
    schemaVersion: 1,
    generatedAt: new Date().toISOString(),
    units: [{ id: "bench", serviceId: "bench", runtime: "docker", image: IMAGE, command: command(unitPort, "0.0.0.0"), port: unitPort, memoryMb: 64, idleTimeoutSeconds: 1, dumpTimeoutSeconds: 5, readiness: { kind: "tcp" }, readinessTimeoutSeconds: 30 }],
  }));
  const logger = createLogger({ component: "docker-activator", file: join(dir, "activator.log"), level: "warn" });
  const activator = await startActivator({ name: "docker-activator", stateDir: store.root, logger, signal: new AbortController().signal }, { dockerSocket: socketPath, tickMs: 100, stopGraceMs: 2000 });
  const client = new ActivatorClient(store.root);
  // snitch-proxy in front, routing bench.test to the unit, with a certificate of a local CA.
  const ca = await LocalCa.open(join(dir, "ca"), "bench");
  const issued = ca.issue(["bench.test"]);
  mkdirSync(join(store.root, "proxy", "certs"), { recursive: true, mode: 0o700 });
  writeFileSync(certificateFile(join(store.root, "proxy", "certs"), "bench.test"), issued.keyPem + issued.chainPem, { mode: 0o600 });
  writeFileSync(join(store.root, "proxy", "routes.json"), JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), routes: [{ host: "bench.test", pathPrefix: "/", serviceId: "bench", upstream: { kind: "unit", unit: "bench" } }] }));
  const proxyLogger = createLogger({ component: "snitch-proxy", file: join(dir, "proxy.log"), level: "warn" });
  const proxy = await startProxy({ stateDir: store.root, logger: proxyLogger, https: { host: "127.0.0.1", port: 0 }, accessLog: false, writeStats: false, activityIntervalMs: 200 });
  const bare = await docker.createContainer({ Image: IMAGE, Cmd: command(barePort), HostConfig: { NetworkMode: "host", Memory: 64 * 1024 * 1024, Init: true } });
  const unitContainer = () => docker.listContainers({ all: true, filters: { label: ["coyote.unit=bench"] } }).then((list) => list[0]);
  while ((await unitContainer()) === undefined) await sleep(50);

  const viaActivator: number[] = [];
  const viaBare: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // The activator's unit: asleep (stopped), woken by a wake request, then the first request.
    let t0 = performance.now();
    const status = await firstByteThroughProxy(proxy.httpsAddress.port, "bench.test", ca.certificatePem);
    if (status !== 200) throw new Error(`bench/wake: snitch-proxy answered ${String(status)}`);
    viaActivator.push(performance.now() - t0);
    // Back to sleep the activator's own way: idle for its timeout (1 s), dumped (no hook) and stopped.
    const asleepBy = performance.now() + 30_000;
    const stateOf = async () => (await client.units() as { units: Record<string, { state: string }> }).units.bench?.state;
    while ((await unitContainer())?.State !== "exited" || (await stateOf()) !== "stopped") {
      if (performance.now() > asleepBy) throw new Error(`bench/wake: the unit did not go back to sleep (container ${(await unitContainer())?.State ?? "missing"}, unit ${(await stateOf()) ?? "unknown"})`);
      await sleep(50);
    }

    // The bare container: docker start, then the first request, polled until it answers.
    t0 = performance.now();
    await bare.start();
    while (!(await firstByte("127.0.0.1", barePort))) await sleep(5);
    viaBare.push(performance.now() - t0);
    await bare.stop({ t: 1 });
  }
  client.close();
  await proxy.stop(1000);
  await proxyLogger.close();
  await activator.stop();
  await logger.close();
  const a = median(viaActivator);
  const b = median(viaBare);
  process.stdout.write(`bench/wake: ${rounds} rounds, interleaved\n`);
  process.stdout.write(`  through snitch-proxy (HTTPS, wake) → first byte: median ${a.toFixed(1)} ms (${viaActivator.map((v) => v.toFixed(0)).join(", ")})\n`);
  process.stdout.write(`  bare docker start → first byte: median ${b.toFixed(1)} ms (${viaBare.map((v) => v.toFixed(0)).join(", ")})\n`);
  const paired = median(viaActivator.map((v, i) => v - (viaBare[i] ?? 0)));
  process.stdout.write(`  overhead: ${(a - b).toFixed(1)} ms between the medians, ${paired.toFixed(1)} ms median of the paired rounds (goal: under 50 ms)\n`);
} finally {
  await cleanup();
}
