// The test harness of docker-activator (tests only, not exported): a real dockerd per test file,
// a busybox image made locally, state folders, loopback ports, and helpers to watch the activator.
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, createReadStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile, copyFile } from "node:fs/promises";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { createServer as createHttpServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { createLogger } from "@coyote/log";
import type { CoyoteLogger } from "@coyote/log";
import { ActivatorUnits, ServerSpec, StateStore, writeFileAtomic } from "@coyote/spec";
import { pingEngine } from "../docker-runtime.ts";
import { PROCESSES_FILE } from "../process-runtime.ts";
import { startActivator } from "../start.ts";
import type { ActivatorStartOptions, RunningActivator } from "../start.ts";
import { freePort, IN_CI, logRecords, stopChild, waitFor as waitUntil } from "@coyote/testing";

export { IN_CI };
/** Debian's busybox-static. */
export const BUSYBOX = "/usr/bin/busybox";
/** The image the docker tests import. */
export const TEST_IMAGE = "coyote-test/busybox:1";
const APPLETS = ["sh", "httpd", "wget", "sleep", "head", "tr", "cat", "echo", "test", "[", "id", "grep", "nc"];

/**
 * Why tests that need these programs cannot run, or undefined when they can. Under CI a missing
 * program throws: a missing dependency is a failure there, never a silent skip.
 */
export function missingTools(programs: readonly string[]): string | undefined {
  const missing = programs.filter((p) => !existsSync(p));
  if (missing.length === 0) return undefined;
  const reason = `missing ${missing.join(", ")} (Debian packages docker.io and busybox-static)`;
  if (IN_CI) throw new Error(`test harness: ${reason}; under CI this is a failure`);
  return reason;
}

/** Resolves when `check` returns a value other than undefined/false; throws after `timeoutMs`. */
export function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  return waitUntil(what, check, { timeoutMs, intervalMs: 25 });
}

export { freePort };

/**
 * A /24 for one test activator's process unit networks, picked at random in 10.233.0.0/16 so that
 * activators of tests running at once rarely meet (and retry on another slot when they do), and
 * never the appliance's own default range.
 */
export function testUnitPool(): string {
  return `10.233.${Math.floor(Math.random() * 256)}.0/24`;
}

/**
 * Whether something serves on 127.0.0.1:port: a byte comes back to a request. A connection alone
 * says nothing for a container on its own network: the engine's port proxy accepts connections
 * while the unit sleeps (its network holder keeps the port published) and closes them.
 */
export function tcpOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => socket.write("HEAD / HTTP/1.0\r\n\r\n"));
    socket.once("data", () => done(true));
    socket.once("end", () => done(false));
    socket.once("close", () => done(false));
    socket.once("error", () => done(false));
  });
}

/** One HTTP GET on a fresh connection. */
export function httpGet(address: string, path = "/"): Promise<{ status: number; body: string }> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${address}${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** A running dockerd of the harness. */
export interface Dockerd {
  readonly socketPath: string;
  readonly docker: Docker;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * Starts a private dockerd (vfs storage, no bridge, no iptables, its own data, exec root and
 * containerd namespace in a temp folder), writing its output to `<dir>/dockerd.log`, and waits
 * until it answers. Stopped by pid, never by name.
 */
export async function startDockerd(name: string): Promise<Dockerd> {
  // A short path: unix socket paths are limited to 108 bytes, containerd's among them.
  const dir = await mkdtemp(join(tmpdir(), "cdk-"));
  const socketPath = join(dir, "docker.sock");
  const log = openSync(join(dir, "dockerd.log"), "a");
  const namespace = `coyote-test-${name}-${process.pid}`;
  const child: ChildProcess = spawn(
    "/usr/sbin/dockerd",
    [
      "--storage-driver=vfs",
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
      "--data-root", join(dir, "data"),
      "--exec-root", join(dir, "exec"),
      "--pidfile", join(dir, "docker.pid"),
      "-H", `unix://${socketPath}`,
      "--containerd-namespace", namespace,
      "--containerd-plugins-namespace", `${namespace}-plugins`,
    ],
    { stdio: ["ignore", log, log] },
  );
  closeSync(log);
  const docker = new Docker({ socketPath });
  const stop = async () => {
    // dockerd leaves the kernel bridges of its networks behind when it stops: remove its
    // containers and networks first, and then any bridge of its that is still there.
    const bridges = await removeNetworks(docker).catch(() => []);
    await stopChild(child, 30_000);
    // dockerd bind-mounts the host's network namespace into its exec root and leaves it there.
    const mounts = (await readFile("/proc/mounts", "utf8").catch(() => "")).split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(`${dir}/`));
    for (const mount of mounts.reverse()) spawnSync("umount", [mount]);
    for (const bridge of bridges) {
      if (existsSync(`/sys/class/net/${bridge}`)) spawnSync("ip", ["link", "delete", bridge]);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`dockerd exited with code ${child.exitCode}; see ${join(dir, "dockerd.log")}`);
      return pingEngine(socketPath, 1000).then(() => true, () => false);
    }, 30_000, "dockerd to answer");
  } catch (error) {
    const tail = (await readFile(join(dir, "dockerd.log"), "utf8").catch(() => "")).split("\n").slice(-15).join("\n");
    await stop();
    throw new Error(`test harness: dockerd did not start: ${error instanceof Error ? error.message : String(error)}\n${tail}`, { cause: error });
  }
  return { socketPath, docker, dir, stop };
}

/**
 * Removes every container and user-defined network of a test engine, within a few seconds.
 * @returns the names of the kernel bridges those networks had, to delete if the engine left them.
 */
async function removeNetworks(docker: Docker): Promise<string[]> {
  const work = async () => {
    for (const info of await docker.listContainers({ all: true })) await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    const bridges: string[] = [];
    for (const network of await docker.listNetworks()) {
      if (network.Driver !== "bridge") continue;
      bridges.push(network.Options?.["com.docker.network.bridge.name"] ?? `br-${network.Id.slice(0, 12)}`);
      await docker.getNetwork(network.Id).remove().catch(() => undefined);
    }
    return bridges;
  };
  const timer = new AbortController();
  try {
    return await Promise.race([work(), sleep(15_000, [], { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

/** Makes a root of busybox with applet links and a web root `/www`, for the image and for processes. */
export async function makeBusyboxRoot(dir: string): Promise<{ root: string; bin: string; www: string }> {
  const root = join(dir, "root");
  const bin = join(root, "bin");
  const www = join(root, "www");
  await mkdir(bin, { recursive: true });
  await mkdir(www, { recursive: true });
  await mkdir(join(root, "tmp"), { recursive: true });
  // As in every real image: the engine gives a tmpfs /tmp the mode of the image's /tmp.
  await chmod(join(root, "tmp"), 0o1777);
  await copyFile(BUSYBOX, join(bin, "busybox"));
  for (const applet of APPLETS) await symlink("busybox", join(bin, applet)).catch(() => undefined);
  await writeFile(join(www, "index.html"), "hello from a coyote unit\n");
  // For the confinement tests: a file only root may read, and a folder anyone may write.
  await writeFile(join(root, "root-only"), "root's eyes only\n", { mode: 0o600 });
  await mkdir(join(root, "shared"), { recursive: true });
  await chmod(join(root, "shared"), 0o777);
  return { root, bin, www };
}

/** Imports a busybox root as {@link TEST_IMAGE} into an engine (`docker import`, no registry). */
export async function importBusyboxImage(dockerd: Dockerd): Promise<void> {
  const { root } = await makeBusyboxRoot(dockerd.dir);
  const tar = join(dockerd.dir, "image.tar");
  const result = spawnSync("tar", ["-C", root, "-cf", tar, "."], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`test harness: tar failed: ${result.stderr}`);
  const [repo, tag] = TEST_IMAGE.split(":");
  const stream = await dockerd.docker.importImage(createReadStream(tar), { repo, tag });
  await new Promise<void>((resolve, reject) => {
    dockerd.docker.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

/**
 * A private dockerd for one test file: started before its tests with the busybox image (and the
 * units' network when asked), stopped after them; nothing is started when the file is skipped.
 * @returns the running engine, for use inside the tests.
 */
export function dockerdForFile(name: string, skip: string | false, options: { readonly unitsNetwork?: boolean } = {}): () => Dockerd {
  let dockerd: Dockerd | undefined;
  before(async () => {
    if (skip !== false) return;
    dockerd = await startDockerd(name);
    await importBusyboxImage(dockerd);
    if (options.unitsNetwork === true) await createUnitsNetwork(dockerd);
  }, { timeout: 90_000 });
  after(async () => {
    await dockerd?.stop();
  }, { timeout: 60_000 });
  return () => {
    if (dockerd === undefined) throw new Error("test harness: dockerd is not running");
    return dockerd;
  };
}

/**
 * The units' bridge network of the docker tests: a fixed subnet, so that a test's dump witness
 * can listen on its gateway (the host as a bridged unit sees it). It stays within this box.
 */
export const UNITS_NETWORK = { name: "coyote-test-units", subnet: "10.231.7.0/24", gateway: "10.231.7.1" } as const;

/** Makes {@link UNITS_NETWORK} on a test engine; the activator finds and uses it by name. */
export async function createUnitsNetwork(dockerd: Dockerd): Promise<void> {
  await dockerd.docker.createNetwork({ Name: UNITS_NETWORK.name, Driver: "bridge", IPAM: { Driver: "default", Config: [{ Subnet: UNITS_NETWORK.subnet, Gateway: UNITS_NETWORK.gateway }] } });
}

/** A state folder, a logger writing into it, and a way to start activators on it. */
export interface Harness {
  readonly stateDir: string;
  readonly logger: CoyoteLogger;
  readonly logFile: string;
  readonly store: StateStore;
  /** Starts an activator on the state folder with short intervals. */
  start(options?: ActivatorStartOptions): Promise<RunningActivator>;
  /** Writes `activator/units.json` atomically, as the minion does. */
  writeUnits(units: readonly unknown[]): Promise<void>;
  /**
   * Sets the server spec's fields, as the minion hands them to the activator: into units.json
   * (rewritten at once when units were written before; else with the next {@link writeUnits}).
   */
  writeServer(fields: Record<string, unknown>): Promise<void>;
  /** The events of a name logged so far. */
  events(name: string): Promise<Array<Record<string, unknown>>>;
  /** The alarms of `alarms.jsonl`. */
  alarms(): Promise<Array<{ key: string; state: string; code: string; message: string }>>;
  /**
   * Stops every activator started, then lets `killUnits` stop what the units left running (it
   * reads the state folder), then removes the folder.
   */
  cleanup(killUnits?: (stateDir: string) => Promise<void>): Promise<void>;
}

/** Short intervals so that idle stops and memory checks happen within a test's patience. */
export const FAST: ActivatorStartOptions = { tickMs: 100, memoryIntervalMs: 200, stopGraceMs: 3000, dumpRetryMs: 300, statsIntervalMs: 200, pollMs: 200 };

/** Makes a harness on a fresh state folder. */
export async function makeHarness(defaults: ActivatorStartOptions = {}): Promise<Harness> {
  const stateDir = await mkdtemp(join(tmpdir(), "cda-"));
  const store = await StateStore.open(stateDir);
  const logFile = join(stateDir, "logs", "docker-activator.log");
  const logger = createLogger({ component: "docker-activator", file: logFile, level: "debug" });
  const running: RunningActivator[] = [];
  const pool = testUnitPool();
  let server: ServerSpec | undefined;
  let lastUnits: readonly unknown[] | undefined;
  // What the backends actuator writes: the units with the server spec's runtime and memory budget.
  const writeUnitsFile = async () => {
    const settings = server === undefined ? {} : { runtime: server.runtime, memoryBudgetMb: server.limits.memoryBudgetMb };
    await writeFileAtomic(join(store.root, "activator", "units.json"), `${JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), ...settings, units: lastUnits ?? [] }, null, 2)}\n`);
  };
  return {
    stateDir: store.root,
    logger,
    logFile,
    store,
    async start(options = {}) {
      const activator = await startActivator({ name: "docker-activator", stateDir: store.root, logger, signal: new AbortController().signal }, { ...FAST, processUnitNetwork: pool, ...defaults, ...options });
      running.push(activator);
      return activator;
    },
    async writeUnits(units) {
      lastUnits = units;
      await writeUnitsFile();
    },
    async writeServer(fields) {
      server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.test.example", ...fields });
      await writeUnitsFile();
    },
    async events(name) {
      return (await logRecords(logFile)).filter((r) => r.event === name);
    },
    async alarms() {
      return (await store.readAlarms()).alarms;
    },
    async cleanup(killUnits) {
      for (const activator of running) await activator.stop();
      await killUnits?.(store.root);
      await logger.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * An HTTP server the dump hooks ask (`wget`, which reads the whole answer, unlike busybox `nc`,
 * which quits when its input ends): it answers `ok` or `fail` and records when it was asked.
 */
export interface DumpWitness {
  readonly port: number;
  /** What it answers from now on. */
  answer: "ok" | "fail";
  /** For each dump: when, what it answered, and whether the unit still took connections then. */
  readonly calls: Array<{ at: number; answered: string; unitWasUp: boolean }>;
  close(): Promise<void>;
}

/**
 * Starts a {@link DumpWitness} on `host` (a loopback address, or the units' bridge gateway for
 * containers on their own network); `unitPort` is probed at each call, before the answer.
 */
export async function startDumpWitness(unitUp: () => Promise<boolean>, host = "127.0.0.1"): Promise<DumpWitness> {
  const port = await freePort();
  const server = createHttpServer((req, res) => {
    req.resume();
    void unitUp().then((up) => {
      witness.calls.push({ at: Date.now(), answered: witness.answer, unitWasUp: up });
      res.writeHead(200, { "content-type": "text/plain" }).end(`${witness.answer}\n`);
    });
  });
  const witness: DumpWitness = {
    port,
    answer: "ok",
    calls: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return witness;
}

/** A units document entry with test defaults. */
export function unitEntry(fields: Record<string, unknown>): unknown {
  return ActivatorUnits.parse({
    schemaVersion: 1,
    generatedAt: new Date().toISOString(),
    units: [{ memoryMb: 64, idleTimeoutSeconds: 0, dumpTimeoutSeconds: 5, readiness: { kind: "tcp" }, readinessTimeoutSeconds: 10, ...fields }],
  }).units[0];
}

/**
 * Stops the process groups a test's process units left behind (SIGKILL), by the pids the runtime
 * recorded in the state folder: only those groups, never a program by name.
 */
export async function killRecordedUnits(stateDir: string): Promise<void> {
  const text = await readFile(join(stateDir, PROCESSES_FILE), "utf8").catch(() => "");
  if (text === "") return;
  const record = JSON.parse(text) as { processes: Record<string, { pid: number }> };
  for (const { pid } of Object.values(record.processes)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
