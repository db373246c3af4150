// The installer's test harness: a fresh Debian 12 machine in the test's own Docker engine, run in
// two phases. Install: the checkout copied in, a command run with Debian's archive and the npm
// registry reachable through the allowlist proxy, the result committed. Run: the committed image
// booted on a network of its own, with nothing outside it reachable, its ports at its address.
import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before } from "node:test";
import { debianRoot, type DebianRoot } from "./debian-root.ts";
import { copyCheckout, createNetwork, importImage, startTestEngine, type TestEngine, type TestNetwork } from "./engine.ts";
import { keepMachines } from "./env.ts";
import { startMachine, type Init, type Machine } from "./machine.ts";
import { startAllowlistProxy, type ProxyRecord } from "./proxy.ts";

/** Where the checkout goes inside a machine. */
export const CHECKOUT_IN_MACHINE = "/root/coyote";

/** How long each step of the harness took, in milliseconds, for the test's report. */
export type Timings = Record<string, number>;

/** A running harness: the engine with the Debian root imported. */
export interface InstallerHarness {
  readonly engine: TestEngine;
  readonly root: DebianRoot;
  /** The image of the fresh root. */
  readonly baseImage: string;
  readonly timings: Timings;
  /** Runs the install phase; see {@link installPhase}. */
  install(options: InstallOptions): Promise<InstallResult>;
  /** Boots an image on a network of its own; see {@link runPhase}. */
  run(options: RunOptions): Promise<Machine>;
  /** Removes every machine, network and image it made, and stops the engine. */
  stop(): Promise<void>;
}

/** What the install phase runs. */
export interface InstallOptions {
  /** The command, run as root in the machine (e.g. `["bash", "/root/coyote/install.sh", ...]`). */
  readonly command: readonly string[];
  /** A checkout whose git files are copied to {@link CHECKOUT_IN_MACHINE} first. */
  readonly checkout?: string;
  /** The image to start from (default: the fresh root). */
  readonly image?: string;
  readonly hostname?: string;
  readonly init?: Init;
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
}

/** What the install phase left. */
export interface InstallResult {
  /** The committed image, to boot in the run phase. */
  readonly image: string;
  /** The command's standard output. */
  readonly output: string;
  /** What the machine asked the allowlist proxy for. */
  readonly proxied: readonly ProxyRecord[];
}

/** How the run phase boots. */
export interface RunOptions {
  readonly image: string;
  readonly hostname?: string;
  readonly init?: Init;
}

let images = 0;

/** Where Debian keeps the authorities a machine trusts beyond its own list. */
const LOCAL_AUTHORITIES = "/usr/local/share/ca-certificates";

/** The files of the authorities this host trusts beyond Debian's list (full paths; often none). */
export async function hostAuthorityFiles(): Promise<string[]> {
  return (await readdir(LOCAL_AUTHORITIES).catch(() => [])).filter((f) => /^[\w.-]+\.crt$/.test(f)).map((f) => join(LOCAL_AUTHORITIES, f));
}

/**
 * Gives the machine the authorities this host trusts beyond Debian's list (an egress proxy that
 * speaks TLS for the outside, as some networks have): the machine reaches Debian's archive and the
 * npm registry the way this host does. Returns how many it was given.
 */
export async function trustHostAuthorities(engine: TestEngine, machine: Machine): Promise<number> {
  const files = await hostAuthorityFiles();
  if (files.length === 0) return 0;
  await machine.exec(["mkdir", "-p", LOCAL_AUTHORITIES]);
  for (const file of files) await engine.docker(["cp", file, `${machine.name}:${LOCAL_AUTHORITIES}/${basename(file)}`]);
  await machine.exec(["update-ca-certificates"], { timeoutMs: 60_000 });
  return files.length;
}

/**
 * Starts the harness: the cached Debian root (built on a cold cache), a private engine, the root
 * imported as an image. Undoes what it did when a step fails.
 */
export async function startInstallerHarness(name: string): Promise<InstallerHarness> {
  const timings: Timings = {};
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      timings[step] = Math.round(performance.now() - started);
    }
  };
  const root = await timed(`debian root`, () => debianRoot());
  timings[root.built ? "debian root (cold build)" : "debian root (cached)"] = timings["debian root"] ?? 0;
  delete timings["debian root"];
  const engine = await timed("engine start", () => startTestEngine(name));
  const machines: Machine[] = [];
  const networks: TestNetwork[] = [];
  const stop = async () => {
    if (keepMachines()) {
      const dir = engine.dockerd.dir;
      process.stderr.write(`installer harness: kept its engine and machines (COYOTE_TEST_KEEP_MACHINES=1): DOCKER_HOST=unix://${engine.dockerd.socketPath} docker ps; stop it with kill $(cat ${dir}/docker.pid), then rm -rf ${dir}\n`);
      return;
    }
    for (const machine of machines) await machine.remove();
    for (const network of networks) await engine.docker(["network", "rm", network.name]).catch(() => undefined);
    await engine.stop();
  };
  try {
    const baseImage = await timed("image import", () => importImage(engine, root.tarball, `coyote-test/debian-12:${root.key}`));
    const harness: InstallerHarness = {
      engine,
      root,
      baseImage,
      timings,
      install: (options) =>
        timed("install phase", async () => {
          const network = await createNetwork(engine, `coyote-install-${String(++images)}`);
          networks.push(network);
          const proxy = await startAllowlistProxy(network.gateway);
          try {
            const machine = await timed("install phase: boot", () => startMachine(engine, { image: options.image ?? baseImage, network, init: options.init ?? "systemd", hostname: options.hostname, proxy: proxy.url }));
            machines.push(machine);
            const { checkout } = options;
            if (checkout !== undefined) await timed("install phase: copy checkout", () => copyCheckout(engine, machine.name, checkout, CHECKOUT_IN_MACHINE));
            const trusted = await timed("install phase: trust this host's CAs", () => trustHostAuthorities(engine, machine));
            const caEnv: Record<string, string> = trusted > 0 ? { NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt" } : {};
            const output = await timed("install phase: command", () => machine.exec(options.command, { timeoutMs: options.timeoutMs ?? 20 * 60_000, env: { DEBIAN_FRONTEND: "noninteractive", ...caEnv, ...options.env } }));
            const image = `coyote-test/installed:${String(images)}`;
            await timed("install phase: commit", () => machine.commit(image));
            await machine.remove();
            return { image, output, proxied: [...proxy.records] };
          } finally {
            await proxy.close();
          }
        }),
      run: (options) =>
        timed("run phase boot", async () => {
          const network = await createNetwork(engine, `coyote-run-${String(++images)}`);
          networks.push(network);
          const machine = await startMachine(engine, { image: options.image, network, init: options.init ?? "systemd", hostname: options.hostname });
          machines.push(machine);
          return machine;
        }),
      stop,
    };
    return harness;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The harness for one test file: started before its tests (nothing is started when the file is
 * skipped), stopped after them, also when they fail; the timings are printed at the end.
 * @returns the running harness, for use inside the tests.
 */
export function installerHarnessForFile(name: string, skip: string | false): () => InstallerHarness {
  let harness: InstallerHarness | undefined;
  before(async () => {
    if (skip !== false) return;
    harness = await startInstallerHarness(name);
  }, { timeout: 45 * 60_000 });
  after(async () => {
    if (harness === undefined) return;
    process.stderr.write(`installer harness timings (ms): ${JSON.stringify(harness.timings)}\n`);
    await harness.stop();
  }, { timeout: 120_000 });
  return () => {
    if (harness === undefined) throw new Error("installer harness: not started");
    return harness;
  };
}
